import Foundation
import XCTest

/// `tfc bench train` end to end on the tiny spec, one repetition, tiny peak measurements: every
/// figure for both sides in the table and the JSON, and the refusals. No speed is asserted.
final class BenchTrainTests: XCTestCase {
    func testBenchTrainOnTinySpec() throws {
        let dir = try TFC.temporaryDirectory(self)
        let report = dir.appendingPathComponent("train.json")
        let r = try TFC.run(["bench", "train", "specs/tiny.tfs", "--repeat", "1", "--warmup", "0", "--quick", "--seq", "16", "--batch", "2",
                             "--threads", "1", "--json", report.path])
        XCTAssertSucceeded(r, "tfc bench train")
        for text in ["tfc bench train: tiny", "steps of 2 × 16 tokens", "peak: OpenBLAS sgemm", "naive ", "fused ", "compile (fused): "] {
            XCTAssertTrue(r.stdout.contains(text), "\(text) missing:\n\(r.stdout)")
        }
        XCTAssertFalse(r.stdout.contains("n/a"), r.stdout)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any])
        XCTAssertEqual(object["kind"] as? String, "train")
        XCTAssertEqual(object["fused_available"] as? Bool, true)
        let train = try XCTUnwrap(object["train"] as? [String: Any])
        XCTAssertEqual(train["seq"] as? Int, 16)
        XCTAssertEqual(train["batch"] as? Int, 2)
        XCTAssertGreaterThan(train["step_flops"] as? Double ?? 0, 0)
        for side in ["naive", "fused"] {
            let s = try XCTUnwrap(train[side] as? [String: Any], side)
            for key in ["tokens_per_s", "gflops", "percent_of_peak", "median_s"] { XCTAssertTrue(s[key] is Double, "\(side).\(key): \(s)") }
            XCTAssertEqual(s["runs"] as? Int, 1)
        }
        XCTAssertTrue(train["speedup"] is Double)
        // One sgemm between the steps per timed round, the peak % peak uses.
        let between = try XCTUnwrap(train["sgemm_between_runs"] as? [String: Any], "\(train)")
        XCTAssertEqual(between["runs"] as? Int, 1)
        XCTAssertEqual(train["sgemm_gflops"] as? Double, between["median_gflops"] as? Double)
        XCTAssertTrue(r.stdout.contains("peak between the steps: sgemm 128³, median "), r.stdout)
        XCTAssertTrue(object["compile_s"] is Double)
        XCTAssertTrue(object["fused_error"] is NSNull)
    }

    /// `--profile`: the fused step by kernel (each Pattention backward shape, attention and its
    /// backward with the kept P, the rotary host loop, AdamW)
    /// and the kernels' total; the fused side's vector target is named (the CPU's best by default);
    /// `--cpu-time` says the steps were timed by CPU time.
    func testProfileListsTheKernels() throws {
        let r = try TFC.run(["bench", "train", "specs/tiny.tfs", "--repeat", "2", "--warmup", "0", "--quick", "--seq", "16", "--batch", "2",
                             "--threads", "1", "--profile", "--cpu-time"])
        XCTAssertSucceeded(r, "tfc bench train --profile")
        for text in ["fused kernels: \(TFC.runnableTargets.last!) (--target-cpu)", "fused step by kernel (ms per step, % of the median step ",
                     "steps timed by process CPU time (--cpu-time), not the wall clock",
                     "  pattention backward d_in=64 n=", "  attention backward (kept P)\n", "  attention (keeps P)\n", "  rotary (host)\n", "  AdamW\n", "  cross-entropy\n", "all kernels (the rest is host work"] {
            XCTAssertTrue(r.stdout.contains(text), "\(text) missing:\n\(r.stdout)")
        }
    }

    func testRefusals() throws {
        for (arguments, message) in [(["--seq", "1"], "--seq must be at least 2"), (["--batch", "0"], "--batch must be at least 1"),
                                     (["--plot", "x.svg"], "--plot is not available for tfc bench train"),
                                     (["--seq", "4096"], "error: --seq 4096 exceeds the context of tiny (128)"),
                                     (["--target-cpu", "avx2,avx512"], "error: --target-cpu: bench train takes one target (got avx2,avx512)"),
                                     (["--target-cpu", "sse9"], "error: --target-cpu: unknown target 'sse9'; use native, avx2, avx512")] {
            let r = try TFC.run(["bench", "train", "specs/tiny.tfs", "--quick"] + arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
    }
}
