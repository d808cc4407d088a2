import Foundation
import XCTest

/// Bad input to `tfc compile -o` and to a compiled program: one clear line, exit status 1, and
/// no half-written files.
final class CompileErrorTests: XCTestCase {
    func compile(_ extra: [String], weights: String? = nil, environment: [String: String] = [:]) throws -> TFCResult {
        let tiny = try CompiledTiny.get()
        return try tiny.tfc(["compile", CompiledTiny.spec, "--weights", weights ?? tiny.weights] + extra, extra: environment)
    }

    func testMissingAndMismatchedWeights() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let out = dir.appendingPathComponent("m").path
        var r = try compile(["-o", out], weights: dir.appendingPathComponent("nope.safetensors").path)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(dir.appendingPathComponent("nope.safetensors").path): error: no such file\n")

        let other = dir.appendingPathComponent("mid.safetensors").path
        XCTAssertSucceeded(try tiny.tfc(["init", "specs/examples/mid.tfs", "-o", other]), "init mid")
        r = try compile(["-o", out], weights: other)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("\(other): error: weights do not match the spec: "), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["mid.safetensors"], "nothing written")

        r = try compile(["--emit", "exe", "-o", out], weights: nil)
        XCTAssertSucceeded(r, "control")
    }

    func testUnwritableOutput() throws {
        var r = try compile(["-o", "/nonexistent-tfc-dir/tiny"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "/nonexistent-tfc-dir/tiny: error: -o: the directory /nonexistent-tfc-dir does not exist\n")
        r = try compile(["-o", "/proc/tiny"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("/proc/tiny: error: -o: cannot create a file in /proc: "), r.stderr)
        let dir = try TFC.temporaryDirectory(self)
        r = try compile(["-o", dir.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(dir.path): error: -o names a directory; give a file name\n")
    }

    func testMissingCCompiler() throws {
        let dir = try TFC.temporaryDirectory(self)
        let out = dir.appendingPathComponent("tiny").path
        var r = try compile(["-o", out], environment: ["CC": "/nonexistent/cc"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: no C compiler: '/nonexistent/cc' (from $CC) was not found; tfc compile links with the system C compiler: set CC to gcc or clang, or unset it to use cc\n")
        r = try compile(["-o", out], environment: ["CC": "", "PATH": dir.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: no C compiler: 'cc' is not on the PATH"), r.stderr)
        // A compiler that fails: its diagnostics are shown, and no output is left behind.
        r = try compile(["-o", out], environment: ["CC": "cc -Werror=no-such-warning-flag"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: the C compiler failed (cc -Werror=no-such-warning-flag, exit status 1):"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testUsageErrors() throws {
        let tiny = try CompiledTiny.get()
        var r = try tiny.tfc(["compile", CompiledTiny.spec])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: give --emit STAGE (ast|ir|fused-ir|grad-ir|plan|llvm|asm) to print a stage, or --weights W.safetensors -o NAME"), r.stderr)
        r = try tiny.tfc(["compile", CompiledTiny.spec, "--emit", "ir", "-o", "x"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --weights, -o, --target-cpu, --weights-format, --kv and --tokenizer build a program (--emit exe or shared), not --emit ir\n")
        r = try tiny.tfc(["compile", CompiledTiny.spec, "--emit", "shared", "-o", "libx.so"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --emit shared needs the weights to compile with: --weights W.safetensors\n")
        r = try compile(["-o", "x", "--target-cpu", "pentium-42"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: --target-cpu: unknown CPU 'pentium-42'"), r.stderr)
        r = try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", "x"], extra: ["TFC_RUNTIME_DIR": "/tmp"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: TFC_RUNTIME_DIR=/tmp is not tfc's C runtime"), r.stderr)
    }

    func testSpecChangedSinceCompiling() throws {
        let tiny = try CompiledTiny.get()
        // The same parameters, another rotary base: a different spec, so a different hash.
        let dir = try TFC.temporaryDirectory(self)
        let source = try String(contentsOf: TFC.root.appendingPathComponent(CompiledTiny.spec), encoding: .utf8)
            .replacingOccurrences(of: "rotary_base = 10000.0", with: "rotary_base = 500.0")
        let spec = dir.appendingPathComponent("tiny.tfs").path
        try source.write(toFile: spec, atomically: true, encoding: .utf8)
        let changed = dir.appendingPathComponent("tiny").path
        XCTAssertSucceeded(try tiny.tfc(["compile", spec, "--weights", tiny.weights, "-o", changed]), "compile the changed spec")

        // The changed program with the original program's weights file, and the other way round.
        var r = try TFC.runProcess(URL(fileURLWithPath: changed), ["--tokens", "1,2", "--weights", tiny.dir.appendingPathComponent("tiny.weights").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("tiny: error: \(tiny.dir.appendingPathComponent("tiny.weights").path): was written for a different spec (model \"tiny\", spec hash "), r.stderr)
        XCTAssertTrue(r.stderr.contains("the spec changed since compiling; re-run tfc compile"), r.stderr)
        r = try tiny.run(["--tokens", "1,2", "--weights", dir.appendingPathComponent("tiny.weights").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("the spec changed since compiling"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    /// Panels packed for another vector width (an AVX-512-only build's 32-column panels) are a
    /// different weights layout: the AVX2-only program refuses that file in one line.
    func testWeightsPackedForAnotherLayout() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        for target in ["avx2", "avx512"] {
            XCTAssertSucceeded(try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", dir.appendingPathComponent(target).path,
                                             "--target-cpu", target]), "compile --target-cpu \(target)")
        }
        let avx512Weights = dir.appendingPathComponent("avx512.weights")
        XCTAssertNotEqual(try Data(contentsOf: dir.appendingPathComponent("avx2.weights")), try Data(contentsOf: avx512Weights))
        let r = try TFC.runProcess(dir.appendingPathComponent("avx2"), ["--tokens", "1,2", "--weights", avx512Weights.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "avx2: error: \(avx512Weights.path): its weight layout does not match this program's (written by another tfc compile?): re-run tfc compile\n")
        XCTAssertEqual(r.stdout, "")
    }

    func testWeightsFileProblems() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let good = try Data(contentsOf: tiny.dir.appendingPathComponent("tiny.weights"))
        let truncated = dir.appendingPathComponent("truncated.weights").path
        try good.prefix(5000).write(to: URL(fileURLWithPath: truncated))
        let junk = dir.appendingPathComponent("junk.weights").path
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: junk))
        let missing = dir.appendingPathComponent("missing.weights").path
        let cases: [(String, String)] = [
            (missing, "tiny: error: \(missing): no such weights file (tfc compile writes tiny.weights next to the program; give its path)"),
            (truncated, "tiny: error: \(truncated): truncated or damaged: 5000 bytes, expected \(good.count)"),
            (junk, "tiny: error: \(junk): not a tfc weights file (expected the tiny.weights that tfc compile wrote)"),
            (tiny.weights, "tiny: error: \(tiny.weights): is a safetensors file, not the packed weights of a compiled model"),
        ]
        for (path, message) in cases {
            let r = try tiny.run(["--tokens", "1", "--weights", path])
            XCTAssertEqual(r.status, 1, path)
            XCTAssertTrue(r.stderr.hasPrefix(message), r.stderr)
        }
        // The executable without its side file next to it.
        let lonely = dir.appendingPathComponent("tiny")
        try FileManager.default.copyItem(at: tiny.executable, to: lonely)
        let r = try TFC.runProcess(lonely, ["--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("tiny: error: \(dir.appendingPathComponent("tiny.weights").path): no such weights file"), r.stderr)
    }
}
