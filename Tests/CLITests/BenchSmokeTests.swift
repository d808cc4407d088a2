import Foundation
import XCTest

/// `tfc bench` end to end on the tiny spec, one repetition, tiny peak measurements. No test here
/// asserts a speed: only that every figure is produced, for both sides, in the table and in the
/// JSON, and that the fused kernels compute what the naive ones do.
final class BenchSmokeTests: XCTestCase {
    func json(_ path: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
    }

    func testBenchKernelsOnTinySpec() throws {
        let dir = try TFC.temporaryDirectory(self)
        let report = dir.appendingPathComponent("kernels.json"), chart = dir.appendingPathComponent("kernels.svg")
        let r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--repeat", "1", "--warmup", "0", "--quick", "--seq", "8",
                             "--contexts", "16,64,4096", "--threads", "1", "--json", report.path, "--plot", chart.path])
        XCTAssertSucceeded(r, "tfc bench kernels")
        XCTAssertTrue(r.stdout.contains("CPU: "), r.stdout)
        XCTAssertTrue(r.stdout.contains("1 thread"), r.stdout)
        XCTAssertTrue(r.stdout.contains("peak: OpenBLAS sgemm"), r.stdout)
        for name in ["pattention mlp", "fused query/key/value", "attention L=16", "attention L=64", "layernorm", "logits"] {
            XCTAssertTrue(r.stdout.contains(name), "\(name) missing:\n\(r.stdout)")
        }
        XCTAssertFalse(r.stdout.contains("L=4096"), "contexts beyond the model's are dropped")
        XCTAssertFalse(r.stdout.contains("n/a"), "every case has a fused kernel:\n\(r.stdout)")
        XCTAssertTrue(r.stdout.contains("fused "), r.stdout)
        XCTAssertEqual(r.stderr, "", "no progress output when stderr is not a terminal")

        let object = try json(report)
        XCTAssertEqual(object["kind"] as? String, "kernels")
        XCTAssertEqual(object["threads"] as? Int, 1)
        XCTAssertEqual(object["contexts"] as? [Int], [16, 64])
        let kernels = try XCTUnwrap(object["kernels"] as? [[String: Any]])
        XCTAssertEqual(object["fused_available"] as? Bool, true)
        XCTAssertEqual(kernels.count, 16)
        for k in kernels {
            let naive = try XCTUnwrap(k["naive"] as? [String: Any])
            XCTAssertTrue(naive["median_s"] is Double, "\(k)")
            XCTAssertEqual(naive["runs"] as? Int, 1)
            let fused = try XCTUnwrap(k["fused"] as? [String: Any])
            XCTAssertTrue(fused["median_s"] is Double, "\(k)")
            XCTAssertEqual(fused["runs"] as? Int, 1)
            XCTAssertTrue(k["speedup"] is Double, "\(k)")
            XCTAssertTrue(k["fused_error"] is NSNull, "\(k)")
            let difference = try XCTUnwrap(k["difference"] as? Double, "\(k)")
            XCTAssertLessThan(difference, 1e-4, "fused and naive outputs agree: \(k)")
        }
        let svg = try String(contentsOf: chart, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.contains("sgemm peak"))
    }

    /// With several threads and few rows the fused kernels take their column-parallel paths.
    func testBenchKernelsFusedAgreesWithSeveralThreads() throws {
        let dir = try TFC.temporaryDirectory(self)
        let report = dir.appendingPathComponent("kernels.json")
        let r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--repeat", "1", "--warmup", "0", "--quick", "--seq", "3",
                             "--contexts", "24", "--threads", "2", "--json", report.path])
        XCTAssertSucceeded(r, "tfc bench kernels --threads 2")
        for k in try XCTUnwrap(json(report)["kernels"] as? [[String: Any]]) {
            let difference = try XCTUnwrap(k["difference"] as? Double, "\(k)")
            XCTAssertLessThan(difference, 1e-4, "fused and naive outputs agree: \(k)")
        }
    }

    func testBenchModelOnTinySpecAndCompare() throws {
        let dir = try TFC.temporaryDirectory(self)
        let first = dir.appendingPathComponent("first.json")
        var r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--seq", "8", "--decode", "3", "--repeat", "1", "--quick",
                             "--json", first.path])
        XCTAssertSucceeded(r, "tfc bench model")
        XCTAssertTrue(r.stdout.contains("prefill T=8"), r.stdout)
        XCTAssertTrue(r.stdout.contains("decode 3 after 8"), r.stdout)
        XCTAssertTrue(r.stdout.contains("compile (fused): "), r.stdout)
        XCTAssertTrue(r.stdout.contains("decode bandwidth: memory read between the decode runs, median "), r.stdout)
        XCTAssertFalse(r.stdout.contains("n/a"), r.stdout)

        let object = try json(first)
        XCTAssertEqual(object["spec"] as? String, "specs/tiny.tfs")
        XCTAssertNotNil(object["threads"] as? Int)
        let peak = try XCTUnwrap(object["peak"] as? [String: Any])
        XCTAssertTrue(peak["sgemm_gflops"] is Double)
        XCTAssertTrue(peak["bandwidth_gbs"] is Double)
        let prefill = try XCTUnwrap(object["prefill"] as? [String: Any])
        XCTAssertEqual(prefill["seq"] as? Int, 8)
        XCTAssertTrue((prefill["naive"] as? [String: Any])?["tokens_per_s"] is Double)
        XCTAssertTrue((prefill["naive"] as? [String: Any])?["gflops"] is Double)
        XCTAssertTrue((prefill["fused"] as? [String: Any])?["tokens_per_s"] is Double)
        XCTAssertTrue((prefill["fused"] as? [String: Any])?["gflops"] is Double)
        XCTAssertTrue(prefill["speedup"] is Double)
        let decode = try XCTUnwrap(object["decode"] as? [String: Any])
        XCTAssertEqual(decode["prompt"] as? Int, 8)
        XCTAssertEqual(decode["tokens"] as? Int, 3)
        XCTAssertTrue((decode["naive"] as? [String: Any])?["tokens_per_s"] is Double)
        XCTAssertTrue((decode["fused"] as? [String: Any])?["tokens_per_s"] is Double)
        XCTAssertTrue(decode["speedup"] is Double)
        XCTAssertTrue(object["compile_s"] is Double)
        XCTAssertTrue(object["fused_error"] is NSNull)
        XCTAssertEqual(object["fused_available"] as? Bool, true)

        r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--seq", "8", "--decode", "3", "--repeat", "1", "--quick",
                         "--compare", first.path])
        XCTAssertSucceeded(r, "tfc bench model --compare")
        XCTAssertTrue(r.stdout.contains("change against \(first.path)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("prefill T=8"), r.stdout)
    }

    func testBenchModelWithAWeightsFile() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("tiny.safetensors").path, report = dir.appendingPathComponent("m.json")
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "tfc init")
        let r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--weights", weights, "--seq", "4", "--decode", "1",
                             "--repeat", "1", "--warmup", "0", "--quick", "--json", report.path])
        XCTAssertSucceeded(r, "tfc bench model --weights")
        XCTAssertTrue(r.stdout.contains("weights \(weights)"), r.stdout)
        XCTAssertEqual(try json(report)["weights"] as? String, weights)
    }

    func testBenchErrors() throws {
        var r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--repeat", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--repeat must be at least 1, got 0"), r.stderr)

        r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--seq", "120", "--decode", "9", "--quick"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --seq 120 + --decode 9 exceeds the context of tiny (128)\n")

        r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--contexts", "16,x"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--contexts takes positive integers"), r.stderr)

        r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--quick", "--compare", "/nonexistent/old.json"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: --compare /nonexistent/old.json: no such file"), r.stderr)

        r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--json", "/nonexistent/dir/out.json"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("directory /nonexistent/dir does not exist"), r.stderr)
    }
}
