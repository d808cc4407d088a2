/// The element types of PyTorch storages, named by their storage classes.
public enum TorchDType: String, Sendable {
    case float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool

    /// `torch.FloatStorage` → float32; `UntypedStorage` is bytes.
    init?(storageClass: String) {
        switch storageClass {
        case "FloatStorage": self = .float32
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "DoubleStorage": self = .float64
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage", "UntypedStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    public var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// The storage class `torch.save` names for this dtype.
    var storageClass: String {
        switch self {
        case .float32: return "FloatStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .float64: return "DoubleStorage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        }
    }
}

/// A storage named by a pickle's persistent id: its key in the checkpoint and its element type.
public struct TorchStorageRef: Sendable {
    public var key: String
    public var dtype: TorchDType
    /// The element count the persistent id declares.
    public var count: Int
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view (offset, shape, strides, in elements)
/// into a storage. The data stays in the file until it is copied.
public struct TorchTensor: Sendable {
    public var storage: TorchStorageRef
    public var offset: Int
    public var shape: [Int]
    public var stride: [Int]

    public var count: Int { shape.reduce(1, *) }

    /// Whether the elements lie in row-major order with no gaps.
    public var isContiguous: Bool {
        var expected = 1
        for (size, step) in zip(shape, stride).reversed() where size != 1 {
            if step != expected { return false }
            expected *= size
        }
        return true
    }

    /// The storage element range the view touches, or nil if a stride or offset is negative or
    /// the arithmetic overflows.
    var span: Range<Int>? {
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }) else { return nil }
        if shape.contains(0) { return offset ..< offset }
        var last = offset
        for (size, step) in zip(shape, stride) {
            guard step >= 0 else { return nil }
            let (m, o1) = (size - 1).multipliedReportingOverflow(by: step)
            let (s, o2) = last.addingReportingOverflow(m)
            if o1 || o2 { return nil }
            last = s
        }
        return offset ..< last + 1
    }
}
