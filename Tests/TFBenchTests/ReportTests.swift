import XCTest
import TFIR
@testable import TFBench

/// The JSON other tools read: the keys, their types, and null for what was not measured.
final class ReportTests: XCTestCase {
    func modelResult(fused: Bool) -> ModelResult {
        ModelResult(seq: 8, decodeTokens: 4, prefillFlops: 8e9, decodeFlops: 4e9, decodeBytesPerToken: 1e8,
                    prefillNaive: Summary([0.2, 0.1, 0.3]), prefillFused: fused ? Summary([0.05]) : nil,
                    decodeNaive: Summary([0.4]), decodeFused: fused ? Summary([0.1]) : nil,
                    compileSeconds: fused ? 1.5 : nil, fusedError: nil)
    }

    func testModelReportHasTheRequiredKeysWithNullFusedValues() throws {
        let report = ModelReport(run: sampleRun(fused: false), peak: samplePeak, weights: "random (seed 0)", result: modelResult(fused: false))
        let json = try parseJSON(jsonText(report.json))
        // The keys other tools rely on (the list).
        XCTAssertEqual(json["spec"] as? String, "specs/tiny.tfs")
        XCTAssertEqual(json["threads"] as? Int, 2)
        let peak = try XCTUnwrap(json["peak"] as? [String: Any])
        XCTAssertEqual(peak["sgemm_gflops"] as? Double, 100)
        XCTAssertEqual(peak["bandwidth_gbs"] as? Double, 10)
        let prefill = try XCTUnwrap(json["prefill"] as? [String: Any])
        XCTAssertEqual(prefill["seq"] as? Int, 8)
        let naivePrefill = try XCTUnwrap(prefill["naive"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(naivePrefill["tokens_per_s"] as? Double), 40, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(naivePrefill["gflops"] as? Double), 40, accuracy: 1e-9)
        let fusedPrefill = try XCTUnwrap(prefill["fused"] as? [String: Any])
        XCTAssertTrue(fusedPrefill["tokens_per_s"] is NSNull)
        XCTAssertTrue(fusedPrefill["gflops"] is NSNull)
        let decode = try XCTUnwrap(json["decode"] as? [String: Any])
        XCTAssertEqual(decode["prompt"] as? Int, 8)
        XCTAssertEqual(decode["tokens"] as? Int, 4)
        XCTAssertEqual(try XCTUnwrap((decode["naive"] as? [String: Any])?["tokens_per_s"] as? Double), 10, accuracy: 1e-9)
        XCTAssertTrue((decode["fused"] as? [String: Any])?["tokens_per_s"] is NSNull)
        XCTAssertTrue(json.keys.contains("compile_s"))
        XCTAssertTrue(json["compile_s"] is NSNull)
        XCTAssertTrue(prefill["speedup"] is NSNull)
        // Run metadata.
        XCTAssertEqual(json["schema"] as? String, "tfc-bench/1")
        XCTAssertEqual(json["kind"] as? String, "model")
        XCTAssertEqual(json["cpu"] as? String, "Test CPU")
        XCTAssertEqual(json["repeat"] as? Int, 3)
        XCTAssertEqual(json["date"] as? String, "1970-01-01T00:00:00Z")
        XCTAssertEqual(json["fused_available"] as? Bool, false)
    }

    func testModelReportWithBothSides() throws {
        let report = ModelReport(run: sampleRun(fused: true), peak: samplePeak, weights: "w.safetensors", result: modelResult(fused: true))
        let json = try parseJSON(jsonText(report.json))
        let prefill = json["prefill"] as! [String: Any], decode = json["decode"] as! [String: Any]
        XCTAssertEqual((prefill["fused"] as! [String: Any])["tokens_per_s"] as? Double, 160)
        XCTAssertEqual(prefill["speedup"] as? Double, 4)
        XCTAssertEqual((decode["fused"] as! [String: Any])["tokens_per_s"] as? Double, 40)
        XCTAssertEqual(json["compile_s"] as? Double, 1.5)
        // 1e8 bytes per token at 10 GB/s: 100 tokens/s; naive decodes 10.
        XCTAssertEqual(decode["bound_tokens_per_s"] as? Double, 100)
        XCTAssertEqual(try XCTUnwrap((decode["naive"] as? [String: Any])?["percent_of_bound"] as? Double), 10, accuracy: 1e-9)
        XCTAssertTrue(report.text.contains("4.00×"), report.text)
        XCTAssertTrue(report.text.contains("compile (fused): 1.500 s"), report.text)
    }

    func testKernelReportSchema() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 4, contexts: [16])
        let provider = EchoProvider()
        provider.unsupported = [.attention]
        let results = KernelBench(repeats: 1, warmup: 0, flusher: nil).run(cases, fused: provider, progress: ProgressLine(enabled: false))
        let report = KernelReport(run: sampleRun(fused: true), peak: samplePeak, seq: 4, contexts: [16], results: results)
        let json = try parseJSON(jsonText(report.json))
        XCTAssertEqual(json["kind"] as? String, "kernels")
        XCTAssertEqual(json["seq"] as? Int, 4)
        XCTAssertEqual(json["contexts"] as? [Int], [16])
        XCTAssertNotNil(json["peak"] as? [String: Any])
        let kernels = try XCTUnwrap(json["kernels"] as? [[String: Any]])
        XCTAssertEqual(kernels.count, cases.count)
        let sideKeys: Set<String> = ["median_s", "min_s", "max_s", "runs", "gflops", "gbs", "percent_of_bound"]
        for k in kernels {
            XCTAssertEqual(Set(k.keys), ["name", "class", "phase", "shape", "rows", "position", "flops", "bytes", "bound",
                                         "naive", "fused", "speedup", "difference", "fused_error", "weights_format", "vs_f32", "bound_between_runs"])
            XCTAssertTrue(k["bound_between_runs"] is NSNull, "no probes in this bench")
            XCTAssertEqual(Set((k["naive"] as! [String: Any]).keys), sideKeys)
            XCTAssertEqual(Set((k["fused"] as! [String: Any]).keys), sideKeys)
            XCTAssertTrue((k["naive"] as! [String: Any])["median_s"] is Double)
            if k["class"] as? String == "attention" {
                XCTAssertTrue((k["fused"] as! [String: Any])["median_s"] is NSNull)
                XCTAssertTrue(k["speedup"] is NSNull)
            } else {
                XCTAssertTrue((k["fused"] as! [String: Any])["median_s"] is Double)
                XCTAssertEqual(k["difference"] as? Double, 0)
            }
            if k["class"] as? String == "layernorm" {
                XCTAssertTrue(k["flops"] is NSNull)
                XCTAssertTrue((k["naive"] as! [String: Any])["gflops"] is NSNull)
            }
        }
        XCTAssertTrue(report.text.contains("n/a"))
        XCTAssertFalse(report.text.contains("bound: the median of the start's sgemm"))
    }

    /// With probes, every case times one after its sides in each round, and its % bound is of
    /// that probe's median rate (sgemm for compute-bound cases, the read for bandwidth-bound ones).
    func testKernelBoundsAreTheProbesOfTheirOwnRuns() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 4, contexts: [16])
        let sgemm = SgemmProbe(size: 48), read = BandwidthProbe(bytes: 1 << 16, threads: 1)
        let results = KernelBench(repeats: 3, warmup: 1, flusher: nil, sgemm: sgemm, bandwidth: read)
            .run(cases, fused: EchoProvider(), progress: ProgressLine(enabled: false))
        XCTAssertTrue(results.contains { $0.kernel.bound == .compute } && results.contains { $0.kernel.bound == .bandwidth })
        for r in results {
            let probe = try XCTUnwrap(r.boundProbe, r.kernel.key)
            XCTAssertEqual(probe.count, 3, "one probe run per timed round")
            XCTAssertEqual(r.boundProbeWork, r.kernel.bound == .compute ? 2 * 48 * 48 * 48 : Double(read.bytes))
        }
        let report = KernelReport(run: sampleRun(fused: true), peak: samplePeak, seq: 4, contexts: [16], results: results)
        let json = try parseJSON(jsonText(report.json))
        for k in try XCTUnwrap(json["kernels"] as? [[String: Any]]) {
            let probe = try XCTUnwrap(k["bound_between_runs"] as? [String: Any])
            let median = try XCTUnwrap(probe["median"] as? Double)
            let compute = k["bound"] as? String == "compute"
            XCTAssertEqual(probe["unit"] as? String, compute ? "gflops" : "gbs")
            XCTAssertEqual(probe["runs"] as? Int, 3)
            let side = try XCTUnwrap(k["naive"] as? [String: Any])
            let rate = try XCTUnwrap(side[compute ? "gflops" : "gbs"] as? Double)
            XCTAssertEqual(try XCTUnwrap(side["percent_of_bound"] as? Double), 100 * rate / median, accuracy: 1e-9 * max(1, 100 * rate / median))
        }
        XCTAssertTrue(report.text.contains("bound: the median of the start's sgemm (cpu) or read (mem) run again after the sides in each round of the case (sgemm "), report.text)
    }

    func testChartIsSelfContainedSVG() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 4, contexts: [16])
        let results = KernelBench(repeats: 1, warmup: 0, flusher: nil).run(cases, fused: EchoProvider(), progress: ProgressLine(enabled: false))
        let svg = KernelReport(run: sampleRun(fused: true), peak: samplePeak, seq: 4, contexts: [16], results: results).chart.svg
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertTrue(svg.contains("sgemm peak 100.0 GFLOP/s"))
        XCTAssertTrue(svg.contains("memory bandwidth 10.0 GB/s"))
        XCTAssertTrue(svg.contains("pattention mlp"))
        XCTAssertTrue(svg.contains("naive (OpenBLAS"))
        // Two bars per kernel (the fused side is present for every case), each with a tooltip.
        XCTAssertEqual(svg.components(separatedBy: "<title>").count - 1, 2 * cases.count)
        XCTAssertFalse(svg.contains("→ <"), "labels are escaped")
        XCTAssertEqual(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;")
    }

    func testComparison() throws {
        let old = ModelReport(run: sampleRun(fused: false), peak: samplePeak, weights: "w", result: modelResult(fused: false)).json
        var newer = modelResult(fused: false)
        newer.prefillNaive = Summary([0.1])  // twice as fast
        let new = ModelReport(run: sampleRun(fused: false), peak: samplePeak, weights: "w", result: newer).json
        let text = try Comparison.text(old: try parseJSON(jsonText(old)), new: try parseJSON(jsonText(new)), oldName: "old.json")
        XCTAssertTrue(text.contains("change against old.json"), text)
        XCTAssertTrue(text.contains("+100.0%"), text)
        XCTAssertTrue(text.contains("n/a"), text)

        let kernels = KernelReport(run: sampleRun(fused: false), peak: samplePeak, seq: 4, contexts: [16], results: []).json
        XCTAssertThrowsError(try Comparison.text(old: kernels, new: new, oldName: "k.json")) { error in
            XCTAssertTrue("\(error)".contains("compare like with like"), "\(error)")
        }
    }

    func testModelBenchAlternatesAndTimesOnlyTheDecodeSteps() throws {
        let graph = try tinyGraph()
        let naive = CountingExecutor(graph: graph), fused = CountingExecutor(graph: graph)
        let result = try ModelBench(seq: 6, decodeTokens: 3, repeats: 2, warmup: 1)
            .run(graph: graph, naive: { naive }, fused: { fused }, progress: ProgressLine(enabled: false))
        // Prefill: 3 rounds of one 6-token pass; decode: 3 rounds of a prompt then 3 single steps.
        let expected = [6, 6, 6] + Array(repeating: [6, 1, 1, 1], count: 3).flatMap { $0 }
        XCTAssertEqual(naive.forwards, expected)
        XCTAssertEqual(fused.forwards, expected)
        XCTAssertEqual(naive.resets, 6)
        XCTAssertEqual(result.prefillNaive.count, 2)
        XCTAssertEqual(result.decodeFused?.count, 2)
        XCTAssertNotNil(result.compileSeconds)
        XCTAssertEqual(result.prefillFlops, graph.prefillFlops(tokens: 6))
        XCTAssertEqual(result.decodeFlops, (6..<9).reduce(0) { $0 + graph.flopsPerToken(atPosition: $1) })
        XCTAssertGreaterThan(result.decodeBytesPerToken, 4 * Double(graph.parameterCount))
    }

    /// A `*_between_runs` object: its slowest and fastest sample (`min_UNIT`, `max_UNIT`) and count.
    func assertBetweenRuns(_ value: Any?, unit: String, min: Double, max: Double, count: (key: String, value: Int),
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let between = try XCTUnwrap(value as? [String: Any], file: file, line: line)
        XCTAssertEqual(try XCTUnwrap(between["min_\(unit)"] as? Double, file: file, line: line), min, accuracy: 1e-9, file: file, line: line)
        XCTAssertEqual(try XCTUnwrap(between["max_\(unit)"] as? Double, file: file, line: line), max, accuracy: 1e-9, file: file, line: line)
        XCTAssertEqual(between[count.key] as? Int, count.value, file: file, line: line)
    }

    func testDecodeBoundsUseTheBandwidthReadBetweenTheDecodeRuns() throws {
        var result = modelResult(fused: true)
        // Reads of 1e9 bytes taking 0.2, 0.25 and 0.5 s: 5, 4 and 2 GB/s, median 4 (the start's peak says 10).
        result.decodeBandwidth = Summary([0.25, 0.2, 0.5])
        result.decodeBandwidthBytes = 1_000_000_000
        let report = ModelReport(run: sampleRun(fused: true), peak: samplePeak, weights: "w", result: result)
        let json = try parseJSON(jsonText(report.json))
        let decode = try XCTUnwrap(json["decode"] as? [String: Any])
        // 1e8 bytes per token at 4 GB/s: 40 tokens/s, which the fused side's 40 tokens/s reaches.
        XCTAssertEqual(try XCTUnwrap(decode["bound_tokens_per_s"] as? Double), 40, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(decode["bandwidth_gbs"] as? Double), 4, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap((decode["fused"] as? [String: Any])?["percent_of_bound"] as? Double), 100, accuracy: 1e-9)
        try assertBetweenRuns(decode["bandwidth_between_runs"], unit: "gbs", min: 2, max: 5, count: ("reads", 3))
        XCTAssertTrue(report.text.contains("memory read between the decode runs, median 4.0 GB/s (2.0–5.0 over 3 reads)"), report.text)
        XCTAssertTrue(report.text.contains("the 10.0 GB/s measured at the start (best of its reads) would allow 100.0 tokens/s"), report.text)
        // Without reads the start's peak is the bound.
        let plain = try parseJSON(jsonText(ModelReport(run: sampleRun(fused: true), peak: samplePeak, weights: "w", result: modelResult(fused: true)).json))
        XCTAssertEqual((plain["decode"] as? [String: Any])?["bound_tokens_per_s"] as? Double, 100)
        XCTAssertTrue((plain["decode"] as? [String: Any])?["bandwidth_between_runs"] is NSNull)
    }

    func testPrefillPercentUsesTheSgemmRunBetweenThePrefillRuns() throws {
        var result = modelResult(fused: true)
        // Products of 2e10 FLOPs taking 0.08, 0.1 and 0.4 s: 250, 200 and 50 GFLOP/s, median 200
        // (the start's peak says 100). The fused prefill runs at 8e9 / 0.05 s = 160 GFLOP/s.
        result.prefillSgemm = Summary([0.1, 0.08, 0.4])
        result.prefillSgemmFlops = 2e10
        result.prefillSgemmSize = 2154
        let report = ModelReport(run: sampleRun(fused: true), peak: samplePeak, weights: "w", result: result)
        let json = try parseJSON(jsonText(report.json))
        let prefill = try XCTUnwrap(json["prefill"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(prefill["sgemm_gflops"] as? Double), 200, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap((prefill["fused"] as? [String: Any])?["percent_of_peak"] as? Double), 80, accuracy: 1e-9)
        try assertBetweenRuns(prefill["sgemm_between_runs"], unit: "gflops", min: 50, max: 250, count: ("runs", 3))
        XCTAssertEqual((prefill["sgemm_between_runs"] as? [String: Any])?["size"] as? Int, 2154)
        XCTAssertTrue(report.text.contains("sgemm 2154³ between the prefill runs, median 200.0 GFLOP/s (50.0–250.0 over 3 runs)"), report.text)
        XCTAssertTrue(report.text.contains("the 100.0 GFLOP/s measured at the start (best of its runs) would make the first fused side 160% of peak"), report.text)
        XCTAssertTrue(report.text.contains(" 80% cpu"), report.text)
        // Without products the start's peak is the reference.
        let plain = try parseJSON(jsonText(ModelReport(run: sampleRun(fused: true), peak: samplePeak, weights: "w", result: modelResult(fused: true)).json))
        let plainPrefill = try XCTUnwrap(plain["prefill"] as? [String: Any])
        XCTAssertEqual(plainPrefill["sgemm_gflops"] as? Double, 100)
        XCTAssertEqual((plainPrefill["fused"] as? [String: Any])?["percent_of_peak"] as? Double, 160)
        XCTAssertTrue(plainPrefill["sgemm_between_runs"] is NSNull)
    }

    func testTrainPercentUsesTheSgemmRunBetweenTheSteps() throws {
        // Steps of 3 × 1e9 × 2 = 6e9 FLOPs; the fused median 0.06 s is 100 GFLOP/s. Products of 1e10
        // FLOPs taking 0.04, 0.05 and 0.2 s: 250, 200 and 50 GFLOP/s, median 200 (the start's peak says 100).
        var report = TrainReport(run: sampleRun(fused: true), peak: samplePeak, seq: 4, batch: 2, forwardFlops: 1e9,
                                 naive: Summary([0.3]), fused: Summary([0.06]), compileSeconds: 1, fusedError: nil)
        XCTAssertEqual(try XCTUnwrap(report.percentOfPeak(report.fused)), 100, accuracy: 1e-9)
        report.sgemmBetweenRuns = Summary([0.05, 0.04, 0.2])
        report.sgemmFlops = 1e10
        report.sgemmSize = 1710
        XCTAssertEqual(try XCTUnwrap(report.percentOfPeak(report.fused)), 50, accuracy: 1e-9)
        let train = try XCTUnwrap(try parseJSON(jsonText(report.json))["train"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(train["sgemm_gflops"] as? Double), 200, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap((train["fused"] as? [String: Any])?["percent_of_peak"] as? Double), 50, accuracy: 1e-9)
        try assertBetweenRuns(train["sgemm_between_runs"], unit: "gflops", min: 50, max: 250, count: ("runs", 3))
        XCTAssertTrue(report.text.contains("peak between the steps: sgemm 1710³, median 200.0 GFLOP/s (50.0–250.0 over 3 runs"), report.text)
        XCTAssertTrue(report.text.contains("the 100.0 GFLOP/s measured at the start would make fused 100% of peak"), report.text)
    }

    func testModelBenchRunsTheSgemmOncePerPrefillRound() throws {
        let graph = try tinyGraph()
        let probe = SgemmProbe(size: 64)
        let result = try ModelBench(seq: 4, decodeTokens: 2, repeats: 3, warmup: 1)
            .run(graph: graph, naive: { CountingExecutor(graph: graph) }, fused: { CountingExecutor(graph: graph) },
                 sgemm: probe, progress: ProgressLine(enabled: false))
        XCTAssertEqual(result.prefillSgemm?.count, 3)
        XCTAssertEqual(result.prefillSgemmFlops, 2 * 64 * 64 * 64)
        XCTAssertEqual(result.prefillFused?.count, 3)
        let g = try XCTUnwrap(result.prefillSgemmGFlops)
        XCTAssertTrue(g.min > 0 && g.min <= g.median && g.median <= g.max, "\(g)")
    }

    func testModelBenchReadsTheBandwidthOncePerDecodeRound() throws {
        let graph = try tinyGraph()
        let probe = BandwidthProbe(bytes: 1 << 20, threads: 2)
        let result = try ModelBench(seq: 4, decodeTokens: 2, repeats: 3, warmup: 1)
            .run(graph: graph, naive: { CountingExecutor(graph: graph) }, fused: { CountingExecutor(graph: graph) },
                 bandwidth: probe, progress: ProgressLine(enabled: false))
        XCTAssertEqual(result.decodeBandwidth?.count, 3)
        XCTAssertEqual(result.decodeBandwidthBytes, 1 << 20)
        XCTAssertEqual(result.decodeFused?.count, 3)
        let b = try XCTUnwrap(result.decodeBandwidthGBs)
        XCTAssertTrue(b.min > 0 && b.min <= b.median && b.median <= b.max, "\(b)")
    }

    func testModelBenchWithoutFusedSide() throws {
        let graph = try tinyGraph()
        let result = try ModelBench(seq: 4, decodeTokens: 2, repeats: 1, warmup: 0)
            .run(graph: graph, naive: { CountingExecutor(graph: graph) }, fused: nil, progress: ProgressLine(enabled: false))
        XCTAssertNil(result.prefillFused)
        XCTAssertNil(result.decodeFused)
        XCTAssertNil(result.compileSeconds)
        XCTAssertNil(result.prefillSpeedup)
    }

    func testRandomWeightsMatchTheInitialisation() throws {
        let graph = try tinyGraph()
        let weights = BenchWeights(randomFor: graph, seed: 3)
        for p in graph.parameters {
            XCTAssertEqual(weights.lookup(p.name).count, p.elementCount)
        }
        XCTAssertEqual(weights.origin, "random (seed 3)")
        let key = graph.parameters.first { $0.name.hasSuffix("key_param_tokens") }!
        let values = Array(weights.lookup(key.name))
        let std = (values.reduce(0) { $0 + Double($1) * Double($1) } / Double(values.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
    }
}
