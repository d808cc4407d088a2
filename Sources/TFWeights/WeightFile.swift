import TFRuntime

/// A safetensors weight file, memory-mapped read-only by the C runtime and validated on open.
///
/// F32 tensors are used in place; F16 and BF16 tensors are converted to F32 once, here.
public final class WeightFile: @unchecked Sendable {
    /// The path as given to `init(path:)`; error messages start with it.
    public let path: String
    /// The header's `__metadata__` (empty if the file has none).
    public let metadata: [String: String]
    /// Tensor names, sorted.
    public let names: [String]
    private let storage: WeightStorage
    private let byName: [String: WeightTensor]

    /// Opens and validates `path`. Throws a one-line `WeightError` for a missing, truncated or
    /// malformed file, a non-float dtype, bad offsets or sizes, or duplicate names.
    public init(path: String) throws {
        let (opened, message) = withErrorBuffer { tfc_st_open(path, $0, $1) }
        guard let handle = opened else { throw WeightError(path: path, message: message) }
        let storage = WeightStorage(handle: handle)
        var metadata: [String: String] = [:]
        for i in 0..<tfc_st_metadata_count(handle) {
            metadata[String(cString: tfc_st_metadata_key(handle, i))] = String(cString: tfc_st_metadata_value(handle, i))
        }
        var byName: [String: WeightTensor] = [:]
        for i in 0..<tfc_st_count(handle) {
            let t = tfc_st_tensor(handle, i)!.pointee
            let (data, message) = withErrorBuffer { tfc_st_f32(handle, i, $0, $1) }
            guard let data else { throw WeightError(path: path, message: message) }
            let name = String(cString: t.name)
            byName[name] = WeightTensor(
                name: name,
                shape: (0..<Int(t.ndim)).map { Int(t.shape[$0]) },
                dtype: WeightDType(t.dtype),
                floats: UnsafeBufferPointer(start: data, count: Int(t.numel)),
                storage: storage)
        }
        self.path = path
        self.metadata = metadata
        self.names = byName.keys.sorted()
        self.storage = storage
        self.byName = byName
    }

    /// The tensor called `name`, or nil.
    public func tensor(_ name: String) -> WeightTensor? { byName[name] }

    /// All tensors, sorted by name.
    public var tensors: [WeightTensor] { names.map { byName[$0]! } }

    /// Total number of elements over all tensors.
    public var parameterCount: Int { byName.values.reduce(0) { $0 + $1.count } }

    /// The runtime's `tfc_safetensors *`, for code that calls the C API directly (e.g. the JIT).
    /// Valid while this object is alive.
    public var runtimeHandle: OpaquePointer { storage.handle }
}
