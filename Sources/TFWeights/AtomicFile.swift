#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under a temporary name in the target's directory and renamed over the
/// target on `commit()`, so readers (and mmaps) of the old file never see a partial one.
final class AtomicFile {
    let path: String
    let temporaryPath: String
    private var fd: Int32

    init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var attempt = 0
        while true {
            let candidate = (slash == nil ? "" : directory + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                self.fd = fd
                self.temporaryPath = candidate
                return
            }
            let code = errno
            attempt += 1
            if code != EEXIST || attempt > 100 {
                throw WeightError(path: path, message: "cannot create a file in \(directory.isEmpty ? "/" : directory): \(Self.describe(code))")
            }
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw WeightError(path: path, message: "cannot write: \(Self.describe(errno))")
            }
            p += n
            left -= n
        }
    }

    func commit() throws {
        if close(fd) != 0 {
            fd = -1
            throw WeightError(path: path, message: "cannot write: \(Self.describe(errno))")
        }
        fd = -1
        if rename(temporaryPath, path) != 0 {
            throw WeightError(path: path, message: "cannot replace the file: \(Self.describe(errno))")
        }
    }

    /// Removes the temporary file after a failure.
    func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }
}

/// POSIX write(2), named apart from `AtomicFile.write` so the call is unambiguous.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
