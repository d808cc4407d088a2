/// A file written by `torch.save`, opened without PyTorch: the zip container (any archive
/// folder name, Zip64) or the legacy format (`_use_new_zipfile_serialization=False`). The pickle
/// is read at once with the restricted unpickler; tensor data stays in the mapping until copied.
public final class TorchCheckpoint: @unchecked Sendable {
    public let path: String
    /// The unpickled object (a state dict, or a trainer's dict holding one); its containers are
    /// valid while this checkpoint lives.
    public let root: PickleValue
    private let arena = PickleArena()
    let file: MappedFile
    /// Byte range of each storage in the file, by key.
    private let storages: [String: (offset: Int, size: Int)]

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        self.path = path
        var refs: [String: TorchStorageRef] = [:]
        let persistentLoad: Unpickler.PersistentLoad = { pid in
            let ref = try TorchGlobals.storage(pid, path: path)
            refs[ref.key] = ref
            return .storage(ref)
        }
        if ZipDirectory.looksLikeZip(file) {
            (root, storages) = try Self.readZip(file, arena: arena, persistentLoad: persistentLoad)
        } else {
            (root, storages) = try Self.readLegacy(file, arena: arena, refs: { refs }, persistentLoad: persistentLoad)
        }
        for ref in refs.values {
            guard let range = storages[ref.key] else { throw CheckpointError(path: path, "storage '\(ref.key)' is missing from the file") }
            let (needed, overflow) = ref.count.multipliedReportingOverflow(by: ref.dtype.size)
            if overflow || range.size < needed {
                throw CheckpointError(path: path, "storage '\(ref.key)' holds \(range.size) bytes, its \(ref.count) \(ref.dtype) elements need \(needed)")
            }
        }
    }

    private static func readZip(_ file: MappedFile, arena: PickleArena, persistentLoad: @escaping Unpickler.PersistentLoad) throws -> (PickleValue, [String: (offset: Int, size: Int)]) {
        let directory = try ZipDirectory(file)
        // PyTorch puts everything under one folder, named after the file or "archive".
        guard let pickle = directory.entries.first(where: { $0.path == "data.pkl" || $0.path.hasSuffix("/data.pkl") && !$0.path.dropLast(9).contains("/") }) else {
            throw CheckpointError(path: file.path, "a zip archive without data.pkl is not a PyTorch checkpoint")
        }
        let prefix = String(pickle.path.dropLast("data.pkl".count))
        if let order = directory.entries.first(where: { $0.path == prefix + "byteorder" }),
           let bytes = file.bytes(order.dataOffset, order.size), String(decoding: bytes, as: UTF8.self) == "big" {
            throw CheckpointError(path: file.path, "big-endian checkpoints are not supported")
        }
        var storages: [String: (offset: Int, size: Int)] = [:]
        let dataPrefix = prefix + "data/"
        for entry in directory.entries where entry.path.hasPrefix(dataPrefix) {
            storages[String(entry.path.dropFirst(dataPrefix.count))] = (entry.dataOffset, entry.size)
        }
        let (root, _) = try Unpickler.load(file.bytes(pickle.dataOffset, pickle.size)!, path: "\(file.path) (\(pickle.path))", into: arena,
                                           build: TorchGlobals.build(path: file.path), persistentLoad: persistentLoad)
        return (root, storages)
    }

    /// The legacy layout: pickles of the magic number, the protocol version and the system info,
    /// then the object, then the list of storage keys, then each storage as an int64 element count
    /// followed by its bytes.
    private static func readLegacy(_ file: MappedFile, arena: PickleArena, refs: () -> [String: TorchStorageRef],
                                   persistentLoad: @escaping Unpickler.PersistentLoad) throws -> (PickleValue, [String: (offset: Int, size: Int)]) {
        let all = file.bytes(0, file.count)!
        guard file.count >= 2, all[0] == 0x80 else {
            throw CheckpointError(path: file.path, "not a PyTorch checkpoint (neither a zip archive nor a pickle)")
        }
        let build = TorchGlobals.build(path: file.path)
        let noPersistent: Unpickler.PersistentLoad = { _ in throw CheckpointError(path: file.path, "unexpected persistent id in the header") }
        let (magic, afterMagic) = try Unpickler.load(all, path: file.path, into: arena, build: build, persistentLoad: noPersistent)
        // 0x1950a86a20f9469cfc6c, pickled as a 10-byte LONG1.
        let expected: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        guard case .bigInt(let bytes) = magic, bytes == expected else {
            throw CheckpointError(path: file.path, "a pickle, but not a PyTorch checkpoint (no PyTorch magic number)")
        }
        let (version, afterVersion) = try Unpickler.load(all, at: afterMagic, path: file.path, into: arena, build: build, persistentLoad: noPersistent)
        guard version.asInt == 1001 else { throw CheckpointError(path: file.path, "unsupported legacy checkpoint version \(version)") }
        let (info, afterInfo) = try Unpickler.load(all, at: afterVersion, path: file.path, into: arena, build: build, persistentLoad: noPersistent)
        if case .bool(false) = info.asDict?["little_endian"] ?? .none {
            throw CheckpointError(path: file.path, "big-endian checkpoints are not supported")
        }
        let (root, afterRoot) = try Unpickler.load(all, at: afterInfo, path: file.path, into: arena, build: build, persistentLoad: persistentLoad)
        let (keys, afterKeys) = try Unpickler.load(all, at: afterRoot, path: file.path, into: arena, build: build, persistentLoad: noPersistent)
        guard let keyList = keys.asTuple else { throw CheckpointError(path: file.path, "corrupt legacy checkpoint: no storage key list") }
        let known = refs()
        var storages: [String: (offset: Int, size: Int)] = [:]
        var p = afterKeys
        for keyValue in keyList {
            guard let key = keyValue.asString else { throw CheckpointError(path: file.path, "corrupt legacy checkpoint: storage key \(keyValue)") }
            guard let ref = known[key] else { throw CheckpointError(path: file.path, "corrupt legacy checkpoint: storage '\(key)' is not referenced") }
            guard let header = file.bytes(p, 8) else { throw CheckpointError(path: file.path, "truncated: storage '\(key)' is missing") }
            let count = header.le(Int64.self, at: 0)
            let (size, overflow) = Int(clamping: count).multipliedReportingOverflow(by: ref.dtype.size)
            guard count >= 0, !overflow, file.bytes(p + 8, size) != nil else {
                throw CheckpointError(path: file.path, "truncated: storage '\(key)' needs \(count) \(ref.dtype) elements, the file ends before")
            }
            storages[key] = (p + 8, size)
            p += 8 + size
        }
        return (root, storages)
    }

    // MARK: tensor data

    /// Copies elements `start ..< start + out.count` (row-major) of `tensor` into `out` as float32,
    /// converting float16 and bfloat16 exactly. `name` is the tensor's name in errors.
    public func copyFloats(_ tensor: TorchTensor, name: String, from start: Int, into out: UnsafeMutableBufferPointer<Float>) throws {
        let dtype = tensor.storage.dtype
        guard dtype == .float32 || dtype == .float16 || dtype == .bfloat16 else {
            throw CheckpointError(path: path, "tensor '\(name)' is \(dtype); only float32, float16 and bfloat16 weights can be imported")
        }
        guard start >= 0, out.count <= tensor.count - start else {
            throw CheckpointError(path: path, "tensor '\(name)': elements \(start) ..< \(start + out.count) are outside its \(tensor.count)")
        }
        let (bytes, fileOffset) = try storageBytes(tensor, name: name)
        let size = dtype.size
        func load(_ element: Int) -> Float {
            let at = element * size
            switch dtype {
            case .float32: return Float(bitPattern: bytes.le(UInt32.self, at: at))
            case .float16: return Float(Float16(bitPattern: bytes.le(UInt16.self, at: at)))
            default: return Float(bitPattern: UInt32(bytes.le(UInt16.self, at: at)) << 16)
            }
        }
        if tensor.isContiguous {
            let first = tensor.offset + start
            if dtype == .float32 {
                UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[first * 4 ..< (first + out.count) * 4]))
            } else {
                for i in 0..<out.count { out[i] = load(first + i) }
            }
            file.release(fileOffset + first * size, out.count * size)
            return
        }
        // A strided view: walk the row-major index, copying each element (the result is contiguous).
        var index = [Int](repeating: 0, count: tensor.shape.count)
        var rest = start
        for d in stride(from: tensor.shape.count - 1, through: 0, by: -1) {
            index[d] = rest % tensor.shape[d]; rest /= tensor.shape[d]
        }
        var element = tensor.offset + zip(index, tensor.stride).reduce(0) { $0 + $1.0 * $1.1 }
        for i in 0..<out.count {
            out[i] = load(element)
            var d = tensor.shape.count - 1
            while d >= 0 {
                index[d] += 1
                element += tensor.stride[d]
                if index[d] < tensor.shape[d] { break }
                element -= tensor.stride[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// The bytes of the tensor's storage, checked to cover every element the view reads.
    private func storageBytes(_ tensor: TorchTensor, name: String) throws -> (UnsafeRawBufferPointer, Int) {
        guard let range = storages[tensor.storage.key] else { throw CheckpointError(path: path, "tensor '\(name)': storage '\(tensor.storage.key)' is missing") }
        guard let span = tensor.span, tensor.stride.count == tensor.shape.count else {
            throw CheckpointError(path: path, "tensor '\(name)': bad view (offset \(tensor.offset), size \(tensor.shape), stride \(tensor.stride))")
        }
        let available = min(range.size / tensor.storage.dtype.size, tensor.storage.count)
        guard span.upperBound <= available else {
            throw CheckpointError(path: path, "tensor '\(name)' \(tensor.shape) reads elements up to \(span.upperBound) of a storage of \(available): the storage is too short")
        }
        return (file.bytes(range.offset, range.size)!, range.offset)
    }
}
