/// What a model expects of one weight tensor: its checkpoint name, its shape, and the standard
/// deviation `tfc init` draws it with (0 means zeros).
public struct TensorSpec: Equatable, Hashable, Sendable {
    public var name: String
    public var shape: [Int]
    public var initStd: Float

    public init(name: String, shape: [Int], initStd: Float) {
        self.name = name
        self.shape = shape
        self.initStd = initStd
    }

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
}

/// `[100, 64]`, the way shapes appear in messages.
func formatShape(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
