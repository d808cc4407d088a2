import Foundation
import XCTest

/// Every input is checked with stat(2) before it is opened (Runtime/input_file.c): a FIFO, a
/// device or a directory is a one-line error with the reason, exit status 1, never a blocked
/// process; so is a missing file or a link to nothing.
final class InputFileTests: XCTestCase {
    /// Inputs that are not readable regular files, and the reason given for each.
    static func badInputs(in dir: URL) throws -> [(path: String, reason: String)] {
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let directory = dir.appendingPathComponent("adir").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let dangling = dir.appendingPathComponent("dangling").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "nothing-here")
        let linkToFIFO = dir.appendingPathComponent("fifo-link").path
        try FileManager.default.createSymbolicLink(atPath: linkToFIFO, withDestinationPath: "fifo")
        var inputs: [(String, String)] = [
            (fifo, "is a FIFO (named pipe), not a regular file"),
            (linkToFIFO, "is a FIFO (named pipe), not a regular file"),
            ("/dev/null", "is a character device, not a regular file"),
            (directory, "is a directory"),
            (dir.appendingPathComponent("missing").path, "no such file"),
            (dangling, "no such file (a symbolic link to nothing)"),
        ]
        if geteuid() != 0 {  // root reads anything: the permission case exists for users only
            let locked = dir.appendingPathComponent("locked").path
            XCTAssertTrue(FileManager.default.createFile(atPath: locked, contents: Data("x".utf8), attributes: [.posixPermissions: 0o000]))
            inputs.append((locked, "permission denied"))
        }
        return inputs
    }

    func testEveryInputIsCheckedBeforeItIsOpened() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let spec = "specs/tiny.tfs"
        // Each reader of a file, and the line it prints for a bad one (after `reason`).
        let readers: [(name: String, arguments: (String) -> [String], message: (String, String) -> String)] = [
            ("check SPEC", { ["check", $0] }, { path, reason in reason.hasPrefix("no such file") ? "\(path):1:1: error: \(reason)" : "\(path):1:1: error: cannot read file: \(reason)" }),
            ("init SPEC", { ["init", $0, "-o", dir.appendingPathComponent("never.safetensors").path] },
             { path, reason in reason.hasPrefix("no such file") ? "\(path):1:1: error: \(reason)" : "\(path):1:1: error: cannot read file: \(reason)" }),
            ("run --weights", { ["run", spec, "--weights", $0, "--tokens", "1,2"] }, { path, reason in "\(path): error: \(reason)" }),
            ("generate --weights", { ["generate", spec, "--weights", $0, "--tokens", "1,2", "-n", "2"] }, { path, reason in "\(path): error: \(reason)" }),
            ("grow --weights", { ["grow", spec, "--weights", $0, "-o", dir.appendingPathComponent("g.tfs").path, "--out-weights",
                                  dir.appendingPathComponent("g.safetensors").path, "--tokens", "mlp=+8"] }, { path, reason in "\(path): error: \(reason)" }),
            ("compile --weights", { ["compile", spec, "--weights", $0, "-o", dir.appendingPathComponent("never").path] }, { path, reason in "\(path): error: \(reason)" }),
            ("bench --compare", { ["bench", "kernels", spec, "--quick", "--compare", $0] },
             { path, reason in "error: --compare \(path): \(reason) (--compare takes a report written by tfc bench --json)" }),
        ]
        for (path, reason) in try Self.badInputs(in: dir) {
            for reader in readers {
                guard let r = try runBounded(TFC.executable, reader.arguments(path), timeout: 60) else { continue }
                XCTAssertEqual(r.status, 1, "\(reader.name) \(path): \(r.stderr)")
                XCTAssertEqual(r.stderr, reader.message(path, reason) + "\n", "\(reader.name) \(path)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("never.safetensors").path))
    }

    func testCompiledProgramChecksItsWeightsBeforeOpeningThem() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        for (path, reason) in try Self.badInputs(in: dir) {
            guard let r = try runBounded(tiny.executable, ["--tokens", "1,2", "--weights", path], timeout: 60) else { continue }
            XCTAssertEqual(r.status, 1, path)
            let expected = reason.hasPrefix("no such file")
                ? "tiny: error: \(path): no such weights file (tfc compile writes tiny.weights next to the program; give its path)\n"
                : "tiny: error: \(path): cannot read the weights file: \(reason)\n"
            XCTAssertEqual(r.stderr, expected, path)
        }
    }
}
