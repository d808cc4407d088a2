/// A restricted unpickler, like `torch.load(weights_only=True)`: it builds containers, scalars,
/// strings and whatever `build` makes of an allowed global (tensors); every other global becomes
/// an inert `PickleObject` holding its arguments as data. Nothing is imported or called, so a
/// pickle whose `__reduce__` names `os.system` runs nothing. Malformed input (truncation, an
/// unknown opcode, a stack underflow, a bad memo reference) throws a one-line `CheckpointError`.
struct Unpickler {
    /// Builds the value of `module.name(arguments)` for an allowed global, or returns nil to keep
    /// it as an inert object.
    typealias Build = (_ global: String, _ arguments: [PickleValue]) throws -> PickleValue?
    /// Resolves a persistent id (PyTorch's storage references).
    typealias PersistentLoad = (PickleValue) throws -> PickleValue

    let bytes: UnsafeRawBufferPointer
    /// Names the pickle in errors (`file.pt`, or `file.pt (archive/data.pkl)`).
    let path: String
    let build: Build
    let persistentLoad: PersistentLoad

    private var position = 0
    private var stack: [PickleValue] = []
    /// How deeply tuples nest in each stack entry (lists, dicts and objects count 0: the arena
    /// tears them down without recursion). Deeper than `maximumDepth` is refused, so no value's
    /// destruction or description can overflow the call stack.
    private var depths: [Int] = []
    private var marks: [Int] = []
    private var memo: [Int: (value: PickleValue, depth: Int)] = [:]
    /// Every list, dict and object built, so their teardown is flat (see `PickleArena`).
    let arena: PickleArena
    static let maximumDepth = 200

    init(_ bytes: UnsafeRawBufferPointer, path: String, arena: PickleArena, build: @escaping Build, persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes; self.path = path; self.arena = arena; self.build = build; self.persistentLoad = persistentLoad
    }

