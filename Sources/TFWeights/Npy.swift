import TFRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NumPy `.npy` files: the exchange format with the Python reference and with users.
///
/// Writing produces version 1.0, dtype `<f4`, C order, the header padded so the data starts
/// at a multiple of 64 bytes (as NumPy itself does). Reading accepts versions 1.0–3.0 in C
/// order with dtype `<f4`, `<f8`, `<f2`, `<i4` or `<i8`, converted to Float.
public enum Npy {
    /// An array read from a `.npy` file.
    public struct Array: Equatable, Sendable {
        public var shape: [Int]
        public var data: [Float]
        public init(shape: [Int], data: [Float]) {
            self.shape = shape
            self.data = data
        }
    }

    /// Writes `data` (C order) with `shape` to `path` (atomically, like the safetensors writer).
    public static func write(path: String, shape: [Int], data: UnsafeBufferPointer<Float>) throws {
        try write(to: OutputPolicy.check(role: "output", path: path), shape: shape, data: data)
    }

    /// Writes `data` (C order) with `shape` to an output checked by `OutputPolicy`.
    public static func write(to target: OutputTarget, shape: [Int], data: UnsafeBufferPointer<Float>) throws {
        let path = target.path
        let expected = shape.reduce(1, *)
        guard !shape.contains(where: { $0 < 0 }), data.count == expected else {
            throw WeightError(path: path, message: "\(data.count) values for shape \(formatShape(shape)) (\(expected) expected)")
        }
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = Swift.Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }".utf8)
        // magic (6) + version (2) + header length (2) + header, ending in '\n', padded to 64.
        while (10 + header.count + 1) % 64 != 0 { header.append(UInt8(ascii: " ")) }
        header.append(UInt8(ascii: "\n"))
        var prefix: [UInt8] = [0x93] + Swift.Array("NUMPY".utf8) + [1, 0]
        prefix += [UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        let file = try AtomicFile(target)
        do {
            try file.write(prefix + header)
            try file.write(UnsafeRawBufferPointer(data))
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    /// Writes `data` (C order) with `shape` to `path`.
    public static func write(path: String, shape: [Int], data: [Float]) throws {
        try data.withUnsafeBufferPointer { try write(path: path, shape: shape, data: $0) }
    }

    public static func write(to target: OutputTarget, shape: [Int], data: [Float]) throws {
        try data.withUnsafeBufferPointer { try write(to: target, shape: shape, data: $0) }
    }

    /// Reads a `.npy` file. Throws a one-line `WeightError` for anything it does not support.
    public static func read(path: String) throws -> Array {
        let bytes = try readFile(path)
        func fail(_ message: String) -> WeightError { WeightError(path: path, message: message) }
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1..<6]) == Swift.Array("NUMPY".utf8) else {
            throw fail("not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerStart: Int, headerLength: Int
        switch major {
        case 1:
            headerStart = 10
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated .npy header") }
            headerStart = 12
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        default:
            throw fail("unsupported .npy version \(major).\(bytes[7])")
        }
        guard headerStart + headerLength <= bytes.count else { throw fail("truncated .npy header") }
        let header = String(decoding: bytes[headerStart ..< headerStart + headerLength], as: UTF8.self)
        guard let descr = field("descr", in: header).flatMap(unquote) else { throw fail("no 'descr' in the .npy header") }
        guard let fortran = field("fortran_order", in: header) else { throw fail("no 'fortran_order' in the .npy header") }
        if fortran != "False" { throw fail("Fortran-order arrays are not supported") }
        guard let shapeText = field("shape", in: header), let shape = parseShape(shapeText) else {
            throw fail("no valid 'shape' in the .npy header")
        }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        let available = bytes.count - dataStart
        func load<T>(_ type: T.Type, _ convert: (T) -> Float) throws -> [Float] {
            let need = count * MemoryLayout<T>.size
            guard available >= need else {
                throw fail("truncated data: shape \(formatShape(shape)) of \(descr) needs \(need) bytes, the file has \(available)")
            }
            return bytes.withUnsafeBytes { raw in
                (0..<count).map { convert(raw.loadUnaligned(fromByteOffset: dataStart + $0 * MemoryLayout<T>.size, as: T.self)) }
            }
        }
        let data: [Float]
        switch descr {
        case "<f4":  // the common case: one copy instead of an element-wise map
            guard available >= count * 4 else {
                throw fail("truncated data: shape \(formatShape(shape)) of <f4 needs \(count * 4) bytes, the file has \(available)")
            }
            data = [Float](unsafeUninitializedCapacity: count) { buffer, n in
                bytes.withUnsafeBytes { raw in
                    if count > 0 { memcpy(buffer.baseAddress!, raw.baseAddress! + dataStart, count * 4) }
                }
                n = count
            }
        case "<f8": data = try load(Double.self) { Float($0) }
        case "<f2": data = try load(UInt16.self) { tfc_f16_to_f32($0) }
        case "<i4": data = try load(Int32.self) { Float($0) }
        case "<i8": data = try load(Int64.self) { Float($0) }
        default: throw fail("unsupported dtype '\(descr)' (tfc reads <f4, <f8, <f2, <i4, <i8)")
        }
        return Array(shape: shape, data: data)
    }

    /// The raw text after `'key':` up to the next top-level `,` or `}` (tuples kept whole).
    static func field(_ key: String, in header: String) -> String? {
        guard let range = header.firstRange(of: "'\(key)':") else { return nil }
        var depth = 0
        var out = ""
        for c in header[range.upperBound...] {
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if depth == 0 && (c == "," || c == "}") { break }
            out.append(c)
        }
        return out.trimmingSpaces()
    }

    static func unquote(_ s: String) -> String? {
        guard s.count >= 2, let q = s.first, q == "'" || q == "\"", s.last == q else { return nil }
        return String(s.dropFirst().dropLast())
    }

    static func parseShape(_ s: String) -> [Int]? {
        guard s.first == "(", s.last == ")" else { return nil }
        let inner = s.dropFirst().dropLast()
        var dims: [Int] = []
        for part in inner.split(separator: ",") {
            let t = String(part).trimmingSpaces()
            if t.isEmpty { continue }
            guard let d = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), d >= 0 else { return nil }
            dims.append(d)
        }
        return dims
    }

    /// The whole file, read with one fread (fast in debug builds too).
    static func readFile(_ path: String) throws -> [UInt8] {
        // Checked before opening: a FIFO or a device would block or never end.
        var why = [CChar](repeating: 0, count: 256)
        let fd = tfc_input_open(path, &why, why.count)
        guard fd >= 0, let f = fdopen(fd, "rb") else {
            if fd >= 0 { close(fd) }
            throw WeightError(path: path, message: String(cString: why))
        }
        defer { fclose(f) }
        var info = stat()
        guard fstat(fileno(f), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw WeightError(path: path, message: "not a regular file")
        }
        let size = Int(info.st_size)
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = size == 0 ? 0 : fread(buffer.baseAddress, 1, size, f)
            failed = count != size
            if failed { count = 0 }
        }
        if failed { throw WeightError(path: path, message: "cannot read: \(String(cString: strerror(errno)))") }
        return bytes
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
