#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TFRuntime

/// Paths removed if the process is killed by a signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT,
/// SIGPIPE), so an interrupted command leaves no temporary files: the registry and its
/// async-signal-safe handler are C (Runtime/cleanup.c), shared with compiled programs.
public enum InterruptCleanup {
    /// A registered path; `remove` it once the file is renamed into place or deleted.
    public struct Registration: Sendable {
        fileprivate let slot: Int32
    }

    /// Registers a file, or a directory to remove after the files (with any other file in it).
    public static func add(_ path: String, directory: Bool = false) -> Registration {
        Registration(slot: tfc_cleanup_add(path, directory ? 1 : 0))
    }

    public static func remove(_ registration: Registration) { tfc_cleanup_remove(registration.slot) }

    /// A child process (a C compiler) that gets the same signal.
    public static func addChild(_ pid: Int32) -> Registration { Registration(slot: tfc_cleanup_add_child(pid)) }
    public static func removeChild(_ registration: Registration) { tfc_cleanup_remove_child(registration.slot) }

    /// Around starting a child: `spawning(true)` before, `spawning(false)` once `addChild` ran
    /// (or the start failed); a signal meanwhile waits for the registration.
    public static func spawning(_ starting: Bool) { tfc_cleanup_spawning(starting ? 1 : 0) }

    /// Returns only if no handled signal has arrived; otherwise waits for the handler (on another
    /// thread) to end the process, so nothing is put in place while it cleans up.
    public static func proceedUnlessTerminating() {
        if tfc_cleanup_terminating() != 0 { tfc_cleanup_await_termination() }
    }
}

/// A fresh private directory in $TMPDIR (default /tmp) for intermediate files, removed with its
/// files by `remove()`, on deinit, or by the interrupt handler.
public final class TemporaryDirectory {
    public let path: String
    private var registrations: [InterruptCleanup.Registration] = []
    private var removed = false

    public init(prefix: String) throws {
        let candidate = temporaryDirectoryPath() + "/\(prefix)-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        // Registered before it exists, so no moment is left in which a signal would leave it.
        let registration = InterruptCleanup.add(candidate, directory: true)
        guard mkdir(candidate, 0o700) == 0 else {
            let code = errno
            InterruptCleanup.remove(registration)
            throw OutputError(path: candidate, message: "cannot create a temporary directory: \(String(cString: strerror(code)))")
        }
        path = candidate
        registrations.append(registration)
    }

    /// The path of a file in the directory, registered (before anything creates it) so an
    /// interrupt removes it.
    public func file(_ name: String) -> String {
        let file = path + "/" + name
        registrations.append(InterruptCleanup.add(file))
        return file
    }

    public func remove() {
        guard !removed else { return }
        removed = true
        // Every file in it (the registered ones, and anything a tool left), then the directory.
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(path)
        for r in registrations { InterruptCleanup.remove(r) }
    }

    deinit { remove() }
}

/// $TMPDIR, else /tmp (as Foundation's temporaryDirectory), without a trailing slash.
func temporaryDirectoryPath() -> String {
    var dir = getenv("TMPDIR").map { String(cString: $0) } ?? ""
    while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    return dir.isEmpty ? "/tmp" : dir
}
