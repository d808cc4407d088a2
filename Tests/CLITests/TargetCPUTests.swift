import Foundation
import XCTest

/// `--target-cpu` of the JIT commands: each vector target this CPU runs gives the naive
/// backend's logits; one it cannot run is refused in one line.
final class TargetCPUTests: XCTestCase {
    /// By default `tfc compile` builds an AVX-512 and an AVX2 program over one weights file; the
    /// CPU picks at start, and both compute the JIT's logits.
    func testDefaultBuildHoldsBothVariantsAndPicksOneAtStart() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.path]
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let exe = dir.appendingPathComponent("tiny")
        let c = try TFC.run(["compile", "specs/tiny.tfs", "--weights", weights, "-o", exe.path], environment: env)
        XCTAssertSucceeded(c, "compile")
        XCTAssertTrue(c.stdout.contains("executable tiny for x86-64-v4 ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("] and x86-64-v3 ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("(picked at start from the CPU)"), c.stdout)
        let jit = dir.appendingPathComponent("jit.npy").path
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--target-cpu", "avx2",
                                        "--logits", jit], environment: env), "tfc run")
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let avx512 = cpuinfo.contains(" avx512f") && cpuinfo.contains(" avx512bw") && cpuinfo.contains(" avx512vl") && cpuinfo.contains(" avx512dq")
        for (pretend, label) in [(nil, avx512 ? "x86-64-v4" : "x86-64-v3"), ("avx512f", "x86-64-v3")] {
            let environment = pretend.map { ["TFC_CPU_PRETEND_LACKING": $0] }
            let info = try TFC.runProcess(exe, ["--info"], environment: environment)
            XCTAssertTrue(info.stdout.contains(" for \(label) (sse3,"), info.stdout)
            let out = dir.appendingPathComponent("aot-\(label).npy").path
            XCTAssertSucceeded(try TFC.runProcess(exe, ["--tokens", "1,2,3,4,5", "--logits", out], environment: environment), label)
            let compare = try TFC.python(["-c", "import numpy as np; a = np.load('\(out)'); b = np.load('\(jit)'); print(float(np.abs(a - b).max() / np.abs(b).max()))"])
            XCTAssertLessThanOrEqual(try XCTUnwrap(Double(compare.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), 1e-5, label)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".weights") }
        XCTAssertEqual(files, ["tiny.weights"], "one weights file for both variants")
        // Neither variant runs without AVX2: the message names the AVX2 one.
        let r = try TFC.runProcess(exe, ["--tokens", "1"], environment: ["TFC_CPU_PRETEND_LACKING": "avx2"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("tiny: error: this program was built for x86-64-v3 ("), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("but this CPU lacks avx2\n"), r.stderr)
    }

    func testEveryTargetMatchesNaiveAndAMissingOneIsRefused() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.path]
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let naive = dir.appendingPathComponent("naive.npy").path
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--backend", "naive",
                                        "--logits", naive], environment: env), "naive")
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let targets = ["avx2"] + (cpuinfo.contains(" avx512f") && cpuinfo.contains(" avx512bw") && cpuinfo.contains(" avx512vl") ? ["avx512"] : [])
        for target in targets {
            let out = dir.appendingPathComponent("\(target).npy").path
            XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--target-cpu", target,
                                            "--logits", out], environment: env), target)
            let compare = try TFC.python(["-c", "import numpy as np; a = np.load('\(out)'); b = np.load('\(naive)'); print(float(np.abs(a - b).max() / np.abs(b).max()))"])
            XCTAssertLessThanOrEqual(try XCTUnwrap(Double(compare.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), 1e-4, target)
        }

        // Ahead of time: `--target-cpu avx2` is x86-64-v3 with the AVX2 kernels; its logits are the JIT's.
        let exe = dir.appendingPathComponent("tiny-avx2").path
        var r = try TFC.run(["compile", "specs/tiny.tfs", "--weights", weights, "-o", exe, "--target-cpu", "avx2"], environment: env)
        XCTAssertSucceeded(r, "compile --target-cpu avx2")
        XCTAssertTrue(r.stdout.contains("for x86-64-v3"), r.stdout)
        let aot = dir.appendingPathComponent("aot.npy").path
        XCTAssertSucceeded(try TFC.runProcess(URL(fileURLWithPath: exe), ["--tokens", "1,2,3,4,5", "--logits", aot]), "tiny-avx2")
        let jit = dir.appendingPathComponent("avx2.npy").path
        let compare = try TFC.python(["-c", "import numpy as np; print(float(np.abs(np.load('\(aot)') - np.load('\(jit)')).max()))"])
        XCTAssertLessThanOrEqual(try XCTUnwrap(Double(compare.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), 1e-5)

        var lacking = env
        lacking["TFC_CPU_PRETEND_LACKING"] = "avx512f"
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1", "--target-cpu", "avx512"], environment: lacking)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.hasPrefix("error: --target-cpu avx512: this CPU ("), r.stderr)
        XCTAssertTrue(r.stderr.contains(") lacks avx512f"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        // native falls back to AVX2 on such a CPU.
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1"], environment: lacking), "native")

        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1", "--target-cpu", "sse9"], environment: env)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr, "error: --target-cpu: unknown target 'sse9'; use native, avx2, avx512\n")
        // Both targets timed in one run, each a row, with their ratio.
        let both = targets.reversed().joined(separator: ",")
        r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "3", "--repeat", "1", "--target-cpu", both], environment: env)
        XCTAssertSucceeded(r, "bench model --target-cpu \(both)")
        if targets.count == 2 {
            XCTAssertTrue(r.stdout.contains("fused avx512"), r.stdout)
            XCTAssertTrue(r.stdout.contains("fused avx2"), r.stdout)
            XCTAssertTrue(r.stdout.contains("fused avx512 vs fused avx2: prefill "), r.stdout)
        } else {
            XCTAssertTrue(r.stdout.contains("fused code: avx2"), r.stdout)
        }
        r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "3", "--target-cpu", "avx2,avx2"], environment: env)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("error: --target-cpu: avx2 is listed twice"), r.stderr)
    }
}
