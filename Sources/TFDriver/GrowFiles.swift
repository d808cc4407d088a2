import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File handling for `tfc grow`: outputs are written under temporary names next to their targets
/// and renamed into place only when everything succeeded, so an input is never truncated and a
/// failed growth leaves nothing behind.
enum GrowFiles {
    /// Whether two paths name the same file (after `..`, symlinks and hard links), whether or not
    /// the second exists yet.
    static func same(_ a: String, _ b: String) -> Bool {
        if canonical(a) == canonical(b) { return true }
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return false
    }

    /// An absolute path with symlinks resolved in the existing part (the directory of a file that
    /// does not exist yet).
    static func canonical(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        if let resolved = realpath(url.path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        let directory = url.deletingLastPathComponent().path
        if let resolved = realpath(directory, nil) {
            defer { free(resolved) }
            return String(cString: resolved) + "/" + url.lastPathComponent
        }
        return url.path
    }

    /// A fresh name in `path`'s directory for a file that will be renamed to `path`.
    static func temporary(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = ".\(url.lastPathComponent).grow-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let slash = path.lastIndex(of: "/")
        return slash.map { String(path[...$0]) + name } ?? name
    }

    /// Writes `text` to a new temporary file for `path` and returns its name.
    static func writeTemporary(_ text: String, for path: String) throws -> String {
        let temporary = temporary(for: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw UserError("\(path): error: cannot create a file next to it: \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw UserError("\(path): error: cannot write: \(message)")
            }
            written += n
        }
        if close(fd) != 0 {
            unlink(temporary)
            throw UserError("\(path): error: cannot write: \(String(cString: strerror(errno)))")
        }
        return temporary
    }

    /// Moves a finished temporary file onto its target.
    static func commit(_ temporary: String, to path: String) throws {
        if rename(temporary, path) != 0 {
            throw UserError("\(path): error: cannot replace the file: \(String(cString: strerror(errno)))")
        }
    }

    static func remove(_ path: String) { unlink(path) }
}
