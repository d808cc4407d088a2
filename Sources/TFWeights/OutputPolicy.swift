#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A problem with an output file, found before or while writing it: `PATH: error: MESSAGE`.
public struct OutputError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): error: \(message)" }
}

/// One file a command will write, as `OutputPolicy.check` decided it is to be written.
public struct OutputTarget: Sendable {
    /// How the command line named it, for messages: "-o", "--logits", "--json".
    public let role: String
    /// The path as given.
    public let path: String
    /// `path` with symbolic links followed: the file actually written.
    public let destination: String

    public enum Method: Sendable, Equatable {
        /// No such file yet: a temporary file beside it, renamed to it.
        case create
        /// A regular file with one name: a temporary file beside it, given its mode (and, as
        /// root, its owner), renamed over it.
        case replace(mode: mode_t, owner: uid_t, group: gid_t)
        /// A device, a FIFO, or a regular file with several hard links: written in place (after
        /// the whole content is ready in a temporary file), never renamed over.
        case inPlace(regular: Bool)
    }
    public let method: Method
}

/// tfc's one policy for the files its commands write (README "Outputs"; compiled programs follow
/// the same rules in Runtime/output_file.c). Every output of a command is checked before the
/// first is written:
///   - an output that is one of the command's inputs (the same device and inode, through
///     symbolic links and hard links too) is refused, as are two outputs naming one file;
///   - a directory, a socket and a read-only file are refused, so is a missing directory;
///   - a symbolic link is written through to its target (the link stays);
///   - a regular file is replaced by rename (readers and mmaps of the old file are safe), keeping
///     its mode; hard-linked and non-regular files (/dev/null, a FIFO) are written in place.
/// Writing itself is `AtomicFile`'s: a temporary file, removed on failure or interrupt.
public enum OutputPolicy {
    /// Checks every output against the inputs and each other; throws the first problem.
    public static func check(_ outputs: [(role: String, path: String)], inputs: [(what: String, path: String)]) throws -> [OutputTarget] {
        var targets: [OutputTarget] = []
        for (role, path) in outputs {
            let target = try check(role: role, path: path, inputs: inputs)
            if let other = targets.first(where: { sameFile($0.destination, target.destination) }) {
                throw OutputError(path: path, message: "\(other.role) and \(role) name the same file; give each its own")
            }
            targets.append(target)
        }
        return targets
    }

    /// Checks one output against the inputs.
    public static func check(role: String, path: String, inputs: [(what: String, path: String)] = []) throws -> OutputTarget {
        func refuse(_ message: String) -> OutputError { OutputError(path: path, message: message) }
        if path.isEmpty { throw OutputError(path: "''", message: "\(role): an empty file name") }
        if path.hasSuffix("/") { throw refuse("\(role) names a directory; give a file name") }
        var existing = stat()
        let method: OutputTarget.Method
        let destination: String
        if stat(path, &existing) == 0 {  // through every link, /dev/stdout's too
            for input in inputs {
                var s = stat()
                guard stat(input.path, &s) == 0, s.st_dev == existing.st_dev, s.st_ino == existing.st_ino else { continue }
                let which = input.path == path ? "" : " \(input.path) (the same file)"
                throw refuse("\(role) is the input \(input.what)\(which); write to another file")
            }
            let type = existing.st_mode & S_IFMT
            if type == S_IFDIR { throw refuse("\(role) names a directory; give a file name") }
            if type == S_IFSOCK { throw refuse("\(role) names a socket; cannot write to it") }
            if existing.st_mode & 0o222 == 0 || access(path, W_OK) != 0 {
                throw refuse("\(role) is read-only; not overwritten (write to another file, or make it writable)")
            }
            // A regular file with one name is replaced by rename, at the end of its links; anything
            // else (a device, a FIFO, more names, a file only a /proc link reaches) is written in place.
            var real = stat()
            guard type == S_IFREG, existing.st_nlink <= 1, let resolved = followLinks(path), lstat(resolved, &real) == 0,
                  real.st_dev == existing.st_dev, real.st_ino == existing.st_ino else {
                return OutputTarget(role: role, path: path, destination: path, method: .inPlace(regular: type == S_IFREG))
            }
            destination = resolved
            method = .replace(mode: existing.st_mode & 0o7777, owner: existing.st_uid, group: existing.st_gid)
        } else {
            guard let resolved = followLinks(path) else { throw refuse("\(role): too many levels of symbolic links") }
            destination = resolved  // a link to nothing: its target is created
            let directory = directoryOf(destination)
            var d = stat()
            guard stat(directory, &d) == 0 else { throw refuse("\(role): the directory \(directory) does not exist") }
            guard d.st_mode & S_IFMT == S_IFDIR else { throw refuse("\(role): \(directory) is not a directory") }
            method = .create
        }
        let directory = directoryOf(destination)
        // Replacing and creating both make a file in the directory: try it (permissions, a
        // read-only file system, /proc ...), so a command fails before it writes anything.
        let probe = directory + "/.tfc-probe-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw refuse("\(role): cannot create a file in \(directory): \(String(cString: strerror(errno)))") }
        close(fd)
        unlink(probe)
        return OutputTarget(role: role, path: path, destination: destination, method: method)
    }

    /// Whether two paths name one file: the same inode, or (for files not there yet) the same
    /// absolute path once `.`, `..` and symbolic links in the directories are resolved.
    public static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        return canonical(a) == canonical(b)
    }

    /// `path` with symbolic links in its last component followed (to a target that may not exist
    /// yet); nil for a loop.
    static func followLinks(_ path: String) -> String? {
        var current = path
        for _ in 0..<40 {
            var s = stat()
            guard lstat(current, &s) == 0, s.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, Int(PATH_MAX))
            guard n > 0 else { return current }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : directoryOf(current) + "/" + target
        }
        return nil
    }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// An absolute path with the directory part resolved by realpath(3).
    static func canonical(_ path: String) -> String {
        let directory = directoryOf(path)
        let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        guard let resolved = realpath(name == "." || name == ".." || name.isEmpty ? path : directory, nil) else { return path }
        defer { free(resolved) }
        let base = String(cString: resolved)
        if name == "." || name == ".." || name.isEmpty { return base }
        return (base == "/" ? "" : base) + "/" + name
    }
}
