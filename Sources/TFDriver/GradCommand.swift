import ArgumentParser
import Foundation
import TFIR
import TFAutodiff
import TFNaive
import TFWeights
import TFTraining
import TFCodegen

/// `tfc grad SPEC --weights W --tokens IDS -o G.safetensors`: the mean next-token cross-entropy of
/// one sequence and the gradient of every weight, computed by the naive backend (the oracle) or with
/// `--backend fused` by generated kernels, from the backward graph `tfc compile --emit grad-ir` prints.
struct GradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grad",
        abstract: "Print the next-token cross-entropy of a sequence and write the gradient of every weight.",
        discussion: """
        The loss is the mean over positions t < T-1 of -log softmax(logits[t])[tokens[t+1]]. The \
        gradients are named like the weights. Runs on the naive backend (the oracle) unless --backend fused.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "Weights (.safetensors) matching the spec.") var weights: String
    @Option(parsing: .unconditional, help: "Comma-separated token ids (at least 2), e.g. 1,2,3.") var tokens: String
    @Option(name: .shortAndLong, help: "Output gradients file (.safetensors).") var output: String
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "naive (the oracle, the default) or fused (generated gradient kernels).") var backend: TrainingBackend = .naive
    @Option(name: .customLong("target-cpu"), help: "Vector target of the fused backend's kernels: native (the CPU's best, the default: AVX-512 measured faster than AVX2 for training on Zen 4), avx2 or avx512.")
    var targetCPU: String?

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        try reportingErrors {
            // tfc's output policy, checked before the work: never over the spec or the weights.
            let target = try OutputPolicy.check(role: "-o", path: output, inputs: [(what: "spec", path: spec), (what: "weights file", path: weights)])
            let loaded = try LoadedSpec(path: spec)
            let ids = try parseTokens(tokens, config: loaded.graph.config)
            if ids.count < 2 {
                throw UserError("error: --tokens: the loss predicts each next token, so it needs at least 2 tokens, got \(ids.count)")
            }
            let vector = try trainingVectorTarget(targetCPU)
            let grad = try differentiate(loaded.graph)
            let file = try loaded.graph.loadWeights(weights)
            let (used, note) = BLASThreadLimit.clamp(threads)
            if let note { FileHandle.standardError.write((note + "\n").data(using: .utf8)!) }
            let lookup: WeightLookup = { file.tensor($0)!.floats }
            let runner: GradientBackend = backend == .naive ? NaiveGradient(grad: grad, weights: lookup, threads: used)
                : try FusedGradient(grad: grad, weights: lookup, threads: threads, vector: vector,
                                    notes: { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) })
            let start = Date()
            let result = runner.run(ids)
            let seconds = Date().timeIntervalSince(start)
            var writer = SafetensorsWriter(metadata: ["tfc.model": loaded.graph.config.name, "tfc.grad.loss": String(result.loss),
                                                      "tfc.grad.tokens": String(ids.count)])
            for p in grad.parameters { writer.add(p.name, shape: p.shape, data: result.gradients[p.name]!) }
            try writer.write(to: target)
            print(String(format: "loss = %.6f", result.loss))
            print(String(format: "gradients of %d tensors written to %@ (%d tokens, %@ backend, %.3f s)",
                         grad.parameters.count, output, ids.count, backend.rawValue, seconds))
        }
    }
}

/// The fused training kernels' vector target for `--target-cpu` (`tfc grad`, `tfc train`,
/// `tfc bench train`): given, it must run on this CPU (one-line error otherwise); by default
/// the CPU's best (`native`), as for inference: with the blocked attention backward and the kept
/// Pattention scores, AVX-512 measured 6–12% faster than AVX2 per training step on Zen 4
/// (docs/training.md).
func trainingVectorTarget(_ targetCPU: String?) throws -> VectorTarget {
    try jitVectorTarget(targetCPU ?? "native")
}