    /// Unpickles one value starting at `offset`; returns it and the offset just after STOP.
    /// The containers of the value live in `arena`: keep it as long as the value is used.
    static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0, path: String, into arena: PickleArena,
                     build: @escaping Build, persistentLoad: @escaping PersistentLoad) throws -> (PickleValue, Int) {
        var u = Unpickler(bytes, path: path, arena: arena, build: build, persistentLoad: persistentLoad)
        u.position = offset
        let value = try u.run()
        return (value, u.position)
    }

    private func fail(_ message: String) -> CheckpointError {
        CheckpointError(path: path, "corrupt pickle at byte \(position): \(message)")
    }

    // MARK: reading

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - position else { throw fail("truncated (needs \(n) more bytes, \(bytes.count - position) left)") }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position ..< position + n])
    }
    private mutating func byte() throws -> UInt8 { try take(1)[0] }
    private mutating func uint<T: FixedWidthInteger>(_ type: T.Type) throws -> T { try take(MemoryLayout<T>.size).le(T.self, at: 0) }
    private mutating func length<T: FixedWidthInteger>(_ type: T.Type) throws -> Int {
        let n = try uint(T.self)
        guard n >= 0, UInt64(n) <= UInt64(bytes.count - position) else { throw fail("length \(n) runs past the end") }
        return Int(n)
    }
    private mutating func line() throws -> String {
        var end = position
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        guard end < bytes.count else { throw fail("truncated text argument") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position ..< end]), as: UTF8.self)
        position = end + 1
        return text
    }
    private mutating func utf8(_ n: Int) throws -> String { String(decoding: try take(n), as: UTF8.self) }

    // MARK: the stack

    private mutating func push(_ value: PickleValue, depth: Int = 0) throws {
        if depth > Self.maximumDepth { throw fail("tuples nested deeper than \(Self.maximumDepth)") }
        arena.register(value)
        stack.append(value)
        depths.append(depth)
    }
    private mutating func pop() throws -> PickleValue { try popWithDepth().0 }
    private mutating func popWithDepth() throws -> (PickleValue, Int) {
        guard stack.count > (marks.last ?? 0), let v = stack.popLast(), let d = depths.popLast() else { throw fail("stack underflow") }
        return (v, d)
    }
    private func topDepth() -> Int { depths.last ?? 0 }
    /// A tuple of the items, one level deeper than the deepest.
    private mutating func pushTuple(_ items: [PickleValue], depths itemDepths: [Int]) throws {
        try push(.tuple(items), depth: 1 + (itemDepths.max() ?? 0))
    }
    private mutating func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return v
    }
    /// The items pushed since the last MARK (which is removed).
    private mutating func popMark() throws -> [PickleValue] { try popMarkWithDepths().0 }
    private mutating func popMarkWithDepths() throws -> ([PickleValue], [Int]) {
        guard let m = marks.popLast() else { throw fail("no mark on the stack") }
        let items = Array(stack[m...]), itemDepths = Array(depths[m...])
        stack.removeSubrange(m...)
        depths.removeSubrange(m...)
        return (items, itemDepths)
    }
    private func pairs(_ items: [PickleValue]) throws -> [(PickleValue, PickleValue)] {
        guard items.count % 2 == 0 else { throw fail("odd number of dict items") }
        return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
    }
    private mutating func memoGet(_ index: Int) throws {
        guard let v = memo[index] else { throw fail("memo entry \(index) is not defined") }
        try push(v.value, depth: v.depth)
    }
    private mutating func memoPut(_ index: Int) throws { memo[index] = (try top(), topDepth()) }

    private func integer(fromLittleEndian raw: UnsafeRawBufferPointer) -> PickleValue {
        if raw.isEmpty { return .int(0) }
        if raw.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            if raw.count < 8, raw[raw.count - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(raw.count)) }  // sign-extend
            return .int(Int(Int64(bitPattern: v)))
        }
        return .bigInt(Array(raw))
    }

    /// A decimal integer as little-endian two's-complement bytes (as LONG1 would hold it).
    static func twosComplement(decimal text: String) -> [UInt8]? {
        let negative = text.hasPrefix("-")
        let digits = negative ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var magnitude: [UInt8] = [0]
        for d in digits {
            var carry = Int(d.asciiValue! - 48)
            for i in magnitude.indices {
                let v = Int(magnitude[i]) * 10 + carry
                magnitude[i] = UInt8(v & 0xFF); carry = v >> 8
            }
            while carry > 0 { magnitude.append(UInt8(carry & 0xFF)); carry >>= 8 }
        }
        if magnitude.last! & 0x80 != 0 { magnitude.append(0) }
        guard negative else { return magnitude }
        var carry = 1
        for i in magnitude.indices {
            let v = Int(~magnitude[i]) + carry
            magnitude[i] = UInt8(v & 0xFF); carry = v >> 8
        }
        return magnitude
    }

    private func applyGlobal(_ callable: PickleValue, _ arguments: [PickleValue]) throws -> PickleValue {
        guard case .global(let module, let name) = callable else {
            // Calling a non-global (e.g. a placeholder's method) builds another placeholder.
            return .object(PickleObject(callable: callable.description, arguments: arguments))
        }
        if let built = try build("\(module).\(name)", arguments) { return built }
        return .object(PickleObject(callable: "\(module).\(name)", arguments: arguments))
    }

    // MARK: the opcodes

    private mutating func run() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let version = try byte()
                if version > 5 { throw fail("unsupported pickle protocol \(version)") }
            case 0x95: _ = try take(8) // FRAME: framing is only a read-ahead hint
            case 0x2E: // STOP
                let value = try pop()
                return value
            case 0x28: marks.append(stack.count) // MARK
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: try push(try top(), depth: topDepth()) // DUP

            case 0x4E: try push(.none) // NONE
            case 0x88: try push(.bool(true)) // NEWTRUE
            case 0x89: try push(.bool(false)) // NEWFALSE
            case 0x4A: try push(.int(Int(Int32(bitPattern: try uint(UInt32.self))))) // BININT
            case 0x4B: try push(.int(Int(try byte()))) // BININT1
            case 0x4D: try push(.int(Int(try uint(UInt16.self)))) // BININT2
            case 0x8A: try push(integer(fromLittleEndian: try take(Int(try byte())))) // LONG1
            case 0x8B: try push(integer(fromLittleEndian: try take(try length(Int32.self)))) // LONG4
            case 0x49: // INT (text; "00"/"01" are False/True)
                let text = try line()
                if text == "00" { try push(.bool(false)) } else if text == "01" { try push(.bool(true)) }
                else if let v = Int(text) { try push(.int(v)) } else { throw fail("bad INT '\(text)'") }
            case 0x4C: // LONG (text, trailing L)
                let text = try line()
                let digits = text.hasSuffix("L") ? String(text.dropLast()) : text
                if let v = Int(digits) { try push(.int(v)) }
                else if let big = Self.twosComplement(decimal: digits) { try push(.bigInt(big)) }
                else { throw fail("bad LONG '\(text)'") }
            case 0x47: // BINFLOAT (big-endian)
                let raw = try take(8)
                try push(.float(Double(bitPattern: raw.reduce(0) { $0 << 8 | UInt64($1) })))
            case 0x46: // FLOAT (text)
                let text = try line()
                guard let v = Double(text) else { throw fail("bad FLOAT '\(text)'") }
                try push(.float(v))

            case 0x58: try push(.string(try utf8(try length(UInt32.self)))) // BINUNICODE
            case 0x8C: try push(.string(try utf8(Int(try byte())))) // SHORT_BINUNICODE
            case 0x8D: try push(.string(try utf8(try length(UInt64.self)))) // BINUNICODE8
            case 0x56: try push(.string(try line())) // UNICODE (raw-unicode-escape; plain text suffices)
            case 0x55: try push(.string(try utf8(Int(try byte())))) // SHORT_BINSTRING
            case 0x54: try push(.string(try utf8(try length(Int32.self)))) // BINSTRING
            case 0x53: // STRING (quoted text)
                var text = try line()
                if text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q { text = String(text.dropFirst().dropLast()) }
                try push(.string(text))
            case 0x43: try push(.bytes(Array(try take(Int(try byte()))))) // SHORT_BINBYTES
            case 0x42: try push(.bytes(Array(try take(try length(UInt32.self))))) // BINBYTES
            case 0x8E: try push(.bytes(Array(try take(try length(UInt64.self))))) // BINBYTES8
            case 0x96: try push(.bytes(Array(try take(try length(UInt64.self))))) // BYTEARRAY8

            case 0x29: try push(.tuple([])) // EMPTY_TUPLE
            case 0x74: let (items, d) = try popMarkWithDepths(); try pushTuple(items, depths: d) // TUPLE
            case 0x85: let a = try popWithDepth(); try pushTuple([a.0], depths: [a.1]) // TUPLE1
            case 0x86: let b = try popWithDepth(), a = try popWithDepth(); try pushTuple([a.0, b.0], depths: [a.1, b.1]) // TUPLE2
            case 0x87: let c = try popWithDepth(), b = try popWithDepth(), a = try popWithDepth(); try pushTuple([a.0, b.0, c.0], depths: [a.1, b.1, c.1]) // TUPLE3
            case 0x5D: try push(.list(PickleList())) // EMPTY_LIST
            case 0x6C: try push(.list(PickleList(try popMark()))) // LIST
            case 0x61: // APPEND
                let item = try pop()
                guard case .list(let list) = try top() else { throw fail("APPEND to a non-list") }
                list.items.append(item)
            case 0x65: // APPENDS
                let items = try popMark()
                switch try top() {
                case .list(let list), .set(let list): list.items.append(contentsOf: items)
                case .object: break // extending a placeholder: dropped
                default: throw fail("APPENDS to a non-list")
                }
            case 0x7D: try push(.dict(PickleDict())) // EMPTY_DICT
            case 0x64: // DICT
                let dict = PickleDict()
                for (k, v) in try pairs(try popMark()) { dict.set(k, v) }
                try push(.dict(dict))
            case 0x73: // SETITEM
                let value = try pop(), key = try pop()
                switch try top() {
                case .dict(let dict): dict.set(key, value)
                case .object: break
                default: throw fail("SETITEM on a non-dict")
                }
            case 0x75: // SETITEMS
                let items = try pairs(try popMark())
                switch try top() {
                case .dict(let dict): for (k, v) in items { dict.set(k, v) }
                case .object: break
                default: throw fail("SETITEMS on a non-dict")
                }
            case 0x8F: try push(.set(PickleList())) // EMPTY_SET
            case 0x90: // ADDITEMS
                let items = try popMark()
                guard case .set(let set) = try top() else { throw fail("ADDITEMS to a non-set") }
                set.items.append(contentsOf: items)
            case 0x91: try push(.set(PickleList(try popMark()))) // FROZENSET

            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.asString, let n = name.asString else { throw fail("STACK_GLOBAL needs two strings") }
                try push(.global(module: m, name: n))
            case 0x52: // REDUCE
                let (arguments, depth) = try popWithDepth(), callable = try pop()
                guard let args = arguments.asTuple else { throw fail("REDUCE arguments are not a tuple") }
                let built = try applyGlobal(callable, args)
                if case .tuple = built { try push(built, depth: depth) } else { try push(built) }
            case 0x81: // NEWOBJ
                let arguments = try pop(), cls = try pop()
                guard let args = arguments.asTuple else { throw fail("NEWOBJ arguments are not a tuple") }
                try push(try applyGlobal(cls, args))
            case 0x92: // NEWOBJ_EX
                _ = try pop()
                let arguments = try pop(), cls = try pop()
                guard let args = arguments.asTuple else { throw fail("NEWOBJ_EX arguments are not a tuple") }
                try push(try applyGlobal(cls, args))
            case 0x6F: // OBJ: MARK cls args... OBJ
                let items = try popMark()
                guard let cls = items.first else { throw fail("OBJ without a class") }
                try push(try applyGlobal(cls, Array(items.dropFirst())))
            case 0x69: // INST "module\nname\n", MARK args...
                let module = try line(), name = try line()
                try push(try applyGlobal(.global(module: module, name: name), try popMark()))
            case 0x62: // BUILD
                let state = try pop()
                switch try top() {
                case .object(let object): object.state = state
                default: break // an OrderedDict's `_metadata`, a tensor's state: nothing to keep
                }
            case 0x51: try push(try persistentLoad(try pop())) // BINPERSID
            case 0x50: try push(try persistentLoad(.string(try line()))) // PERSID

            case 0x71: try memoPut(Int(try byte())) // BINPUT
            case 0x72: try memoPut(Int(try uint(UInt32.self))) // LONG_BINPUT
            case 0x94: try memoPut(memo.count) // MEMOIZE
            case 0x70: // PUT (text)
                guard let i = Int(try line()) else { throw fail("bad PUT index") }
                try memoPut(i)
            case 0x68: try memoGet(Int(try byte())) // BINGET
            case 0x6A: try memoGet(Int(try uint(UInt32.self))) // LONG_BINGET
            case 0x67: // GET (text)
                guard let i = Int(try line()) else { throw fail("bad GET index") }
                try memoGet(i)

            case 0x82, 0x83, 0x84: throw fail("extension registry opcodes are not supported")
            case 0x97, 0x98: throw fail("out-of-band buffers are not supported")
            default:
                position -= 1
                throw fail("unknown opcode 0x\(String(op, radix: 16, uppercase: true))")
            }
        }
    }
}
