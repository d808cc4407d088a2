import ArgumentParser
import Foundation
import TFBench
import TFIR
import TFTokenizer
import TFWeights

/// `tfc eval`: perplexity and bits per byte of a text file, with a sliding window.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Perplexity and bits per byte of a text file (sliding window).",
        discussion: """
        Window k feeds tokens [k·stride, k·stride + context) and scores the targets after each of \
        them that no earlier window scored, so every token but the first is scored once, with up \
        to `context` tokens before it (at least context − stride + 1 after the first window). \
        Bits per byte divide the total log-loss (in bits) by the UTF-8 bytes of the scored tokens.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "The UTF-8 text file to score.") var text: String
    @Option(help: "A tokenizer.json to use instead of the one the spec names.") var tokenizer: String?
    @Option(help: "Tokens per window (default: the model's context).") var context: Int?
    @Option(help: "Tokens each window advances (default: the window length, i.e. no overlap).") var stride: Int?
    @Option(help: "Also write the results as a JSON object to this file.") var json: String?

    func validate() throws {
        if let context, context < 1 { throw ValidationError("--context must be at least 1, got \(context)") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1, got \(stride)") }
    }

    func run() throws {
        try reportingErrors {
            let weightFormat = try execution.weightFormat(), kvFormat = try execution.kvFormat()
            let loaded = try LoadedSpec(path: spec)
            let config = loaded.graph.config
            guard let model = try loadModelTokenizer(override: tokenizer, for: loaded) else {
                throw UserError("error: tfc eval needs a tokenizer: \(loaded.source.path) names none; add `tokenizer = \"NAME.tokenizer.json\"` to its model, or pass --tokenizer FILE")
            }
            let window = context ?? config.context
            if window > config.context { throw UserError("error: --context \(window) is more than the model's context of \(config.context)") }
            let step = stride ?? window
            if step > window { throw UserError("error: --stride \(step) is more than the window of \(window) tokens; tokens between windows would not be scored") }
            // tfc's output policy, checked before the (long) evaluation.
            let jsonTarget = try json.map {
                try OutputPolicy.check(role: "--json", path: $0, inputs: [(what: "spec", path: spec), (what: "weights file", path: execution.weights),
                                                                           (what: "text", path: text), (what: "tokenizer", path: model.path)])
            }

            let ids = model.encode(try readText(text))
            guard ids.count >= 2 else { throw UserError("\(text): error: the text has \(ids.count) token\(ids.count == 1 ? "" : "s"); scoring needs at least 2") }
            let runner = try ModelRunner(graph: loaded.graph, weights: try loaded.graph.loadWeights(execution.weights, allowNonFinite: execution.allowNonFinite),
                                         backend: execution.backend, threads: execution.threads, schedule: execution.schedule,
                                        targetCPU: execution.targetCPU, weightFormat: weightFormat, kvFormat: kvFormat)
            let progress = ProgressLine()
            let start = Date()
            let result = SlidingWindowEval.run(ids: ids, context: window, stride: step) { inputs in
                runner.reset()
                return runner.forward(inputs)
            } progress: { scored in
                let seconds = Date().timeIntervalSince(start)
                progress.update(step: scored, of: ids.count - 1, "eval \(text)",
                                detail: String(format: "%.0f tokens/s", Double(scored) / max(seconds, 1e-9)))
            }
            progress.finish()
            let seconds = Date().timeIntervalSince(start)
            let bytes = ids.dropFirst().reduce(0) { $0 + (model.bytes(of: $1)?.count ?? 0) }
            let bitsPerByte = result.nllSum / log(2) / Double(bytes)
            print(String(format: "perplexity %.4f, bits per byte %.4f", result.perplexity, bitsPerByte))
            print(String(format: "%d tokens scored (%d bytes) in %d windows of %d tokens, stride %d; %.1f tokens/s (%.2f s, %@ backend)",
                         result.scored, bytes, result.windows, window, step, Double(result.scored) / seconds, seconds, execution.backend.rawValue))
            if let jsonTarget {
                let object: [String: Any] = [
                    "perplexity": result.perplexity, "bits_per_byte": bitsPerByte, "nll_sum": result.nllSum,
                    "tokens": ids.count, "scored_tokens": result.scored, "bytes": bytes, "windows": result.windows,
                    "context": window, "stride": step, "seconds": seconds,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                let file = try AtomicFile(jsonTarget)
                do { try file.write(Array(data)); try file.commit() } catch { file.abandon(); throw error }
            }
        }
    }
}


/// The HF-style strided evaluation: windows of `context` tokens start every `stride` tokens; in each,
/// the logits at row i predict the token after it, and only targets past the previous window's
/// last one are scored.
enum SlidingWindowEval {
    struct Result { var nllSum: Double; var scored: Int; var windows: Int; var perplexity: Double { exp(nllSum / Double(scored)) } }

    static func run(ids: [Int32], context: Int, stride: Int, logits: ([Int32]) -> Matrix, progress: (Int) -> Void) -> Result {
        var nll = 0.0, scored = 0, windows = 0
        var lastScored = 0          // the target index the previous window reached (token 0 is never a target)
        var begin = 0
        while true {
            // Inputs [begin, end) predict targets begin+1 ... end.
            let end = min(begin + context, ids.count - 1)
            let rows = logits(Array(ids[begin..<end]))
            windows += 1
            for target in max(lastScored + 1, begin + 1)...end {
                let row = rows.row(target - begin - 1)
                nll += negativeLogLikelihood(row, Int(ids[target]))
                scored += 1
            }
            lastScored = end
            progress(scored)
            if end == ids.count - 1 { break }
            begin += stride
        }
        return Result(nllSum: nll, scored: scored, windows: windows)
    }

    /// −log softmax(row)[target], in double precision.
    static func negativeLogLikelihood<C: Collection>(_ row: C, _ target: Int) -> Double where C.Element == Float, C.Index == Int {
        var peak = -Double.infinity
        for x in row { peak = max(peak, Double(x)) }
        var sum = 0.0
        for x in row { sum += exp(Double(x) - peak) }
        return peak + log(sum) - Double(row[row.startIndex + target])
    }
}
