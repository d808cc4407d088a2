import Foundation
import XCTest

/// A child process started without waiting for it: for tests that signal it while it runs, and
/// for runs that must end (a regression that blocks, on a FIFO say, fails instead of hanging).
final class StartedProcess {
    let process = Process()
    private final class Box: @unchecked Sendable { var data = Data() }
    private let out = Box(), err = Box()
    private let group = DispatchGroup()

    init(_ executable: URL, _ arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = cwd ?? TFC.root
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        for (pipe, box) in [(outPipe, out), (errPipe, err)] {
            group.enter()
            DispatchQueue.global().async { [group] in box.data = pipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        }
    }

    /// `tfc` with these arguments.
    convenience init(tfc arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws {
        try self.init(TFC.executable, arguments, cwd: cwd, environment: environment)
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits up to `timeout` seconds; nil if it was still running (it is then killed).
    func wait(timeout: TimeInterval) -> TFCResult? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            group.wait()
            return nil
        }
        process.waitUntilExit()
        group.wait()
        return TFCResult(status: process.terminationStatus, stdout: String(decoding: out.data, as: UTF8.self),
                         stderr: String(decoding: err.data, as: UTF8.self))
    }

    /// Whether it ended by an uncaught signal (then `wait`'s status is the signal number).
    var killedBySignal: Bool { process.terminationReason == .uncaughtSignal }
}

/// Runs a program and fails the test (returning nil) if it does not end within `timeout` seconds.
func runBounded(_ executable: URL, _ arguments: [String], timeout: TimeInterval = 120, cwd: URL? = nil,
                environment: [String: String]? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> TFCResult? {
    let started = try StartedProcess(executable, arguments, cwd: cwd, environment: environment)
    guard let result = started.wait(timeout: timeout) else {
        XCTFail("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not end within \(Int(timeout)) s (blocked?)", file: file, line: line)
        return nil
    }
    return result
}
