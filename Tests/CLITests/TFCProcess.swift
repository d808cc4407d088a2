import Foundation
import XCTest

/// Runs the built `tfc` executable the way a user would, capturing its output and exit status.
struct TFCResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum TFC {
    /// The repository root (for specs/ and Tests/reference/).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `tfc` sits in the build directory with the test bundle (or set TFC_BINARY).
    static let executable: URL = {
        if let path = ProcessInfo.processInfo.environment["TFC_BINARY"] { return URL(fileURLWithPath: path) }
        let bundle = Bundle(for: Marker.self).bundleURL
        let candidates = [bundle, bundle.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        for dir in candidates where FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("tfc").path) {
            return dir.appendingPathComponent("tfc")
        }
        return candidates[0].appendingPathComponent("tfc")
    }()

    final class Marker {}

    /// The `--target-cpu` values of the vector targets this CPU runs (from /proc/cpuinfo, as the
    /// JIT's features are): tests of generated code run each one.
    static let runnableTargets: [String] = {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy { cpuinfo.contains(" \($0)") }
        return ["avx2"] + (avx512 ? ["avx512"] : [])
    }()

    @discardableResult
    static func run(_ arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws -> TFCResult {
        try runProcess(executable, arguments, cwd: cwd, environment: environment)
    }

    static func runProcess(_ executable: URL, _ arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws -> TFCResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = cwd ?? root
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a chatty child cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let outData = outBox.data
        process.waitUntilExit()
        return TFCResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs python3 with the given arguments (the NumPy reference).
    static func python(_ arguments: [String]) throws -> TFCResult {
        try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3"] + arguments)
    }

    /// A fresh temporary directory, removed when the test ends.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

/// Asserts a command succeeded, showing its stderr otherwise.
func XCTAssertSucceeded(_ result: TFCResult, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(result.status, 0, "\(what) failed: \(result.stderr)", file: file, line: line)
}
