#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a safetensors file of F32 tensors.
///
/// Tensors are written sorted by name, the header is padded with spaces to a multiple of 8
/// bytes (so every tensor's data is 8-byte aligned), and the file is written to a temporary
/// file in the target's directory and renamed over the target: an existing file, possibly
/// still mapped as the input, is never truncated, and a failed write leaves it untouched.
public struct SafetensorsWriter {
    /// Where a tensor's values come from when the file is written.
    enum Source {
        case array([Float])
        case buffer(UnsafeBufferPointer<Float>)
        /// A tensor of an open file; holding it keeps its mapping alive until the write.
        case tensor(WeightTensor)
        /// Called with consecutive chunks (element offset, chunk); chunks have `chunk` elements
        /// except the last.
        case chunks(chunk: Int, (Int, UnsafeMutableBufferPointer<Float>) throws -> Void)
    }

    struct Entry {
        var name: String
        var shape: [Int]
        var source: Source
        var count: Int {
            switch source {
            case .array(let a): return a.count
            case .buffer(let b): return b.count
            case .tensor(let t): return t.count
            case .chunks: return shape.reduce(1, *)
            }
        }
    }

    /// Stored as `__metadata__` (omitted when empty).
    public var metadata: [String: String]
    var entries: [Entry] = []

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Adds a tensor from an array (`data.count` must equal the product of `shape`).
    public mutating func add(_ name: String, shape: [Int], data: [Float]) {
        entries.append(Entry(name: name, shape: shape, source: .array(data)))
    }

    /// Adds a tensor from memory the caller keeps valid until `write(to:)` returns
    /// (e.g. a `WeightTensor` of a file being rewritten).
    public mutating func add(_ name: String, shape: [Int], data: UnsafeBufferPointer<Float>) {
        entries.append(Entry(name: name, shape: shape, source: .buffer(data)))
    }

    /// Adds a tensor of an open weight file under its own (or another) name. The writer keeps
    /// the file's mapping alive, so the target may be the file the tensor comes from.
    public mutating func add(_ tensor: WeightTensor, as name: String? = nil) {
        entries.append(Entry(name: name ?? tensor.name, shape: tensor.shape, source: .tensor(tensor)))
    }

    /// Adds a tensor whose values `fill` writes into a buffer of the tensor's size when the file
    /// is written, so large generated tensors never exist as Swift arrays.
    public mutating func add(_ name: String, shape: [Int],
                             fill: @escaping (UnsafeMutableBufferPointer<Float>) throws -> Void) {
        let count = shape.reduce(1, *)
        entries.append(Entry(name: name, shape: shape, source: .chunks(chunk: max(count, 1)) { _, buffer in
            try fill(buffer)
        }))
    }

    /// Adds a tensor produced chunk by chunk: `fill(offset, chunk)` is called for consecutive
    /// ranges of at most `chunk` elements.
    public mutating func add(_ name: String, shape: [Int], chunk: Int,
                      fill: @escaping (Int, UnsafeMutableBufferPointer<Float>) throws -> Void) {
        entries.append(Entry(name: name, shape: shape, source: .chunks(chunk: max(chunk, 1), fill)))
    }

    /// Writes the file. Throws a one-line `WeightError` about `path` for a bad tensor (negative
    /// dimension, value count not matching the shape, duplicate name) or an I/O failure.
    public func write(to path: String) throws {
        try write(to: OutputPolicy.check(role: "output", path: path))
    }

    /// Writes the file to an output checked by `OutputPolicy`.
    public func write(to target: OutputTarget) throws {
        let file = try AtomicFile(target)
        do {
            try write(into: file)
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    /// Writes the content into `file` without committing it (the caller commits, e.g. after
    /// checking the written weights, or together with other outputs).
    public func write(into file: AtomicFile) throws {
        let path = file.path
        let sorted = entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for (i, e) in sorted.enumerated() {
            if e.shape.contains(where: { $0 < 0 }) {
                throw WeightError(path: path, message: "tensor '\(e.name)': negative dimension in shape \(formatShape(e.shape))")
            }
            let expected = e.shape.reduce(1, *)
            if e.count != expected {
                throw WeightError(path: path, message: "tensor '\(e.name)': \(e.count) values for shape \(formatShape(e.shape)) (\(expected) expected)")
            }
            if i > 0 && sorted[i - 1].name == e.name {
                throw WeightError(path: path, message: "duplicate tensor name '\(e.name)'")
            }
            if e.name == "__metadata__" {
                throw WeightError(path: path, message: "'__metadata__' cannot be a tensor name")
            }
        }
        let header = Self.header(sorted, metadata: metadata)
        var prefix = [UInt8](repeating: 0, count: 8)
        for b in 0..<8 { prefix[b] = UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64(b))) }

        try file.write(prefix)
        try file.write(header)
        for e in sorted { try Self.writeData(e, to: file) }
    }

    private static func writeData(_ e: Entry, to file: AtomicFile) throws {
        switch e.source {
        case .array(let a):
            try a.withUnsafeBytes { try file.write($0) }
        case .buffer(let b):
            try file.write(UnsafeRawBufferPointer(b))
        case .tensor(let t):
            try t.withFloats { try file.write(UnsafeRawBufferPointer($0)) }
        case .chunks(let chunk, let fill):
            let total = e.count
            let size = min(chunk, max(total, 1))
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: size)
            defer { buffer.deallocate() }
            memset(buffer.baseAddress!, 0, size * MemoryLayout<Float>.stride)  // C, fast even in debug builds
            var offset = 0
            while offset < total {
                let n = min(size, total - offset)
                let slice = UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
                try fill(offset, slice)
                try file.write(UnsafeRawBufferPointer(slice))
                offset += n
            }
        }
    }

    /// The JSON header, space-padded to a multiple of 8 bytes.
    static func header(_ sorted: [Entry], metadata: [String: String]) -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for e in sorted {
            let bytes = e.count * 4
            if !first { json += "," }
            first = false
            json += "\(jsonString(e.name)):{\"dtype\":\"F32\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        json += "}"
        var bytes = Array(json.utf8)
        while bytes.count % 8 != 0 { bytes.append(UInt8(ascii: " ")) }
        return bytes
    }

    /// A JSON string literal (quotes, backslashes and control characters escaped).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
