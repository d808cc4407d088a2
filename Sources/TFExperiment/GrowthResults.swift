import Foundation

/// What a finished growth experiment produced: every run's curve (docs/experiments/growth.json)
/// and the table of docs/experiments.md.
public struct GrowthResults: Sendable {
    public struct RunResult: Sendable {
        public var run: GrowthPlan.Run
        /// The model trained (after growth, for a grown run) and its parameters.
        public var model: String
        public var parameters: Int
        public var curve: ComputeCurve

        public init(run: GrowthPlan.Run, model: String, parameters: Int, curve: ComputeCurve) {
            self.run = run; self.model = model; self.parameters = parameters; self.curve = curve
        }
    }

    /// One line of the table: how a run compares with scratch-B.
    public struct Row: Equatable, Sendable {
        public var name: String
        public var parameters: Int
        public var flops: Double
        public var finalLoss: Double
        /// Compute at which the run first reaches scratch-B's final held-out loss, and that as a
        /// fraction of scratch-B's compute (nil: not reached).
        public var flopsToTarget: Double?
        public var fractionOfScratchB: Double?
        /// Held-out loss and perplexity at scratch-B's compute (nil: the run stops before it).
        public var lossAtEqualCompute: Double?
        public var perplexityAtEqualCompute: Double? { lossAtEqualCompute.map { Foundation.exp($0) } }
    }

    public var plan: GrowthPlan
    public var runs: [RunResult]

    public init(plan: GrowthPlan, runs: [RunResult]) { self.plan = plan; self.runs = runs }

    var scratchB: RunResult? { runs.first { $0.run.kind == .scratchB } }

    /// scratch-B's final held-out loss and compute: the target and the equal-compute point.
    public var target: (loss: Double, flops: Double)? {
        guard let b = scratchB?.curve, let loss = b.valLoss.last, let flops = b.flops.last else { return nil }
        return (loss, flops)
    }

    public var table: [Row] {
        guard let target else { return [] }
        return runs.map { r in
            let reach = r.curve.flopsToReach(target.loss)
            return Row(name: r.run.name, parameters: r.parameters, flops: r.curve.flops.last ?? 0, finalLoss: r.curve.valLoss.last ?? .nan,
                       flopsToTarget: reach, fractionOfScratchB: reach.map { $0 / target.flops },
                       lossAtEqualCompute: r.curve.loss(atFlops: target.flops))
        }
    }

    /// The table as Markdown (per-byte perplexity: the tokens are bytes).
    public var markdownTable: String {
        guard let target else { return "" }
        var lines = [
            "| run | parameters | training FLOPs | final held-out loss | compute to reach scratch-B's final loss (\(String(format: "%.4f", target.loss))) | held-out loss / perplexity at scratch-B's compute (\(scientific(target.flops)) FLOPs) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in table {
            let reach = row.fractionOfScratchB.map { String(format: "%.2f× scratch-B", $0) } ?? "not reached"
            let equal = row.lossAtEqualCompute.map { String(format: "%.4f / %.3f", $0, Foundation.exp($0)) } ?? "— (stops at \(scientific(row.flops)))"
            lines.append("| \(row.name) | \(grouped(row.parameters)) | \(scientific(row.flops)) | \(String(format: "%.4f", row.finalLoss)) | \(reach) | \(equal) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// docs/experiments/growth.json: the config, the FLOPs accounting, every run's curve and the table.
    public var json: String {
        func number(_ x: Double?) -> Any { x.map { $0.isFinite ? $0 as Any : NSNull() } ?? NSNull() }
        let runs: [[String: Any]] = runs.map { r in
            var kind: [String: Any] = ["name": r.run.name, "model": r.model, "parameters": r.parameters, "steps": r.run.steps,
                                       "grown_at_step": r.run.grownAt.map { $0 as Any } ?? NSNull(),
                                       "step": r.curve.steps, "flops": r.curve.flops, "val_loss": r.curve.valLoss.map { number($0) }]
            if case .grown(let initialisation) = r.run.kind { kind["init"] = initialisation }
            return kind
        }
        let table: [[String: Any]] = table.map { row in
            ["name": row.name, "flops": row.flops, "final_val_loss": number(row.finalLoss),
             "flops_to_scratch_b_final_loss": number(row.flopsToTarget), "fraction_of_scratch_b_compute": number(row.fractionOfScratchB),
             "val_loss_at_scratch_b_compute": number(row.lossAtEqualCompute), "perplexity_at_scratch_b_compute": number(row.perplexityAtEqualCompute)]
        }
        let c = plan.config
        let document: [String: Any] = [
            "experiment": "growth",
            "config": ["spec_a": c.specA, "spec_b": c.specB, "grow": c.grow, "seed": c.seed, "batch": c.batch, "seq": c.seq, "lr": c.lr,
                       "warmup": c.warmup, "steps_a": c.stepsA, "steps_b": c.stepsB, "eval_every": c.evalEvery, "eval_windows": c.evalWindows],
            "flops_per_step": ["A": plan.flopsPerStepA, "B": plan.flopsPerStepB,
                               "counted": "3 x the forward prefill FLOPs of each window (matrix products and causal attention), batch windows per step; evaluation not counted"],
            "runs": runs,
            "table": table,
        ]
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

func scientific(_ x: Double) -> String { String(format: "%.3g", x) }

/// 2129920 → "2,129,920".
func grouped(_ n: Int) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.groupingSeparator = ","
    formatter.usesGroupingSeparator = true
    return formatter.string(from: NSNumber(value: n)) ?? String(n)
}
