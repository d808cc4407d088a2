import ArgumentParser
import Foundation
import TFIR
import TFPasses
import TFSpec
import TFTraining
import TFWeights

enum GrowScaleChoice: String, ExpressibleByArgument, CaseIterable {
    case pinned, reference
    var mode: ScaleMode { self == .pinned ? .pinned : .reference }
}

/// New key tokens, and for the three initialisations the paper's question compares, τ too:
/// exact (zero keys, τ pinned), reference (zero keys, τ follows sqrt(n)) and random-keys
/// (normal(0, 0.02) keys and zero values, τ follows sqrt(n) unless --scale pinned: the official
/// incremental-scaling code). zero and small leave τ to --scale.
enum GrowInitChoice: String, ExpressibleByArgument, CaseIterable {
    case zero, small, exact, reference
    case randomKeys = "random-keys"
}

/// `tfc grow SPEC --weights W -o NEW.tfs --out-weights NEW.safetensors [--tokens SITE=...]... [--layers +N [--at K]]`:
/// scale a trained model by IR rewrites that keep what it computes.
struct GrowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grow",
        abstract: "Grow a trained model (more parameter tokens, more layers) without changing what it computes.",
        discussion: """
        Growth appends parameter tokens to Pattention sites, K' = [K; 0] and V' = [V; 0], and inserts layers whose sites that write the residual stream have zero value tokens. It writes a new spec (pretty-printed, re-parseable) and new float32 weights; the inputs are never modified.

        --scale pinned (default) keeps τ at each grown site at its old value (the new spec says `scale: τ_old`), so the output is preserved exactly for l2_norm_gelu sites and also for gelu_l2_norm sites: zero keys give zero scores, the row norm is unchanged, and gelu(0) = 0. softmax sites cannot be grown exactly (exp(0) = 1 gives every new token weight), so pinned growth refuses them. --scale reference lets τ follow sqrt(n) as the reference training code does; the output then drifts, and --verify reports by how much.

        --init small draws the new key tokens from normal(0, --init-std) (values stay zero): the new scores change the row norm and so every old token's activation, a small drift.

        --init exact (zero keys, τ pinned), reference (zero keys, τ follows sqrt(n)) and random-keys (normal(0, 0.02) keys, zero values, τ follows sqrt(n)) are the three initialisations of new tokens to compare. Zero keys with zero values are a stationary point of training: such tokens never move.

        Growing a training checkpoint: --weights RUN_DIR (tfc train --out) with --out-checkpoint NEW_DIR instead of --out-weights. Both Adam moments grow with the weights (new entries zero); the step and sampler state are kept, so tfc train NEW.tfs --out NEW_DIR --resume continues the schedule.

        Inserted layers: residual-writing sites get zero value tokens, the other sites tfc init's initialisation (from --seed), so the new attention sees well-defined inputs. Layers from --at K on are renumbered.

        --verify (default) runs the old and new model on sample tokens and prints the max-abs logit difference; a growth that should be exact but differs by more than --tolerance is an error and nothing is written. --dry-run prints parameters and FLOPs/token per site, before and after, and reads or writes no weights.

        Example (the paper's 354M → 757M schedule):
          tfc grow specs/tokenformer-354m-base.tfs --weights 354m.safetensors \\
            --tokens attention=1792 --tokens mlp=7168 -o 757m.tfs --out-weights 757m.safetensors
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs) of the trained model.") var spec: String
    @Option(help: "The trained weights (.safetensors) matching the spec.") var weights: String?
    @Flag(name: .customLong("allow-nonfinite"), help: ArgumentHelp(NonFinitePolicy.flagHelp)) var allowNonFinite = false
    @Option(name: [.customShort("o"), .customLong("output")], help: "Where to write the grown spec (.tfs).") var output: String?
    @Option(name: .customLong("out-weights"), help: "Where to write the grown weights (.safetensors).") var outWeights: String?
    @Option(name: .customLong("tokens"),
            help: ArgumentHelp("Grow sites: SITE=+N adds N tokens, SITE=N grows to N, SITE=xF scales by F. SITE is a site (mlp, attention.query), a dotted prefix (attention) or all. Repeatable.",
                               valueName: "SITE=COUNT"))
    var tokenClauses: [String] = []
    @Option(help: ArgumentHelp("+N inserts N layers; N grows to N layers in total.", valueName: "+N")) var layers: String?
    @Option(help: ArgumentHelp("Insert the new layers before layer K (default: after the last one).", valueName: "K")) var at: Int?
    @Option(help: "pinned (default): τ keeps its old value at grown sites (exact); reference: τ follows sqrt(n) (drifts).") var scale: GrowScaleChoice?
    @Option(name: .customLong("init"), help: "New tokens: exact (zero keys, τ pinned), reference (zero keys, τ follows sqrt(n)), random-keys (normal(0, 0.02) keys, zero values, τ follows sqrt(n)), zero (zero keys, τ by --scale) or small (normal(0, --init-std) keys).") var keyInit: GrowInitChoice = .zero
    @Option(name: .customLong("out-checkpoint"), help: "With --weights a training directory (tfc train --out DIR): the new training directory, for tfc train --resume.") var outCheckpoint: String?
    @Option(name: .customLong("init-std"), help: "Standard deviation of --init small.") var initStd: Double = 1e-3
    @Option(help: "Random seed for inserted layers, --init small and the verify tokens.") var seed: UInt64 = 0
    @Flag(inversion: .prefixedNo, help: "Run the old and new model on sample tokens and compare their logits.") var verify = true
    @Option(name: .customLong("verify-tokens"), help: "Sample tokens for --verify.") var verifyTokens: Int = 16
    @Option(help: "Largest max-abs logit difference accepted as exact.") var tolerance: Double = 1e-4
    @Flag(help: "Print parameters and FLOPs/token per site before and after; write nothing.") var dryRun = false
    @Option(help: "The grown model's name (default: the original's).") var name: String?
    @Option(help: "Backend for --verify: fused or naive.") var backend: BackendChoice = .fused
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        try reportingErrors { try grow() }
    }

    /// The checks before any file is read: option values, and both outputs by the output policy
    /// (nil for --dry-run, which writes nothing).
    func checkOptions() throws -> (spec: OutputTarget, weights: OutputTarget?)? {
        if threads < 1 { throw UserError("error: --threads must be at least 1, got \(threads)") }
        if verifyTokens < 1 { throw UserError("error: --verify-tokens must be at least 1, got \(verifyTokens)") }
        if !(tolerance >= 0) { throw UserError("error: --tolerance must be a non-negative number, got \(tolerance)") }
        if !(initStd > 0) || !initStd.isFinite { throw UserError("error: --init-std must be positive, got \(initStd)") }
        if tokenClauses.isEmpty && layers == nil {
            throw UserError("error: nothing to grow: give --tokens SITE=+N (or =N, =xF) and/or --layers +N")
        }
        if at != nil && layers == nil { throw UserError("error: --at \(at!) needs --layers +N (the layers to insert)") }
        if let name, let bad = name.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .lineSeparator || $0.properties.generalCategory == .paragraphSeparator }) {
            // The name is printed into the new spec as a string literal, which is one line of text.
            throw UserError("error: --name: a model name cannot contain a line break or control character (\(String(format: "U+%04X", bad.value)))")
        }
        _ = try scaleMode()
        if dryRun { return nil }
        if let directory = checkpointDirectory { return try checkCheckpointOptions(directory) }
        if let outCheckpoint {
            throw UserError("error: --out-checkpoint \(outCheckpoint) needs --weights to be a training directory (tfc train --out DIR) or its \(TrainingState.checkpointName)")
        }
        var missing: [String] = []
        if weights == nil { missing.append("--weights W.safetensors") }
        if output == nil { missing.append("-o NEW.tfs") }
        if outWeights == nil { missing.append("--out-weights NEW.safetensors") }
        if !missing.isEmpty {
            throw UserError("error: tfc grow needs \(missing.joined(separator: ", ")) (or --dry-run to only print the sizes)")
        }
        let targets = try OutputPolicy.check([(role: "-o", path: output!), (role: "--out-weights", path: outWeights!)],
                                             inputs: [(what: "spec", path: spec), (what: "weights file", path: weights!)])
        return (targets[0], targets[1])
    }

    /// τ at grown sites: --scale, or what --init exact / reference / random-keys implies.
    func scaleMode() throws -> ScaleMode {
        let implied: GrowScaleChoice?
        switch keyInit {
        case .exact: implied = .pinned
        case .reference: implied = .reference
        case .randomKeys: implied = scale ?? .reference
        case .zero, .small: implied = nil
        }
        if let scale, let implied, scale != implied {
            throw UserError("error: --init \(keyInit.rawValue) sets τ to \(implied.rawValue), which contradicts --scale \(scale.rawValue)")
        }
        return (scale ?? implied ?? .pinned).mode
    }

    /// The new key tokens' values (new value tokens are always zero).
    var newKeys: NewTokenInit {
        switch keyInit {
        case .small: return .normal(std: initStd)
        case .randomKeys: return .normal(std: 0.02)  // tfc init's std for key tokens
        case .zero, .exact, .reference: return .zero
        }
    }

    /// Random rows: the first values of the named normal stream tfc init draws with --seed.
    var normalFill: (String, Double, UnsafeMutableBufferPointer<Float>) -> Void {
        let seed = self.seed
        return { stream, std, out in
            WeightInit.fill(out, for: TensorSpec(name: stream, shape: [out.count], initStd: Float(std)), seed: seed)
        }
    }

    func grow() throws {
        let outputs = try checkOptions()
        let loaded = try LoadedSpec(path: spec)
        let old = loaded.graph
        let mode = try scaleMode()

        var rewrites: [any GrowthRewrite] = []
        let targets = try GrowRequest.targets(tokenClauses, sites: old.siteTemplates)
        if !targets.isEmpty {
            rewrites.append(GrowSites(targets, scale: mode, newKeys: newKeys))
        }
        var inserted: (count: Int, at: Int)?
        if let layers {
            let count = try GrowRequest.insertedLayers(layers, current: old.config.layers)
            inserted = (count, at ?? old.config.layers)
            rewrites.append(InsertLayers(count: count, at: inserted!.at, exact: mode == .pinned))
        }
        var result = try GrowthPipeline(rewrites).run(spec: loaded.spec, graph: old, file: output ?? spec)
        if let name { result.rename(name) }
        let report = GrowReport(old: old, new: result.graph)

        if dryRun {
            print("dry run: growing \(old.config.name) (\(spec)), τ \(mode == .pinned ? "pinned at grown sites" : "follows sqrt(n) (reference)"); nothing is written")
            print(report.text)
            for reason in result.drift { print("drift: \(reason)") }
            return
        }

        if let directory = checkpointDirectory {
            return try growCheckpoint(directory, result: result, report: report, inserted: inserted, files: outputs!)
        }
        let output = output!, outWeights = outWeights!, files = outputs!
        let oldWeights = try old.loadWeights(weights!, allowNonFinite: allowNonFinite)
        // The original model's executor first: a backend that cannot run fails before any writing.
        let oldExecutor = verify ? try GrowExecutor(graph: old, weights: oldWeights, backend: backend, threads: threads) : nil
        let start = Date()
        // Both outputs go to temporary files, committed together once verified; a failure or an
        // interrupt leaves neither (AtomicFile removes its temporary file).
        let weightsFile = try AtomicFile(files.weights!)
        let specFile = try AtomicFile(files.spec)
        try writeWeights(result, from: oldWeights, into: weightsFile, source: weights!)
        let header = GrowReport.header(from: spec, old: old, new: result.graph, scale: mode, inserted: inserted)
        try specFile.write(Array((header + Printer.print(result.spec)).utf8))
        let writeSeconds = Date().timeIntervalSince(start)

        print("growing \(old.config.name) (\(spec)), τ \(mode == .pinned ? "pinned at grown sites" : "follows sqrt(n) (reference)")")
        print(report.text)
        print(String(format: "weights: %@; written in %.2f s", GrowReport.planSummary(result.plan), writeSeconds))

        try verifyGrowth(oldExecutor, result, weightsPath: weightsFile.temporaryPath)
        try weightsFile.commit()
        try specFile.commit()
        print(String(format: "wrote %@ and %@ in %.2f s", output, outWeights, Date().timeIntervalSince(start)))
    }

    /// --verify: the grown model against the original on sample tokens; an exact growth that
    /// differs by more than --tolerance is an error.
    func verifyGrowth(_ oldExecutor: GrowExecutor?, _ result: GrowthResult, weightsPath: String) throws {
        if verify {
            let newWeights = try result.graph.loadWeights(weightsPath, allowNonFinite: allowNonFinite)
            let comparison = try compare(oldExecutor!, result.graph, newWeights)
            let exact = result.drift.isEmpty
            var line = String(format: "verify (%@ backend, %d sample tokens): max |Δlogit| = %.3g (largest |logit| %.3g), top-1 agreement %d/%d",
                              backend.rawValue, comparison.positions, Double(comparison.maxAbsDifference), Double(comparison.maxAbsLogit),
                              comparison.top1Agreement, comparison.positions)
            if comparison.maxAbsDifference.isNaN {
                throw UserError("error: verify: the grown model's logits are not finite (NaN); nothing was written")
            }
            if exact {
                if !(Double(comparison.maxAbsDifference) <= tolerance) {
                    throw UserError(String(format: "error: verify: the grown model should compute what the original does, but its logits differ by up to %.3g (> --tolerance %.3g); nothing was written", Double(comparison.maxAbsDifference), tolerance))
                }
                line += ": exact"
            } else {
                line += ": drift expected"
            }
            print(line)
            for reason in result.drift { print("  drift: \(reason)") }
        } else {
            print("verify: skipped (--no-verify)")
            for reason in result.drift { print("  drift expected: \(reason)") }
        }
    }

    /// The grown weights: every tensor made by the plan's one materialising routine.
    func writeWeights(_ result: GrowthResult, from old: WeightFile, into file: AtomicFile, source: String) throws {
        var metadata = ["tfc.model": result.graph.config.name, "tfc.grow.from": source,
                        "tfc.grow.scale": (try? scaleMode()) == .reference ? "reference" : "pinned", "tfc.grow.init": keyInit.rawValue, "tfc.grow.seed": String(seed)]
        for (key, value) in old.metadata where metadata[key] == nil && !key.hasPrefix("tfc.grow.") { metadata[key] = value }
        var writer = SafetensorsWriter(metadata: metadata)
        let normal = normalFill
        for tensor in result.plan.tensors {
            writer.add(tensor.name, shape: tensor.shape) { buffer in
                WeightPlan.materialise(tensor, into: buffer, source: { old.tensor($0)!.floats }, normal: normal)
            }
        }
        try writer.write(into: file)
    }

    /// Old and new model on the same sample tokens, through the backend `tfc run` would use.
    func compare(_ old: GrowExecutor, _ new: Graph, _ newWeights: WeightFile) throws -> GrowthComparison {
        let b = try GrowExecutor(graph: new, weights: newWeights, backend: backend, threads: threads)
        let count = min(verifyTokens, old.graph.config.context, new.config.context)
        let tokens = GrowthComparison.sampleTokens(count: count, vocab: old.graph.config.vocab, seed: seed)
        return GrowthComparison.compare(old, b, tokens: tokens)
    }
}

/// A `ModelRunner` (where backends are chosen) seen as a `ModelExecutor`.
final class GrowExecutor: ModelExecutor {
    let graph: Graph
    let runner: ModelRunner

    init(graph: Graph, weights: WeightFile, backend: BackendChoice, threads: Int) throws {
        self.graph = graph
        runner = try ModelRunner(graph: graph, weights: weights, backend: backend, threads: threads)
    }

    var position: Int { runner.position }
    func forward(_ tokens: [Int32]) -> Matrix { runner.forward(tokens) }
    func reset() { runner.reset() }
}

extension GrowthResult {
    /// Gives the grown model another name (in the spec and its graph).
    mutating func rename(_ name: String) {
        for i in spec.items.indices {
            if case .model(var m) = spec.items[i] {
                m.name = name
                spec.items[i] = .model(m)
            }
        }
        graph.config.name = name
    }
}
