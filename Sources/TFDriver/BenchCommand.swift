import ArgumentParser
import Foundation
import TFBench
import TFCodegen
import TFIR
import TFNaive
import TFWeights

/// `tfc bench`: fused versus naive, side by side, against the machine's own peak.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the fused and naive backends side by side, against the machine's measured peak.",
        discussion: """
        Every comparison is made inside one run: the machine's peak (OpenBLAS sgemm GFLOP/s and memory read GB/s) is measured first, then the two sides run alternately (naive, fused, naive, …) after a warm-up. Each figure is the median of --repeat runs, shown with min and max, GFLOP/s or tokens/s, the percentage of the relevant bound, and the speedup (naive median ÷ fused median). The JSON schema is in docs/bench.md.

        Examples:
          tfc bench kernels
          tfc bench model specs/tokenformer-150m.tfs --json run.json
          tfc bench model specs/tokenformer-150m.tfs --compare run.json
        """,
        subcommands: [BenchKernelsCommand.self, BenchModelCommand.self, BenchAccuracyCommand.self, BenchTrainCommand.self, BenchTokenizerCommand.self],
        defaultSubcommand: BenchKernelsCommand.self)
}

/// Options both bench subcommands take.
struct BenchOptions: ParsableArguments {
    @Option(name: .customLong("repeat"), help: "Timed runs per side; the median is reported.") var repeats = 5
    @Option(help: "Untimed warm-up rounds of both sides before timing.") var warmup = 1
    @Option(help: "Threads for both sides, OpenBLAS and the runtime pool alike; the default is every core.") var threads = Machine.cores
    @Option(help: ArgumentHelp("Write every figure as one JSON object (schema: docs/bench.md).", valueName: "file.json"))
    var json: String?
    @Option(help: ArgumentHelp("Write an SVG bar chart, fused vs naive with the machine's bound as a line.", valueName: "file.svg"))
    var plot: String?
    @Option(help: ArgumentHelp("Print the change against an earlier report written with --json.", valueName: "old.json"))
    var compare: String?
    @Flag(help: "Tiny peak measurements and cache flushes, for tests (the peak is then not the machine's).") var quick = false
    @Option(name: .customLong("target-cpu"),
            help: ArgumentHelp("Vector target of the fused side: native (the CPU's best, the default), avx2 or avx512. bench model takes a list, e.g. avx512,avx2: the first is the fused side, the others are timed beside it in the same run.",
                               valueName: "target[,target…]"))
    var targetCPU: String?

