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
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(_ bytes: UnsafeRawBufferPointer, path: String, build: @escaping Build, persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes; self.path = path; self.build = build; self.persistentLoad = persistentLoad
    }

    /// Unpickles one value starting at `offset`; returns it and the offset just after STOP.
    static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0, path: String,
                     build: @escaping Build, persistentLoad: @escaping PersistentLoad) throws -> (PickleValue, Int) {
        var u = Unpickler(bytes, path: path, build: build, persistentLoad: persistentLoad)
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

    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }
    private mutating func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return v
    }
    /// The items pushed since the last MARK (which is removed).
    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no mark on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }
    private func pairs(_ items: [PickleValue]) throws -> [(PickleValue, PickleValue)] {
        guard items.count % 2 == 0 else { throw fail("odd number of dict items") }
        return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
    }
    private func memoGet(_ index: Int) throws -> PickleValue {
        guard let v = memo[index] else { throw fail("memo entry \(index) is not defined") }
        return v
    }

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
            case 0x32: stack.append(try top()) // DUP

            case 0x4E: stack.append(.none) // NONE
            case 0x88: stack.append(.bool(true)) // NEWTRUE
            case 0x89: stack.append(.bool(false)) // NEWFALSE
            case 0x4A: stack.append(.int(Int(Int32(bitPattern: try uint(UInt32.self))))) // BININT
            case 0x4B: stack.append(.int(Int(try byte()))) // BININT1
            case 0x4D: stack.append(.int(Int(try uint(UInt16.self)))) // BININT2
            case 0x8A: stack.append(integer(fromLittleEndian: try take(Int(try byte())))) // LONG1
            case 0x8B: stack.append(integer(fromLittleEndian: try take(try length(Int32.self)))) // LONG4
            case 0x49: // INT (text; "00"/"01" are False/True)
                let text = try line()
                if text == "00" { stack.append(.bool(false)) } else if text == "01" { stack.append(.bool(true)) }
                else if let v = Int(text) { stack.append(.int(v)) } else { throw fail("bad INT '\(text)'") }
            case 0x4C: // LONG (text, trailing L)
                let text = try line()
                let digits = text.hasSuffix("L") ? String(text.dropLast()) : text
                if let v = Int(digits) { stack.append(.int(v)) }
                else if let big = Self.twosComplement(decimal: digits) { stack.append(.bigInt(big)) }
                else { throw fail("bad LONG '\(text)'") }
            case 0x47: // BINFLOAT (big-endian)
                let raw = try take(8)
                stack.append(.float(Double(bitPattern: raw.reduce(0) { $0 << 8 | UInt64($1) })))
            case 0x46: // FLOAT (text)
                let text = try line()
                guard let v = Double(text) else { throw fail("bad FLOAT '\(text)'") }
                stack.append(.float(v))

            case 0x58: stack.append(.string(try utf8(try length(UInt32.self)))) // BINUNICODE
            case 0x8C: stack.append(.string(try utf8(Int(try byte())))) // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try utf8(try length(UInt64.self)))) // BINUNICODE8
            case 0x56: stack.append(.string(try line())) // UNICODE (raw-unicode-escape; plain text suffices)
            case 0x55: stack.append(.string(try utf8(Int(try byte())))) // SHORT_BINSTRING
            case 0x54: stack.append(.string(try utf8(try length(Int32.self)))) // BINSTRING
            case 0x53: // STRING (quoted text)
                var text = try line()
                if text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q { text = String(text.dropFirst().dropLast()) }
                stack.append(.string(text))
            case 0x43: stack.append(.bytes(Array(try take(Int(try byte()))))) // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try take(try length(UInt32.self))))) // BINBYTES
            case 0x8E: stack.append(.bytes(Array(try take(try length(UInt64.self))))) // BINBYTES8
            case 0x96: stack.append(.bytes(Array(try take(try length(UInt64.self))))) // BYTEARRAY8

            case 0x29: stack.append(.tuple([])) // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popMark())) // TUPLE
            case 0x85: stack.append(.tuple([try pop()])) // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b])) // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x5D: stack.append(.list(PickleList())) // EMPTY_LIST
            case 0x6C: stack.append(.list(PickleList(try popMark()))) // LIST
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
            case 0x7D: stack.append(.dict(PickleDict())) // EMPTY_DICT
            case 0x64: // DICT
                let dict = PickleDict()
                for (k, v) in try pairs(try popMark()) { dict.set(k, v) }
                stack.append(.dict(dict))
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
            case 0x8F: stack.append(.set(PickleList())) // EMPTY_SET
            case 0x90: // ADDITEMS
                let items = try popMark()
                guard case .set(let set) = try top() else { throw fail("ADDITEMS to a non-set") }
                set.items.append(contentsOf: items)
            case 0x91: stack.append(.set(PickleList(try popMark()))) // FROZENSET

            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                stack.append(.global(module: module, name: name))
            case 0x93: // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.asString, let n = name.asString else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(.global(module: m, name: n))
            case 0x52: // REDUCE
                let arguments = try pop(), callable = try pop()
                guard let args = arguments.asTuple else { throw fail("REDUCE arguments are not a tuple") }
                stack.append(try applyGlobal(callable, args))
            case 0x81: // NEWOBJ
                let arguments = try pop(), cls = try pop()
                guard let args = arguments.asTuple else { throw fail("NEWOBJ arguments are not a tuple") }
                stack.append(try applyGlobal(cls, args))
            case 0x92: // NEWOBJ_EX
                _ = try pop()
                let arguments = try pop(), cls = try pop()
                guard let args = arguments.asTuple else { throw fail("NEWOBJ_EX arguments are not a tuple") }
                stack.append(try applyGlobal(cls, args))
            case 0x6F: // OBJ: MARK cls args... OBJ
                let items = try popMark()
                guard let cls = items.first else { throw fail("OBJ without a class") }
                stack.append(try applyGlobal(cls, Array(items.dropFirst())))
            case 0x69: // INST "module\nname\n", MARK args...
                let module = try line(), name = try line()
                stack.append(try applyGlobal(.global(module: module, name: name), try popMark()))
            case 0x62: // BUILD
                let state = try pop()
                switch try top() {
                case .object(let object): object.state = state
                default: break // an OrderedDict's `_metadata`, a tensor's state: nothing to keep
                }
            case 0x51: stack.append(try persistentLoad(try pop())) // BINPERSID
            case 0x50: stack.append(try persistentLoad(.string(try line()))) // PERSID

            case 0x71: memo[Int(try byte())] = try top() // BINPUT
            case 0x72: memo[Int(try uint(UInt32.self))] = try top() // LONG_BINPUT
            case 0x94: memo[memo.count] = try top() // MEMOIZE
            case 0x70: // PUT (text)
                guard let i = Int(try line()) else { throw fail("bad PUT index") }
                memo[i] = try top()
            case 0x68: stack.append(try memoGet(Int(try byte()))) // BINGET
            case 0x6A: stack.append(try memoGet(Int(try uint(UInt32.self)))) // LONG_BINGET
            case 0x67: // GET (text)
                guard let i = Int(try line()) else { throw fail("bad GET index") }
                stack.append(try memoGet(i))

            case 0x82, 0x83, 0x84: throw fail("extension registry opcodes are not supported")
            case 0x97, 0x98: throw fail("out-of-band buffers are not supported")
            default:
                position -= 1
                throw fail("unknown opcode 0x\(String(op, radix: 16, uppercase: true))")
            }
        }
    }
}
