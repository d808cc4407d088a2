#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output written by `OutputPolicy`: the content goes to a temporary file first (beside the
/// target, or in $TMPDIR for a device or FIFO), registered with `InterruptCleanup` so an
/// interrupt removes it; `commit()` renames it over the target (mode kept) or, for a device, a
/// FIFO or a hard-linked file, copies it in place. Readers (and mmaps) of the old file never see
/// a partial one; a failure or an interrupt leaves the target as it was.
public final class AtomicFile {
    public let target: OutputTarget
    /// The path as the user gave it (messages start with it).
    public var path: String { target.path }
    /// Where the content is written until `commit()`.
    public let temporaryPath: String
    private var fd: Int32
    private var registration: InterruptCleanup.Registration
    private var finished = false

    /// A file at `path` checked against no inputs (for callers that checked already).
    public convenience init(path: String) throws {
        try self.init(OutputPolicy.check(role: "output", path: path))
    }

    public init(_ target: OutputTarget) throws {
        self.target = target
        let inPlaceSpecial = target.method == .inPlace(regular: false)
        let directory = inPlaceSpecial ? temporaryDirectoryPath() : OutputPolicy.directoryOf(target.destination)
        let base = target.destination.lastIndex(of: "/").map { String(target.destination[target.destination.index(after: $0)...]) } ?? target.destination
        let name = inPlaceSpecial ? "tfc-output-\(base)" : ".\(base)"
        var attempt = 0
        while true {
            let candidate = directory + "/\(name).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
            // Registered before it exists, so no moment is left in which a signal would leave it.
            let registration = InterruptCleanup.add(candidate)
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 {
                self.fd = fd
                self.temporaryPath = candidate
                self.registration = registration
                return
            }
            let code = errno
            InterruptCleanup.remove(registration)
            attempt += 1
            if code != EEXIST || attempt > 100 {
                throw OutputError(path: target.path, message: "cannot create a file in \(directory): \(Self.describe(code))")
            }
        }
    }

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    func fail(_ message: String) -> OutputError { OutputError(path: target.path, message: message) }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot write: \(Self.describe(errno))")
            }
            p += n
            left -= n
        }
    }

    /// Closes the temporary file so another program (the linker) can write it at `temporaryPath`.
    public func closeForExternalWriter() throws {
        guard fd >= 0 else { return }
        let result = close(fd)
        fd = -1
        if result != 0 { throw fail("cannot write: \(Self.describe(errno))") }
    }

    /// Puts the content in place. `executable`: a program replacing a file keeps that file's mode
    /// with execute permission added wherever it grants read permission.
    public func commit(executable: Bool = false) throws {
        try closeForExternalWriter()
        InterruptCleanup.proceedUnlessTerminating()  // interrupted: never put in place
        defer { finish() }
        do {
            switch target.method {
            case .create:
                break
            case .replace(let mode, let owner, let group):
                let kept = executable ? mode | ((mode & 0o444) >> 2) : mode
                if chmod(temporaryPath, kept) != 0 { throw fail("cannot write: \(Self.describe(errno))") }
                if geteuid() == 0 { _ = chown(temporaryPath, owner, group) }  // best effort, as root only
            case .inPlace(let regular):
                try copyInPlace(truncate: regular)
                return
            }
            if rename(temporaryPath, target.destination) != 0 { throw fail("cannot replace the file: \(Self.describe(errno))") }
        } catch {
            unlink(temporaryPath)
            throw error
        }
    }

    /// A device or FIFO (or a hard-linked file) is written as it is; opening a FIFO waits for its reader.
    private func copyInPlace(truncate: Bool) throws {
        let source = open(temporaryPath, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw fail("cannot write: \(Self.describe(errno))") }
        defer { close(source); unlink(temporaryPath) }
        let out = open(target.destination, O_WRONLY | O_CLOEXEC | (truncate ? O_TRUNC : 0))
        guard out >= 0 else { throw fail("cannot write: \(Self.describe(errno))") }
        var failure: Int32 = 0
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        copy: while true {
            let n = read(source, buffer, chunk)
            if n < 0 { if errno == EINTR { continue }; failure = errno; break }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = systemWrite(out, buffer + done, n - done)
                if w < 0 { if errno == EINTR { continue }; failure = errno; break copy }
                done += w
            }
        }
        if close(out) != 0 && failure == 0 { failure = errno }
        if failure != 0 { throw fail("cannot write: \(Self.describe(failure))") }
    }

    /// Removes the temporary file after a failure; the target is untouched.
    public func abandon() {
        guard !finished else { return }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
        finish()
    }

    private func finish() {
        finished = true
        InterruptCleanup.remove(registration)
    }

    deinit { abandon() }
}

/// POSIX write(2), named apart from `AtomicFile.write` so the call is unambiguous.
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