    /// The `--target-cpu` targets, resolved and checked against this CPU (one-line error otherwise).
    func vectorTargets() throws -> [VectorTarget] {
        let names = (targetCPU ?? "native").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, !names.contains("") else { throw UserError("error: --target-cpu: give one or more of native, avx2, avx512, separated by commas") }
        var targets: [VectorTarget] = []
        for name in names {
            let t = try jitVectorTarget(name)
            if targets.contains(t) { throw UserError("error: --target-cpu: \(t.name) is listed twice") }
            targets.append(t)
        }
        return targets
    }

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeat must be at least 1, got \(repeats)") }
        if warmup < 0 { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    /// --json and --plot, checked by the output policy against the inputs before the (long) run.
    func checkOutputs(inputs: [(what: String, path: String)]) throws -> [String: OutputTarget] {
        var outputs: [(role: String, path: String)] = []
        if let json { outputs.append((role: "--json", path: json)) }
        if let plot { outputs.append((role: "--plot", path: plot)) }
        let all = inputs + (compare.map { [(what: "--compare report", path: $0)] } ?? [])
        return Dictionary(uniqueKeysWithValues: try OutputPolicy.check(outputs, inputs: all).map { ($0.role, $0) })
    }

    /// The earlier report, read before the (long) run so a bad path fails at once.
    func loadComparison() throws -> [String: Any]? {
        guard let compare else { return nil }
        do { return try Comparison.load(compare) } catch let error as Comparison.Failure { throw UserError("error: --compare " + error.description) }
    }

    /// Fixes the thread count and measures the machine's peak.
    func measurePeak(_ progress: ProgressLine) -> MachinePeak {
        if let note = BLASThreadLimit.clamp(threads).note { FileHandle.standardError.write((note + "\n").data(using: .utf8)!) }
        Machine.setThreads(threads)
        progress.update(step: 0, of: 0, "measuring the machine's peak (sgemm, memory bandwidth)")
        let peak = quick ? MachinePeak.measure(threads: threads, sgemmSize: 128, bandwidthBytes: 4 << 20, runs: 1)
                         : MachinePeak.measure(threads: threads)
        progress.finish()
        return peak
    }

    func run(spec: String, graph: Graph, fusedAvailable: Bool) -> BenchRun {
        BenchRun(spec: spec, model: graph.config.name, threads: threads, repeats: repeats, warmup: warmup,
                 quick: quick, version: tfcVersion, fusedAvailable: fusedAvailable)
    }

    /// Prints the table, writes --json and --plot, prints the --compare table.
    func finish(text: String, json object: [String: Any], chart: BarChart, old: [String: Any]?, outputs: [String: OutputTarget]) throws {
        print(text)
        if let target = outputs["--json"] { try write(jsonText(object), to: target, what: "JSON report") }
        if let target = outputs["--plot"] { try write(chart.svg, to: target, what: "chart") }
        if let old, let compare {
            print("")
            do { print(try Comparison.text(old: old, new: object, oldName: compare)) } catch let error as Comparison.Failure {
                throw UserError("error: --compare " + error.description)
            }
        }
    }

    func write(_ text: String, to target: OutputTarget, what: String) throws {
        let file = try AtomicFile(target)
        try file.write(Array(text.utf8))
        try file.commit()
        print("\(what) written to \(target.path)")
    }
}

/// A `--weights-format` list (`f32,bf16`, `all`), each format once; a bad one is a one-line error.
func parseWeightFormats(_ list: String) throws -> [WeightFormat] {
    let formats: [WeightFormat]
    do { formats = try WeightFormat.parseList(list) } catch let error as CodegenError { throw UserError("error: " + error.message) }
    if Set(formats).count < formats.count { throw UserError("error: --weights-format: a format is listed twice in '\(list)'") }
    return formats
}

extension BenchWeights {
    /// The weights a model bench runs on: the file's when given (checked), else random ones.
    static func load(_ file: String?, for graph: Graph, allowNonFinite: Bool, progress: ProgressLine) throws -> BenchWeights {
        if let file { return BenchWeights(file: try graph.loadWeights(file, allowNonFinite: allowNonFinite)) }
        progress.update(step: 0, of: 0, "initialising random weights")
        return BenchWeights(randomFor: graph)
    }
}

struct BenchKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time each kernel class at a spec's shapes, fused vs naive (no weights needed).",
        discussion: """
        Pattention at each distinct site shape, the fused query/key/value kernel, attention at each --contexts length, LayerNorm and logits; each at prefill (--seq rows) and decode (one row). The naive side is OpenBLAS sgemm plus separate passes, as the naive backend runs them. Caches are flushed before every timed run, as inside a forward pass. Prefill shapes are compared with the sgemm peak; decode shapes and LayerNorm with the memory bandwidth.
        """)

    static let defaultSpec = "specs/tokenformer-150m.tfs"
    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec = defaultSpec
    @Option(help: "Rows (tokens) of the prefill shapes.") var seq = 128
    @Option(help: ArgumentHelp("Context lengths for attention, comma-separated (those above the model's context are dropped).",
                               valueName: "L,L,…"))
    var contexts = "128,512,2048"
    @Option(name: .customLong("weights-format"),
            help: ArgumentHelp("Weight formats of the fused side: f32, bf16, int8, a comma-separated list, or all. Pattention, the score GEMM, fused q/k/v and logits get a row per format; f32 always runs, the reference of the 'vs f32' ratio.",
                               valueName: "format[,format…]"))
    var weightsFormat = "f32"
    @OptionGroup var options: BenchOptions

    func validate() throws {
        if seq < 1 { throw ValidationError("--seq must be at least 1, got \(seq)") }
        if parsedContexts == nil { throw ValidationError("--contexts takes positive integers separated by commas, e.g. 128,512,2048; got '\(contexts)'") }
    }

    var parsedContexts: [Int]? {
        let values = contexts.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        try reportingErrors {
            if spec == Self.defaultSpec && !FileManager.default.fileExists(atPath: spec) {
                throw UserError("error: \(spec): no such file (the default spec, relative to the current directory); run from the tfc repository or name a spec: tfc bench kernels SPEC")
            }
            let outputs = try options.checkOutputs(inputs: [(what: "spec", path: spec)])
            let formats = try parseWeightFormats(weightsFormat)
            let loaded = try LoadedSpec(path: spec)
            let graph = loaded.graph, context = graph.config.context
            if seq > context { throw UserError("error: --seq \(seq) exceeds the context of \(graph.config.name) (\(context))") }
            var lengths = parsedContexts!.filter { $0 <= context }
            if lengths.isEmpty { lengths = [context] }
            let old = try options.loadComparison()
            let progress = ProgressLine()
            let peak = options.measurePeak(progress)
            let cases = try KernelSuite.cases(for: graph, seq: seq, contexts: lengths, formats: formats)
            let targets = try options.vectorTargets()
            if targets.count > 1 { throw UserError("error: --target-cpu: bench kernels takes one target (got \(options.targetCPU ?? ""))") }
            let provider = try BenchFusedSide.kernelProvider(graph: graph, threads: options.threads, vector: targets[0])
            let bench = KernelBench(repeats: options.repeats, warmup: options.warmup,
                                    flusher: CacheFlusher(bytes: options.quick ? 1 << 20 : 2 * Machine.lastLevelCacheBytes),
                                    sgemm: SgemmProbe(size: peak.sgemmSize), bandwidth: BandwidthProbe(bytes: peak.bandwidthBytes, threads: options.threads))
            let results = bench.run(cases, fused: provider, progress: progress)
            let report = KernelReport(run: options.run(spec: spec, graph: graph, fusedAvailable: provider != nil),
                                      peak: peak, seq: seq, contexts: lengths, results: results)
            try options.finish(text: report.text, json: report.json, chart: report.chart, old: old, outputs: outputs)
        }
    }
}

