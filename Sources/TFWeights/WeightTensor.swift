import TFRuntime

/// The element type a tensor is stored as in its file. tfc computes in F32 whatever the file holds.
public enum WeightDType: String, Sendable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    init(_ c: tfc_dtype) {
        switch c {
        case TFC_DTYPE_F16: self = .f16
        case TFC_DTYPE_BF16: self = .bf16
        default: self = .f32
        }
    }

    /// Bytes per element in the file.
    public var byteSize: Int { self == .f32 ? 4 : 2 }
}

/// One tensor of a `WeightFile`, viewed as F32.
///
/// `floats` points into the file mapping for F32 data (zero copy), or into a 64-byte-aligned
/// F32 copy made on load for F16/BF16. The storage lives as long as the `WeightFile` or any
/// `WeightTensor` from it. Swift may end a value's lifetime right after its last use, so a
/// pointer taken from a temporary (`Array(file.tensor("x")!.floats)`) can dangle: keep the
/// file in a variable you use afterwards, or use `values` / `withFloats`.
public struct WeightTensor: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    /// How the values are stored in the file (the `floats` are always F32).
    public let dtype: WeightDType
    /// The values, C order; valid while the file or this tensor is alive (see above).
    public let floats: UnsafeBufferPointer<Float>
    let storage: WeightStorage

    /// Number of elements.
    public var count: Int { floats.count }

    /// A copy of the values.
    public var values: [Float] { withFloats { Array($0) } }

    /// Calls `body` with the values, keeping the storage alive for the call.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(floats) }
    }
}
