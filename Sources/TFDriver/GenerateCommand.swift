import ArgumentParser
import Foundation
import TFIR
import TFRuntime

/// Sampling settings shared by `tfc generate` and compiled executables.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy (argmax).") var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep only the k most likely tokens (0: all).") var topK: Int = 0
    @Option(name: .customLong("top-p"), help: "Keep the smallest set of tokens whose probability reaches p (1: all).") var topP: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0

    func validate() throws {
        if !(temperature >= 0) { throw ValidationError("--temperature must be 0 or more, got \(temperature)") }
        if topK < 0 { throw ValidationError("--top-k must be 0 or more, got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
    }
}

/// `tfc generate`: prefill the prompt, then decode token by token against the KV cache.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate tokens: prompt prefill, then decoding with the KV cache.",
        discussion: "Stops after -n tokens, at the spec's end_token, or at the context length.")

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @OptionGroup var execution: ExecutionOptions
    @Option(parsing: .unconditional, help: "The prompt: comma-separated token ids.") var tokens: String?
    @OptionGroup var text: TextOptions
    @Option(name: [.customShort("n"), .customLong("count")], help: "How many tokens to generate.") var count: Int = 16
    @OptionGroup var sampling: SamplingOptions

    func validate() throws {
        if count < 1 { throw ValidationError("-n must be at least 1, got \(count)") }
    }

    func run() throws {
        try reportingErrors {
            let weightFormat = try execution.weightFormat(), kvFormat = try execution.kvFormat()
            let loaded = try LoadedSpec(path: spec)
            let config = loaded.graph.config
            if let refusal = loaded.graph.incrementalDecodingRefusal {
                throw UserError("\(refusal.location.map { "\($0): " } ?? "")error: generate: \(refusal.message)")
            }
            let tokenizer = text.isText ? try text.loadTokenizer(for: loaded) : nil
            let prompt = try text.promptIds(tokens: tokens, loaded: loaded, tokenizer: tokenizer)
            // A text prompt gives text out; the end token is the spec's, else the tokenizer's <|endoftext|>.
            let output = GenerationOutput(tokenizer: text.isText ? tokenizer : nil, showIds: text.showIds)
            let endToken = Int32(config.endToken ?? (text.isText ? tokenizer?.id(of: "<|endoftext|>").map(Int.init) : nil) ?? -1)
            let model = try ModelRunner(graph: loaded.graph, weights: try loaded.graph.loadWeights(execution.weights, allowNonFinite: execution.allowNonFinite),
                                        backend: execution.backend, threads: execution.threads, schedule: execution.schedule,
                                        targetCPU: execution.targetCPU, weightFormat: weightFormat, kvFormat: kvFormat)
            let sampler = Sampler(sampling, vocab: config.vocab)

            let start = Date()
            let promptLogits = model.forwardLast(prompt)
            let prefillSeconds = Date().timeIntervalSince(start)
            try NonFinitePolicy.checkForSampling(promptLogits, position: prompt.count - 1)
            var next = sampler.sample(promptLogits)
            var generated: [Int32] = [next]
            output.prompt(prompt)
            output.token(next, isEnd: next == endToken)
            var stopReason = "generated \(count) tokens"
            let decodeStart = Date()
            while generated.count < count {
                if next == endToken { stopReason = "end token \(next)"; break }
                if model.position >= config.context {
                    stopReason = "reached the context length (\(config.context) tokens)"
                    break
                }
                let logits = model.forwardLast([next])
                if NonFinitePolicy.count(logits) > 0 { output.finish() }  // end the printed line before the error
                try NonFinitePolicy.checkForSampling(logits, position: model.position - 1)
                next = sampler.sample(logits)
                generated.append(next)
                output.token(next, isEnd: next == endToken)
            }
            if generated.count == count, next == endToken { stopReason = "end token \(next)" }
            let decodeSeconds = Date().timeIntervalSince(decodeStart)
            output.finish()
            let decoded = generated.count - 1
            var report = String(format: "%@; prefill %d tokens at %.1f tokens/s, time to first token %.3f s",
                                stopReason, prompt.count, Double(prompt.count) / prefillSeconds, prefillSeconds)
            if decoded > 0 { report += String(format: ", decode %.1f tokens/s", Double(decoded) / decodeSeconds) }
            if let compile = model.compileSeconds { report += String(format: ", compile %.3f s", compile) }
            FileHandle.standardError.write((report + "\n").data(using: .utf8)!)
        }
    }
}

/// Next-token choice through the runtime's sampler (greedy, temperature, top-k, top-p; seeded).
final class Sampler {
    let temperature: Float, topK: Int32, topP: Float
    var state: UInt64
    let scratch: UnsafeMutableRawPointer

    init(_ options: SamplingOptions, vocab: Int) {
        temperature = options.temperature
        topK = Int32(options.topK)
        topP = options.topP
        state = options.seed
        scratch = UnsafeMutableRawPointer.allocate(byteCount: tfc_sample_scratch_size(Int32(vocab)), alignment: 8)
    }

    deinit { scratch.deallocate() }

    func sample(_ logits: [Float]) -> Int32 {
        logits.withUnsafeBufferPointer {
            tfc_sample_with_scratch($0.baseAddress, Int32($0.count), temperature, topK, topP, &state, scratch)
        }
    }
}
