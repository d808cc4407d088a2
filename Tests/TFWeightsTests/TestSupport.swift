import Foundation
import XCTest
@testable import TFWeights

/// A fresh directory under the system temp dir, removed when the test case ends.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tfweights-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url.path
}

/// Runs `python3 -c script args…` and returns its stdout; fails the test on a non-zero exit.
@discardableResult
func runPython(_ script: String, _ args: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + args
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: stdout, as: UTF8.self)
    if process.terminationStatus != 0 {
        XCTFail("python3 failed (\(process.terminationStatus)): \(String(decoding: stderr, as: UTF8.self))", file: file, line: line)
    }
    return text
}

/// Writes raw safetensors bytes: an 8-byte little-endian length (the header's own length
/// unless `declaredLength` says otherwise), the header text, then `data`.
func writeRawSafetensors(_ path: String, header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) throws {
    let h = Array(header.utf8)
    let n = declaredLength ?? UInt64(h.count)
    var bytes = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
    bytes += h
    bytes += data
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The one-line description of the WeightError `body` throws (fails the test if none).
func weightErrorText(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> String {
    do {
        try body()
        XCTFail("expected a WeightError", file: file, line: line)
        return ""
    } catch let error as WeightError {
        XCTAssertFalse(error.description.contains("\n"), "error must be one line", file: file, line: line)
        return error.description
    } catch let error as OutputError {  // a file an output policy refused (OutputPolicy.swift)
        XCTAssertFalse(error.description.contains("\n"), "error must be one line", file: file, line: line)
        return error.description
    } catch {
        XCTFail("expected a WeightError, got \(error)", file: file, line: line)
        return ""
    }
}
