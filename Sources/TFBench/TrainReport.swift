import Foundation

/// `tfc bench train`: one training step (the gradients of `batch` windows of `seq` tokens and
/// the AdamW update), naive vs fused, against the sgemm peak. A step's FLOPs are counted as 3×
/// the forward's (`prefillFlops`): the forward, plus two products of the same size per product
/// in the backward (input and weight gradients); recomputation inside the backward is not counted.
public struct TrainReport {
    public var run: BenchRun
    public var peak: MachinePeak
    public var seq: Int
    public var batch: Int
    public var forwardFlops: Double
    public var naive: Summary
    public var fused: Summary?
    public var compileSeconds: Double?
    public var fusedError: String?
    /// What the steps were timed with: "wall" or "process CPU time" (`--cpu-time`).
    public var clock: String
    /// The sgemm run between the steps (one `SgemmProbe` product per round, by the steps' clock),
    /// seconds per product of `sgemmFlops`; nil when not sampled.
    public var sgemmBetweenRuns: Summary? = nil
    public var sgemmFlops: Double = 0
    /// n of that product (0 without one).
    public var sgemmSize: Int = 0

    public init(run: BenchRun, peak: MachinePeak, seq: Int, batch: Int, forwardFlops: Double, naive: Summary, fused: Summary?,
                compileSeconds: Double?, fusedError: String?, clock: String = "wall") {
        self.run = run; self.peak = peak; self.seq = seq; self.batch = batch; self.forwardFlops = forwardFlops
        self.naive = naive; self.fused = fused; self.compileSeconds = compileSeconds; self.fusedError = fusedError; self.clock = clock
    }

    public var tokensPerStep: Int { seq * batch }
    /// 3 × the forward FLOPs of every window.
    public var stepFlops: Double { 3 * forwardFlops * Double(batch) }
    public func tokensPerSecond(_ s: Summary?) -> Double? { s.map { Double(tokensPerStep) / $0.median } }
    public func gflops(_ s: Summary?) -> Double? { s.map { stepFlops / $0.median / 1e9 } }
    public func percentOfPeak(_ s: Summary?) -> Double? { gflops(s).map { 100 * $0 / boundSgemmGFlops } }
    /// GFLOP/s of the median, slowest and fastest product between the steps.
    public var sgemmBetweenRunsGFlops: (median: Double, min: Double, max: Double)? {
        sgemmBetweenRuns?.gigaRates(sgemmFlops)
    }
    /// The peak `% peak` uses: the median product between the steps (the same moments and clock as
    /// the steps' medians) when sampled, else the peak measured at the start.
    public var boundSgemmGFlops: Double { sgemmBetweenRunsGFlops?.median ?? peak.sgemmGFlops }
    public var speedup: Double? { TFBench.speedup(naive: naive, fused: fused) }

    public var text: String {
        var lines = ["tfc bench train: \(run.model) (\(run.spec)), steps of \(batch) × \(seq) tokens (gradients + AdamW)"]
        lines += run.headerLines
        lines.append(peak.line + (run.quick ? "  [--quick: small sizes, not the machine's peak]" : ""))
        lines.append("")
        var table = TextTable([("side", .left), ("tokens/s", .right), ("GFLOP/s", .right), ("% peak", .right),
                               ("median", .right), ("min", .right), ("max", .right), ("speedup", .right)])
        func row(_ name: String, _ s: Summary?) -> [String] {
            guard let s else { return [name, "n/a"] }
            return [name, formatRate(tokensPerSecond(s)), formatRate(gflops(s)), formatPercent(percentOfPeak(s)),
                    formatSeconds(s.median), formatSeconds(s.min), formatSeconds(s.max)]
        }
        table.add(row("naive", naive))
        table.add(row("fused", fused) + (fused == nil ? [] : [formatSpeedup(speedup)]))
        lines.append(table.text)
        lines.append("")
        lines.append("compile (fused): " + (compileSeconds.map { String(format: "%.3f s", $0) } ?? "n/a"))
        lines.append("step: \(formatRate(stepFlops / 1e9)) GFLOP (3 × the forward's); % peak is of the sgemm peak.")
        if let g = sgemmBetweenRunsGFlops, let runs = sgemmBetweenRuns?.count {
            lines.append(String(format: "peak between the steps: sgemm %d³, median %.1f GFLOP/s (%.1f–%.1f over %d runs, by the steps' clock), used by %% peak; the %.1f GFLOP/s measured at the start would make fused %@ of peak.",
                                sgemmSize, g.median, g.min, g.max, runs, peak.sgemmGFlops,
                                formatPercent(gflops(fused).map { 100 * $0 / peak.sgemmGFlops })))
        }
        if clock != "wall" {
            lines.append("steps timed by \(clock) (--cpu-time), not the wall clock" + (sgemmBetweenRuns == nil ? "; the peak is wall-clock." : "; the sgemm between them too, the start's peak by the wall clock."))
        }
        if let fusedError { lines.append("fused backend failed: \(fusedError)") }
        return lines.joined(separator: "\n")
    }

    public var json: [String: Any] {
        var object = run.json(kind: "train")
        object["peak"] = peak.json
        func side(_ s: Summary?) -> [String: Any] {
            timings(s).merging(["tokens_per_s": number(tokensPerSecond(s)), "gflops": number(gflops(s)),
                                "percent_of_peak": number(percentOfPeak(s))]) { $1 }
        }
        object["train"] = ["seq": seq, "batch": batch, "step_flops": number(stepFlops), "naive": side(naive), "fused": side(fused),
                           "speedup": number(speedup), "sgemm_gflops": number(boundSgemmGFlops),
                           "sgemm_between_runs": sgemmBetweenRunsJSON(sgemmBetweenRunsGFlops, runs: sgemmBetweenRuns?.count, size: sgemmSize)] as [String: Any]
        object["compile_s"] = number(compileSeconds)
        object["fused_error"] = string(fusedError)
        object["clock"] = clock
        return object
    }
}
