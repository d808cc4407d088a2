/// The type of an SSA value: a row-major matrix whose row count is the (symbolic) sequence length T.
/// Every activation in a TokenFormer is `[T, width]`; the token ids are `[T]` of i32.
public struct TensorType: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Element: String, Sendable { case f32, i32 }

    /// Columns; `nil` for the 1-D token-id vector.
    public var columns: Int?
    public var element: Element

    public static func activations(_ columns: Int) -> TensorType { TensorType(columns: columns, element: .f32) }
    public static let tokenIDs = TensorType(columns: nil, element: .i32)

    public var description: String {
        if let columns { return "[T, \(columns)] \(element.rawValue)" }
        return "[T] \(element.rawValue)"
    }
}
