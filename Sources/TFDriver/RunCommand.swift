import ArgumentParser
import Foundation
import TFIR
import TFNaive
import TFWeights
import TFCodegen

/// Which executor runs the IR.
enum BackendChoice: String, ExpressibleByArgument, CaseIterable {
    /// Fused, JIT-compiled kernels (the default).
    case fused
    /// Op by op on OpenBLAS: the oracle.
    case naive
}

/// Options every command that executes a model shares.
struct ExecutionOptions: ParsableArguments {
    @Option(help: "Weights (.safetensors) matching the spec.") var weights: String
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "fused (JIT-compiled kernels) or naive (OpenBLAS, op by op).") var backend: BackendChoice = .fused
    @Option(help: ArgumentHelp("Override every GEMM's schedule, for experiments (fused backend), e.g. \"mr=4 nr=24 kc=128\".",
                               discussion: "Keys: mr, nr, kc, rowBlock, smallRows, unroll, columnTasks, prefetch, loop. `tfc compile --emit plan` shows the chosen schedules."))
    var schedule: String?
    @Option(name: .customLong("target-cpu"),
            help: "Vector target of the JIT-compiled kernels (fused backend): native (the CPU's best, the default), avx2 or avx512.")
    var targetCPU = "native"
    @Option(name: .customLong("weights-format"), help: "How the fused backend stores the weights: f32 (the default), bf16 or int8.")
    var weightsFormat = "f32"
    @Option(name: .customLong("kv"),
            help: "How the fused backend's KV cache stores keys and values: f32 (the default) or bf16 (half the bytes each decode step reads; rounded to bf16 as written, widened to f32 as read, attention math in f32).")
    var kv = "f32"
    @Flag(name: .customLong("allow-nonfinite"), help: ArgumentHelp(NonFinitePolicy.flagHelp)) var allowNonFinite = false

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        // A target this CPU cannot run is refused when the model is loaded (one line, exit 1).
        try validateSchedule(schedule, for: (try? jitVectorTarget(targetCPU)) ?? VectorTarget.best(has: TargetHost.host.has))
    }
}

extension ExecutionOptions {
    /// The `--weights-format` value, checked before anything is loaded: an unknown or unavailable
    /// format, or a non-f32 one with the naive backend (which computes in f32 only), is a one-line error.
    func weightFormat() throws -> WeightFormat {
        let format: WeightFormat
        do { format = try WeightFormat.parse(weightsFormat) } catch let error as CodegenError { throw UserError("error: " + error.message) }
        if backend == .naive && format != .f32 {
            throw UserError("error: --weights-format \(format): the naive backend computes in f32 only; use --backend fused or --weights-format f32")
        }
        return format
    }

    /// The `--kv` value, checked like `--weights-format`: an unknown format, or bf16 with the
    /// naive backend (whose cache is f32), is a one-line error.
    func kvFormat() throws -> KVCacheFormat {
        let format: KVCacheFormat
        do { format = try KVCacheFormat.parse(kv) } catch let error as CodegenError { throw UserError("error: " + error.message) }
        if backend == .naive && format != .f32 {
            throw UserError("error: --kv \(format): the naive backend keeps its KV cache in f32 only; use --backend fused or --kv f32")
        }
        return format
    }
}

/// The JIT's vector target for a `--target-cpu` value: the host's best for `native`; a target
/// this CPU cannot execute is a one-line error.
/// `TFC_CPU_PRETEND_LACKING=avx512f,...` marks features missing, as for compiled programs (tests).
func jitVectorTarget(_ name: String) throws -> VectorTarget {
    var host = TargetHost.host
    if let lacking = ProcessInfo.processInfo.environment["TFC_CPU_PRETEND_LACKING"] {
        let gone = Set(lacking.split(separator: ",").map { "+" + $0 })
        host.features = host.features.split(separator: ",").filter { !gone.contains(String($0)) }.joined(separator: ",")
    }
    do { return try VectorTarget.resolve(name, on: host) } catch let error as CodegenError { throw UserError("error: " + error.message) }
}

/// Checks a `--schedule` override (for code written against `vector`) before anything is compiled.
func validateSchedule(_ schedule: String?, for vector: VectorTarget) throws {
    guard let schedule else { return }
    do {
        _ = try GemmSchedule(parsing: schedule, for: vector)
    } catch {
        throw ValidationError("--schedule '\(schedule)': \("\(error)".replacingOccurrences(of: "codegen: schedule: ", with: "").replacingOccurrences(of: "codegen: ", with: ""))")
    }
}

