import Foundation
import XCTest

/// SIGINT and SIGTERM while a command writes: the command dies of the signal, and neither its
/// temporary output files (`.NAME.tmp-PID-…`) nor tfc compile's work directory
/// (`$TMPDIR/tfc-compile-…`) nor half-written outputs remain (Runtime/cleanup.c).
final class InterruptCleanupTests: XCTestCase {
    /// A spec of ~64M parameters (256 MB of weights): long enough to write that a signal lands mid-way.
    func largeSpec(in dir: URL) throws -> String {
        let tiny = try String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)
        let source = tiny.replacingOccurrences(of: "hidden = 64", with: "hidden = 512").replacingOccurrences(of: "layers = 2", with: "layers = 16")
        let path = dir.appendingPathComponent("large.tfs").path
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Case {
        let name: String
        let signal: Int32
        /// The command, given the scene directory, its output directory and the inputs made by `prepare`.
        let arguments: (_ dir: URL, _ out: URL) -> [String]
        /// When to send the signal: a file whose name contains this appears in `out` (or in TMPDIR).
        let appearsIn: KeyPath<Paths, URL>
        let marker: String
        /// More environment for the command (a stand-in C compiler).
        var environment: [String: String] = [:]
    }

    struct Paths {
        let out: URL
        let tmp: URL
    }

    func testInterruptedCommandsLeaveNoTemporaryFiles() throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = try largeSpec(in: dir)
        let weights = dir.appendingPathComponent("large.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights]), "init")
        let tinyWeights = dir.appendingPathComponent("tiny.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", tinyWeights]), "init tiny")

        // A stand-in C compiler that makes a temporary file in $TMPDIR and is stopped before it
        // removes it (gcc's driver can be, between making a name and recording it).
        let leavingCompiler = dir.appendingPathComponent("leaving-cc").path
        try "#!/bin/sh\n: > \"${TMPDIR:-/tmp}/ccLEFT.s\"\nexec sleep 60\n".write(toFile: leavingCompiler, atomically: true, encoding: .utf8)
        chmod(leavingCompiler, 0o755)

        let cases: [Case] = [
            Case(name: "init", signal: SIGINT, arguments: { _, out in ["init", spec, "-o", out.appendingPathComponent("w.safetensors").path] },
                 appearsIn: \.out, marker: ".w.safetensors.tmp-"),
            Case(name: "init", signal: SIGTERM, arguments: { _, out in ["init", spec, "-o", out.appendingPathComponent("w.safetensors").path] },
                 appearsIn: \.out, marker: ".w.safetensors.tmp-"),
            Case(name: "grow", signal: SIGTERM, arguments: { _, out in
                     ["grow", spec, "--weights", weights, "-o", out.appendingPathComponent("g.tfs").path,
                      "--out-weights", out.appendingPathComponent("g.safetensors").path, "--tokens", "mlp=+64", "--no-verify"] },
                 appearsIn: \.out, marker: ".g.safetensors.tmp-"),
            Case(name: "grow", signal: SIGINT, arguments: { _, out in
                     ["grow", spec, "--weights", weights, "-o", out.appendingPathComponent("g.tfs").path,
                      "--out-weights", out.appendingPathComponent("g.safetensors").path, "--tokens", "mlp=+64", "--no-verify"] },
                 appearsIn: \.out, marker: ".g.safetensors.tmp-"),
            // While the kernels are generated (the work directory exists) and while the C compiler links.
            Case(name: "compile (codegen)", signal: SIGTERM, arguments: { _, out in
                     ["compile", "specs/tiny.tfs", "--weights", tinyWeights, "-o", out.appendingPathComponent("tiny").path] },
                 appearsIn: \.tmp, marker: "tfc-compile-"),
            Case(name: "compile (link)", signal: SIGINT, arguments: { _, out in
                     ["compile", "specs/tiny.tfs", "--weights", tinyWeights, "-o", out.appendingPathComponent("tiny").path] },
                 appearsIn: \.out, marker: ".tiny.tmp-"),
            Case(name: "compile (link)", signal: SIGTERM, arguments: { _, out in
                     ["compile", "specs/tiny.tfs", "--weights", tinyWeights, "-o", out.appendingPathComponent("tiny").path] },
                 appearsIn: \.out, marker: ".tiny.tmp-"),
            Case(name: "compile (a C compiler's own temporary file)", signal: SIGTERM, arguments: { _, out in
                     ["compile", "specs/tiny.tfs", "--weights", tinyWeights, "-o", out.appendingPathComponent("tiny").path] },
                 appearsIn: \.tmp, marker: "ccLEFT", environment: ["CC": leavingCompiler]),
        ]
        for (index, c) in cases.enumerated() {
            let what = "\(c.name), signal \(c.signal)"
            let paths = Paths(out: dir.appendingPathComponent("out\(index)"), tmp: dir.appendingPathComponent("tmp\(index)"))
            for d in [paths.out, paths.tmp] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: false) }
            let started = try StartedProcess(tfc: c.arguments(dir, paths.out),
                                             environment: ["TMPDIR": paths.tmp.path, "TFC_CACHE_DIR": dir.appendingPathComponent("cache\(index)").path]
                                                 .merging(c.environment) { $1 })
            // Wait for the temporary file, then signal.
            let watched = paths[keyPath: c.appearsIn]
            let deadline = Date().addingTimeInterval(120)
            var seen = false
            while Date() < deadline && started.process.isRunning {
                // Anywhere below it: the C compiler's files are in tfc compile's work directory.
                let names = (try? FileManager.default.subpathsOfDirectory(atPath: watched.path)) ?? []
                if names.contains(where: { ($0 as NSString).lastPathComponent.contains(c.marker) }) { seen = true; break }
                usleep(2_000)
            }
            XCTAssertTrue(seen, "\(what): no \(c.marker)* appeared in \(watched.path)")
            kill(started.pid, c.signal)
            guard let result = started.wait(timeout: 60) else { XCTFail("\(what): did not end after the signal"); continue }
            XCTAssertTrue(started.killedBySignal, "\(what): ended with status \(result.status) instead of dying of the signal: \(result.stderr)")
            XCTAssertEqual(result.status, c.signal, what)
            // Nothing left: no temporary file, no partial output, no work directory.
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: paths.out.path), [], "\(what): left in the output directory")
            usleep(200_000)  // the compiler's process group dies with it
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: paths.tmp.path), [], "\(what): left in TMPDIR")
        }
    }
}
