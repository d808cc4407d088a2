import Foundation
import TFWeights
#if canImport(Glibc)
import Glibc
#endif

/// Runs a tool (the C compiler) to completion in its own process group, registered with
/// `InterruptCleanup`: an interrupt of tfc stops the whole group (the compiler driver and the
/// cc1, as and ld it starts), so none of them writes a file after tfc has cleaned up.
/// Returns the exit status (128 + N when killed by signal N), standard output and error.
/// It runs in tfc's working directory: give it absolute paths. With `temporaryDirectory`, its
/// TMPDIR is that directory (a registered `TemporaryDirectory`), so the temporary files the tool
/// makes are removed with it even when an interrupt stops the tool before it removes them.
func runChildProcess(_ program: String, _ arguments: [String], temporaryDirectory: String? = nil) throws -> (Int32, String, String) {
    var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
    guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
        throw UserError("error: cannot run \(program): \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
    for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // A new process group (led by the child); the default action for the signals tfc handles.
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, s) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

    let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var environment: [UnsafeMutablePointer<CChar>?] = []
    if let temporaryDirectory {
        var entry = environ
        while let variable = entry.pointee {
            if strncmp(variable, "TMPDIR=", 7) != 0 { environment.append(strdup(variable)) }
            entry += 1
        }
        environment += [strdup("TMPDIR=" + temporaryDirectory), nil]
    }
    defer { for p in environment { free(p) } }
    var pid: pid_t = 0
    // The signals wait until the child is registered (blocked on this thread; another thread's
    // handler waits for it): one arriving while it is started would leave it unknown to the handler.
    var blocked = sigset_t(), previous = sigset_t()
    sigemptyset(&blocked)
    for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&blocked, s) }
    pthread_sigmask(SIG_BLOCK, &blocked, &previous)
    InterruptCleanup.spawning(true)  // a signal taken by another thread meanwhile waits for the registration
    let spawned = environment.isEmpty
        ? posix_spawn(&pid, program, &actions, &attributes, argv, environ)
        : posix_spawn(&pid, program, &actions, &attributes, argv, environment)
    let child = spawned == 0 ? InterruptCleanup.addChild(pid) : nil
    InterruptCleanup.spawning(false)
    pthread_sigmask(SIG_SETMASK, &previous, nil)
    defer { if let child { InterruptCleanup.removeChild(child) } }
    close(outPipe[1])
    close(errPipe[1])
    guard spawned == 0 else {
        close(outPipe[0])
        close(errPipe[0])
        throw UserError("error: cannot run \(program): \(String(cString: strerror(spawned)))")
    }

    // Both pipes drained at once so a chatty child cannot block on a full one.
    final class Box: @unchecked Sendable { var data = Data() }
    let out = Box()
    let group = DispatchGroup()
    group.enter()
    let outHandle = FileHandle(fileDescriptor: outPipe[0], closeOnDealloc: true)
    DispatchQueue.global().async { out.data = outHandle.readDataToEndOfFile(); group.leave() }
    let err = FileHandle(fileDescriptor: errPipe[0], closeOnDealloc: true).readDataToEndOfFile()
    group.wait()
    var status: Int32 = 0
    var waited = waitpid(pid, &status, 0)
    while waited < 0 && errno == EINTR { waited = waitpid(pid, &status, 0) }
    if waited < 0 {
        // The interrupt handler reaped it (the process is about to die), or it is lost.
        InterruptCleanup.proceedUnlessTerminating()
        throw UserError("error: cannot wait for \(program): \(String(cString: strerror(errno)))")
    }
    InterruptCleanup.proceedUnlessTerminating()  // stopped by tfc's own interrupt: no error to report
    let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: out.data, as: UTF8.self), String(decoding: err, as: UTF8.self))
}
