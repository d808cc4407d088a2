/// Writes pickle protocol 2 the way `torch.save` does for a state dict: an `OrderedDict` of
/// tensors rebuilt by `torch._utils._rebuild_tensor_v2` over persistent storage ids. Python's
/// own unpickler (and so `torch.load(weights_only=True)`) reads the result.
struct PickleWriter {
    private(set) var bytes: [UInt8] = [0x80, 2] // PROTO 2

    /// A value the writer can emit.
    indirect enum Value {
        case none, bool(Bool), int(Int), string(String)
        case tuple([Value])
        case list([Value])
        /// `collections.OrderedDict` with string keys, in order.
        case orderedDict([(String, Value)])
        /// A plain dict with string keys.
        case dict([(String, Value)])
        /// A contiguous float tensor over the storage `key` (persistent id `('storage', torch.<class>, key, 'cpu', count)`).
        case tensor(storageKey: String, dtype: TorchDType, shape: [Int])
    }

    mutating func write(_ value: Value) {
        emit(value)
        bytes.append(0x2E) // STOP
    }

    private mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63) // GLOBAL
        bytes += Array("\(module)\n\(name)\n".utf8)
    }

    private mutating func integer(_ i: Int) {
        if (0..<256).contains(i) { bytes += [0x4B, UInt8(i)] } // BININT1
        else if (0..<65536).contains(i) { bytes += [0x4D, UInt8(i & 0xFF), UInt8(i >> 8)] } // BININT2
        else if (Int(Int32.min)...Int(Int32.max)).contains(i) {
            bytes.append(0x4A) // BININT
            withUnsafeBytes(of: Int32(i).littleEndian) { bytes += $0 }
        } else {
            bytes += [0x8A, 8] // LONG1, 8 bytes
            withUnsafeBytes(of: Int64(i).littleEndian) { bytes += $0 }
        }
    }

    private mutating func emit(_ value: Value) {
        switch value {
        case .none: bytes.append(0x4E)
        case .bool(let b): bytes.append(b ? 0x88 : 0x89)
        case .int(let i): integer(i)
        case .string(let s):
            let utf8 = Array(s.utf8)
            bytes.append(0x58) // BINUNICODE
            withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { bytes += $0 }
            bytes += utf8
        case .tuple(let items):
            switch items.count {
            case 0: bytes.append(0x29)
            case 1: emit(items[0]); bytes.append(0x85)
            case 2: emit(items[0]); emit(items[1]); bytes.append(0x86)
            case 3: emit(items[0]); emit(items[1]); emit(items[2]); bytes.append(0x87)
            default: bytes.append(0x28); items.forEach { emit($0) }; bytes.append(0x74)
            }
        case .list(let items):
            bytes.append(0x5D) // EMPTY_LIST
            if !items.isEmpty { bytes.append(0x28); items.forEach { emit($0) }; bytes.append(0x65) } // MARK … APPENDS
        case .orderedDict(let entries):
            global("collections", "OrderedDict")
            bytes.append(0x29); bytes.append(0x52) // () REDUCE
            setItems(entries)
        case .dict(let entries):
            bytes.append(0x7D) // EMPTY_DICT
            setItems(entries)
        case .tensor(let key, let dtype, let shape):
            var strides = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
            global("torch._utils", "_rebuild_tensor_v2")
            bytes.append(0x28) // MARK: the argument tuple
            // The persistent id, then BINPERSID.
            bytes.append(0x28)
            emit(.string("storage"))
            global("torch", dtype.storageClass)
            emit(.string(key)); emit(.string("cpu")); emit(.int(shape.reduce(1, *)))
            bytes.append(0x74); bytes.append(0x51) // TUPLE BINPERSID
            emit(.int(0))
            emit(.tuple(shape.map { .int($0) }))
            emit(.tuple(strides.map { .int($0) }))
            emit(.bool(false))
            emit(.orderedDict([])) // backward hooks
            bytes.append(0x74); bytes.append(0x52) // TUPLE REDUCE
        }
    }

    private mutating func setItems(_ entries: [(String, Value)]) {
        // SETITEMS in batches of 1000, as pickle does.
        var start = 0
        while start < entries.count {
            bytes.append(0x28)
            for (k, v) in entries[start ..< min(start + 1000, entries.count)] { emit(.string(k)); emit(v) }
            bytes.append(0x75)
            start += 1000
        }
    }
}
