#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory. Checkpoints are read through it so tensor data goes from
/// the page cache straight to the output; `release(_:)` drops pages already copied so importing a
/// file larger than memory keeps a small resident set.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CheckpointError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw CheckpointError(path: path, "cannot read: \(String(cString: strerror(errno)))") }
        if (info.st_mode & S_IFMT) != S_IFREG { throw CheckpointError(path: path, "not a regular file") }
        count = Int(info.st_size)
        if count == 0 { base = nil; return }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw CheckpointError(path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit { if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) } }

    /// The bytes `range`, or nil when it does not lie inside the file.
    public func bytes(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: length)
    }

    /// Tells the kernel the pages wholly inside `offset ..< offset + length` are no longer needed
    /// (they stay in the page cache, but leave this process's resident set).
    public func release(_ offset: Int, _ length: Int) {
        guard let base, length > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page
        let end = (offset + length) / page * page
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) }
    }
}

/// Little-endian reads from raw bytes (no alignment needed).
extension UnsafeRawBufferPointer {
    func le<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: self[offset ..< offset + MemoryLayout<T>.size])) }
        return T(littleEndian: value)
    }
}