/// `tfc bench model SPEC`: end-to-end prefill and decode, fused vs naive.
struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Time end-to-end prefill and decode (KV cache), fused vs naive, plus the fused compile time.",
        discussion: """
        Prefill: one forward pass over --seq tokens from an empty cache (tokens/s, GFLOP/s). Decode: after an untimed prompt of --seq tokens, --decode single-token steps (tokens/s), compared with what the memory bandwidth allows when every weight is read once per token.

        Without --weights the parameters are random, made in memory as `tfc init --seed 0` would make them: speed does not depend on the values.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: ArgumentHelp("Weights (.safetensors) matching the spec (default: random, in memory).", valueName: "file"))
    var weights: String?
    @Flag(name: .customLong("allow-nonfinite"), help: ArgumentHelp(NonFinitePolicy.flagHelp)) var allowNonFinite = false
    @Option(help: "Prompt length: the prefill's tokens and the decode's starting context.") var seq = 128
    @Option(help: "Tokens decoded one at a time after the prompt.") var decode = 32
    @Option(name: .customLong("weights-format"),
            help: ArgumentHelp("How the fused side stores weights: f32, bf16, int8, or a comma-separated list (all: every available format), one fused row per format; the first is the fused side.",
                               valueName: "format[,format…]"))
    var weightsFormat = "f32"
    @Flag(help: "After the timed prefills, time each fused side's prefill kernel by kernel (--repeat runs each) and print the time per kind of call with its share, per format.")
    var profile = false
    @Option(name: .customLong("kv"),
            help: ArgumentHelp("How the fused side's KV cache stores keys and values: f32, bf16, or a comma-separated list (all: both), one fused row per weights format and KV format; rows with a bf16 cache are labelled kv-bf16.",
                               valueName: "format[,format…]"))
    var kv = "f32"
    @OptionGroup var options: BenchOptions

    func validate() throws {
        if seq < 1 { throw ValidationError("--seq must be at least 1, got \(seq)") }
        if decode < 1 { throw ValidationError("--decode must be at least 1, got \(decode)") }
    }

    func run() throws {
        try reportingErrors {
            let outputs = try options.checkOutputs(inputs: [(what: "spec", path: spec)] + (weights.map { [(what: "weights file", path: $0)] } ?? []))
            let loaded = try LoadedSpec(path: spec)
            let graph = loaded.graph, context = graph.config.context
            if seq + decode > context {
                throw UserError("error: --seq \(seq) + --decode \(decode) exceeds the context of \(graph.config.name) (\(context))")
            }
            let old = try options.loadComparison()
            let targets = try options.vectorTargets()
            let formats = try parseWeightFormats(weightsFormat)
            let kvFormats: [KVCacheFormat]
            do { kvFormats = try KVCacheFormat.parseList(kv) } catch let error as CodegenError { throw UserError("error: " + error.message) }
            let progress = ProgressLine()
            let benchWeights = try BenchWeights.load(weights, for: graph, allowNonFinite: allowNonFinite, progress: progress)
            let peak = options.measurePeak(progress)
            let threads = options.threads
            // One fused side per target, format and KV format; a side is named by its format too when
            // any is not f32, and by its KV format when that is not f32 (f32-cache rows keep their names).
            let sides = targets.flatMap { t in formats.flatMap { f in kvFormats.map { (target: t, format: f, kv: $0) } } }
            func label(_ side: (target: VectorTarget, format: WeightFormat, kv: KVCacheFormat)) -> String {
                (formats == [.f32] ? side.target.name : "\(side.target.name) \(side.format)") + (side.kv == .f32 ? "" : " kv-\(side.kv)")
            }
            // Per weight of whole depth groups (int8: 1.0625 bytes, its bf16 scales included).
            func bytesPerWeight(_ format: WeightFormat) -> Double {
                let g = Int8Quantization.groupDepth
                return Double(format.storedBytes(weights: g, depth: g)) / Double(g)
            }
            func bytesPerKV(_ format: KVCacheFormat) -> Double { Double(format.bytes) }
            let fused = BenchFusedSide.modelFactory(graph: graph, weights: benchWeights, threads: threads, vector: sides[0].target,
                                                    weightFormat: sides[0].format, kvFormat: sides[0].kv)
            let others = sides.dropFirst().compactMap { side in
                BenchFusedSide.modelFactory(graph: graph, weights: benchWeights, threads: threads, vector: side.target, weightFormat: side.format, kvFormat: side.kv)
                    .map { (label: label(side), bytesPerWeight: bytesPerWeight(side.format), bytesPerKV: bytesPerKV(side.kv), make: $0) }
            }
            let bench = ModelBench(seq: seq, decodeTokens: decode, repeats: options.repeats, warmup: options.warmup, profile: profile)
            let result = try bench.run(graph: graph,
                                       naive: { NaiveExecutor(graph: graph, weights: benchWeights.lookup, threads: threads) },
                                       fused: fused, fusedLabel: label(sides[0]), fusedBytesPerWeight: bytesPerWeight(sides[0].format),
                                       fusedBytesPerKV: bytesPerKV(sides[0].kv),
                                       others: Array(others), bandwidth: BandwidthProbe(bytes: peak.bandwidthBytes, threads: threads),
                                       sgemm: SgemmProbe(size: peak.sgemmSize),
                                       progress: progress)
            let report = ModelReport(run: options.run(spec: spec, graph: graph, fusedAvailable: fused != nil),
                                     peak: peak, weights: benchWeights.origin, result: result)
            try options.finish(text: report.text, json: report.json, chart: report.chart, old: old, outputs: outputs)
        }
    }
}
