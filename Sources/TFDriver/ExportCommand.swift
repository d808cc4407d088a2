import ArgumentParser
import Foundation
import TFCheckpoint
import TFIR
import TFWeights

/// `tfc export SPEC --weights W -o DIR [--layout hf|deepspeed]`: back to the official layout.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a model to the official TokenFormer layout (Hugging Face or DeepSpeed).",
        discussion: """
        hf (default): DIR/config.json and DIR/pytorch_model.bin (PyTorch's zip format, float32, the \
        official state-dict keys). deepspeed: DIR/latest, DIR/global_step0/mp_rank_00_model_states.pt \
        (the state dict under 'module') and DIR/config.json. A model the official code computes \
        differently is refused: per-site Pattention variants, other block shapes, and a pinned τ \
        (the official Pattention always uses sqrt(n)) unless --allow-tau-drift, which reports the \
        logit drift measured by running both.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "The model's weights (.safetensors).") var weights: String
    @Option(name: .shortAndLong, help: "The output folder.") var output: String
    @Option(help: "hf or deepspeed.") var layout: String = "hf"
    @Flag(help: "Export a model with pinned τ anyway (the official code will use sqrt(n)); reports the logit drift.")
    var allowTauDrift = false

    func run() throws {
        try reportingErrors {
            guard let layout = Exporter.Layout(rawValue: layout) else {
                throw UserError("error: --layout must be hf or deepspeed, got '\(layout)'")
            }
            let loaded = try LoadedSpec(path: spec)
            let file = try loaded.graph.loadWeights(weights)
            let plan = try Exporter.plan(loaded.graph, spec: spec)
            if !plan.pinnedSites.isEmpty {
                let sites = plan.pinnedSites.prefix(3).joined(separator: ", ") + (plan.pinnedSites.count > 3 ? " and \(plan.pinnedSites.count - 3) more" : "")
                guard allowTauDrift else {
                    throw UserError("\(spec): error: cannot export: τ is pinned at \(sites) (as tfc grow leaves it); the official Pattention always uses sqrt(n), so it would compute other logits; pass --allow-tau-drift to export anyway and measure the drift")
                }
                let drift = try Self.logitDrift(loaded.graph, plan.officialGraph, weights: file)
                print(String(format: "τ drift: the official code (τ = sqrt(n)) differs from this model by max |Δlogit| %.4g over %d tokens (%@)",
                             drift.maxAbs, drift.tokens, sites))
            }
            let files = try Exporter.write(plan, graph: loaded.graph, weights: file, to: output, layout: layout, inputs: [spec])
            print("exported \(spec) (\(grouped(loaded.graph.parameterCount)) parameters) as \(layout == .hf ? "a Hugging Face folder" : "a DeepSpeed checkpoint"): \(files.joined(separator: ", "))")
        }
    }

    /// Runs the model as specified and as the official code computes it (naive backend) on a
    /// fixed token sequence; the largest logit difference.
    static func logitDrift(_ ours: Graph, _ official: Graph, weights: WeightFile) throws -> (maxAbs: Float, tokens: Int) {
        let count = min(32, ours.config.context)
        let tokens = (0..<count).map { Int32(($0 * 7919 + 13) % ours.config.vocab) }
        let a = try ModelRunner(graph: ours, weights: weights, backend: .naive, threads: 1).forward(tokens)
        let b = try ModelRunner(graph: official, weights: weights, backend: .naive, threads: 1).forward(tokens)
        var worst: Float = 0
        for (x, y) in zip(a.data, b.data) { worst = max(worst, abs(x - y)) }
        return (worst, count)
    }
}
