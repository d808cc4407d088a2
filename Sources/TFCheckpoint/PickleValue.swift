/// What the restricted unpickler builds: plain data, tensors, and inert placeholders.
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer that does not fit in 64 bits (kept as its little-endian two's-complement bytes).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case set(PickleList)
    /// A reference to `module.name`, never imported or called.
    case global(module: String, name: String)
    /// Whatever a global other than the allowed ones would have built: its callable, arguments and
    /// state are kept as data and nothing runs.
    case object(PickleObject)
    case storage(TorchStorageRef)
    case tensor(TorchTensor)

    public var description: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt: return "<large int>"
        case .float(let d): return String(d)
        case .string(let s): return s.count > 60 ? "'\(s.prefix(60))…'" : "'\(s)'"
        case .bytes(let b): return "<\(b.count) bytes>"
        case .tuple(let t): return "(" + t.map(\.description).joined(separator: ", ") + ")"
        case .list(let l): return "[\(l.items.count) items]"
        case .dict(let d): return "{\(d.entries.count) items}"
        case .set(let s): return "{set of \(s.items.count)}"
        case .global(let m, let n): return "\(m).\(n)"
        case .object(let o): return "<\(o.callable) object>"
        case .storage(let s): return "<\(s.dtype) storage \(s.key)>"
        case .tensor(let t): return "<\(t.storage.dtype) tensor \(t.shape)>"
        }
    }

    public var asString: String? { if case .string(let s) = self { return s }; return nil }
    public var asInt: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    public var asDict: PickleDict? { if case .dict(let d) = self { return d }; return nil }
    public var asTuple: [PickleValue]? {
        switch self {
        case .tuple(let t): return t
        case .list(let l): return l.items
        default: return nil
        }
    }
}

/// A list (a class: pickles fill lists after memoising them).
public final class PickleList {
    public var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// A dict in insertion order (a class for the same reason as `PickleList`).
public final class PickleDict {
    public var entries: [(key: PickleValue, value: PickleValue)] = []
    init() {}

    /// The value under a string key.
    public subscript(key: String) -> PickleValue? {
        entries.last { $0.key.asString == key }?.value
    }

    func set(_ key: PickleValue, _ value: PickleValue) {
        if let s = key.asString, let i = entries.lastIndex(where: { $0.key.asString == s }) {
            entries[i].value = value
        } else {
            entries.append((key, value))
        }
    }
}

/// The inert stand-in for an object of a class the unpickler does not build.
public final class PickleObject {
    public let callable: String
    public private(set) var arguments: [PickleValue]
    /// What BUILD would have set (usually the object's `__dict__`).
    public var state: PickleValue = .none
    init(callable: String, arguments: [PickleValue]) { self.callable = callable; self.arguments = arguments }
    func clear() { arguments = []; state = .none }
}