/// `tfc run`: one forward pass, top-5 next tokens, optionally all logits as .npy.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one forward pass and print the top-5 next tokens.")

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @OptionGroup var execution: ExecutionOptions
    @Option(parsing: .unconditional, help: "Comma-separated token ids, e.g. 1,2,3.") var tokens: String?
    @OptionGroup var text: TextOptions
    @Option(help: "Write all logits [T, vocab] as a float32 .npy file.") var logits: String?

    func run() throws {
        try reportingErrors {
            // Checked before the (long) run: never over the spec or the weights, a device in place, ...
            let logitsTarget = try logits.map {
                try OutputPolicy.check(role: "--logits", path: $0, inputs: [(what: "spec", path: spec), (what: "weights file", path: execution.weights)]
                                       + text.inputFiles)
            }
            let weightFormat = try execution.weightFormat(), kvFormat = try execution.kvFormat()
            let loaded = try LoadedSpec(path: spec)
            let tokenizer = try text.loadTokenizer(for: loaded)
            let ids = try text.promptIds(tokens: tokens, loaded: loaded, tokenizer: tokenizer)
            let weightFile = try loaded.graph.loadWeights(execution.weights, allowNonFinite: execution.allowNonFinite)
            let model = try ModelRunner(graph: loaded.graph, weights: weightFile, backend: execution.backend, threads: execution.threads,
                                        schedule: execution.schedule, targetCPU: execution.targetCPU, weightFormat: weightFormat, kvFormat: kvFormat)
            let start = Date()
            let output = model.forward(ids)
            let seconds = Date().timeIntervalSince(start)
            NonFinitePolicy.warnIfNonFinite(output)
            if let logitsTarget {
                try Npy.write(to: logitsTarget, shape: [output.rows, output.columns], data: output.data)
            }
            let last = Array(output.data[((output.rows - 1) * output.columns)...])
            let top = last.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(5)
            print("next-token top 5 after \(ids.count) tokens (\(execution.backend.rawValue) backend\(weightFormat == .f32 ? "" : ", \(weightFormat) weights")\(kvFormat == .f32 ? "" : ", \(kvFormat) KV cache")):")
            for (rank, entry) in top.enumerated() {
                let shown = tokenizer.flatMap { $0.bytes(of: Int32(entry.offset)) }.map { "  " + String(decoding: $0, as: UTF8.self).debugDescription } ?? ""
                print("  \(rank + 1). token \(entry.offset)\(shown)  logit \(String(format: "%.4f", entry.element))")
            }
            let compile = model.compileSeconds.map { String(format: "compile %.3f s, ", $0) } ?? ""
            print(String(format: "\(compile)run %.3f s (%d tokens, %d threads)", seconds, ids.count, model.threads))
            if let logits { print("logits [\(output.rows), \(output.columns)] written to \(logits)") }
        }
    }
}

/// One interface over both backends, for the commands.
final class ModelRunner {
    let executor: any ModelExecutor
    let fused: FusedExecutor?
    let weights: WeightFile
    /// Seconds spent compiling (fused backend), nil for the naive one.
    var compileSeconds: Double? { fused?.compileSeconds }
    /// Threads the backend really uses (the naive one is clamped to what OpenBLAS can use).
    let threads: Int

    /// `weightFormat` and `kvFormat` other than f32 are for the fused backend only (the naive one refuses them).
    init(graph: Graph, weights: WeightFile, backend: BackendChoice, threads: Int, schedule: String? = nil, targetCPU: String = "native",
         weightFormat: WeightFormat = .f32, kvFormat: KVCacheFormat = .f32) throws {
        self.weights = weights
        let file = weights
        let lookup: (String) -> UnsafeBufferPointer<Float> = { file.tensor($0)!.floats }
        switch backend {
        case .naive:
            precondition(weightFormat == .f32 && kvFormat == .f32, "refused by ExecutionOptions.weightFormat() and kvFormat()")
            let (used, note) = BLASThreadLimit.clamp(threads)
            if let note { FileHandle.standardError.write((note + "\n").data(using: .utf8)!) }
            self.threads = used
            executor = NaiveExecutor(graph: graph, weights: lookup, threads: used)
            fused = nil
        case .fused:
            self.threads = threads
            let vector = try jitVectorTarget(targetCPU)
            let f = try FusedExecutor(graph: graph, weights: lookup, threads: threads, scheduleOverride: schedule, target: .host(vector),
                                        weightFormat: weightFormat, kvFormat: kvFormat) { note in
                FileHandle.standardError.write((note + "\n").data(using: .utf8)!)
            }
            executor = f
            fused = f
        }
    }

    func forward(_ tokens: [Int32]) -> Matrix { executor.forward(tokens) }
    /// Logits of the last new row only (the fused backend skips the other rows' logits).
    func forwardLast(_ tokens: [Int32]) -> [Float] {
        if let fused { return fused.forwardLast(tokens) }
        let m = executor.forward(tokens)
        return Array(m.row(m.rows - 1))
    }
    var position: Int { executor.position }
    func reset() { executor.reset() }
}
