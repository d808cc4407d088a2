import ArgumentParser
import Foundation
import TFBench
import TFIR
import TFAutodiff
import TFTraining
import TFWeights

/// `tfc bench train SPEC`: training steps per second, naive vs fused, in one run.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps (gradients of --batch windows of --seq tokens, then AdamW), fused vs naive.",
        discussion: """
        Both sides start from the same random weights (as `tfc init --seed 0` makes them) and draw the same windows of random token ids; they alternate step by step after the warm-up. A step's FLOPs are 3 × the forward FLOPs of its windows; % peak is of an sgemm run between the steps (the median of one per round, by the steps' clock). The fused side's kernels are compiled before timing (its compile time is shown apart).
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "Tokens per window (at least 2, at most the context).") var seq = 128
    @Option(help: "Windows per step.") var batch = 4
    @OptionGroup var options: BenchOptions
    @Flag(help: "Also print the fused side's seconds per step in each kernel (summed over warm-up and timed steps; the rest of a step is host work).")
    var profile = false
    @Flag(help: "Time steps (and --profile's kernels) by the process's CPU time instead of the wall clock: on a shared machine it leaves out the time other jobs hold the cores.")
    var cpuTime = false

    func validate() throws {
        if seq < 2 { throw ValidationError("--seq must be at least 2 (the loss predicts each next token), got \(seq)") }
        if batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        if options.plot != nil { throw ValidationError("--plot is not available for tfc bench train (the table and --json are)") }
        if options.compare != nil { throw ValidationError("--compare is not available for tfc bench train (the table and --json are)") }
    }

    func run() throws {
        try reportingErrors {
            let outputs = try options.checkOutputs(inputs: [(what: "spec", path: spec)])
            let loaded = try LoadedSpec(path: spec)
            let graph = loaded.graph, config = graph.config
            if seq > config.context { throw UserError("error: --seq \(seq) exceeds the context of \(config.name) (\(config.context))") }
            if let list = options.targetCPU, list.contains(",") { throw UserError("error: --target-cpu: bench train takes one target (got \(list))") }
            let vector = [try trainingVectorTarget(options.targetCPU)]
            let grad = try differentiate(graph)
            let progress = ProgressLine()
            progress.update(step: 0, of: 0, "initialising random weights")
            let weights = BenchWeights(randomFor: graph)
            let peak = options.measurePeak(progress)
            // Random ids, enough for distinct windows; the held-out part is unused.
            var random = TrainingRandom(seed: 1)
            let ids = (0..<max(64 * seq, 4096)).map { _ in Int32(random.next() % UInt64(config.vocab)) }
            let data = TrainingData(train: ids, heldOut: Array(ids.prefix(seq)))
            func trainer(_ backend: TrainingBackend) throws -> Trainer {
                let state = TrainingState(parameters: grad.parameters, seed: 0) { p, buffer in
                    _ = buffer.update(from: weights.lookup(p.name))
                }
                return try Trainer(grad: grad, state: state, data: data, options: AdamWOptions(weightDecay: 0.1, clipNorm: 1),
                                   schedule: LearningRate(peak: 1e-3, warmup: 10, steps: 1_000_000), batch: batch, window: seq,
                                   threads: options.threads, backend: backend, vector: vector[0])
            }
            let clock: StepClock = cpuTime ? .processCPU : .wall
            /// One step of `body`, in seconds of `clock`, after the untimed `blas()`: BLAS threads
            /// up for the naive side, parked for the fused one (`BLASThreads`: OpenBLAS workers
            /// left spinning after a naive step would hold the cores the fused step's pool needs).
            func timedStep(blas: @escaping () -> Void, _ body: @escaping () -> Void) -> () -> Double {
                { blas(); let start = clock.now(); body(); return clock.now() - start }
            }
            let naive = try trainer(.naive)
            var fused: Trainer? = nil, fusedError: String? = nil, compile: Double? = nil
            progress.update(step: 0, of: 0, "compiling the fused gradient kernels")
            do {
                fused = try trainer(.fused)
                compile = (fused!.gradient as? FusedGradient)?.compileSeconds
                (fused!.gradient as? FusedGradient)?.timesKernels = profile
                (fused!.gradient as? FusedGradient)?.kernelClock = clock
            } catch {
                fusedError = "\(error)"
            }
            progress.finish()
            var sides: [() -> Double] = [timedStep(blas: BLASThreads.wake) { _ = naive.step() }]
            if let fused { sides.append(timedStep(blas: BLASThreads.park) { _ = fused.step() }) }
            // Last in each round: one sgemm of the start's size, by the steps' clock, so % peak
            // compares a step with the peak of its own moments (as `bench model` does).
            let sgemm = SgemmProbe(size: peak.sgemmSize)
            sides.append { BLASThreads.wake(); return sgemm.run(clock: clock.now) }
            let rounds = options.warmup + options.repeats, total = rounds * sides.count
            var summaries = Alternation(warmup: options.warmup, repeats: options.repeats).run(sides, step: { done, _ in
                progress.update(step: done, of: total, "training steps")
            })
            progress.finish()
            let sgemmRuns = summaries.removeLast()
            var report = TrainReport(run: options.run(spec: spec, graph: graph, fusedAvailable: fused != nil), peak: peak, seq: seq, batch: batch,
                                     forwardFlops: graph.prefillFlops(tokens: seq), naive: summaries[0], fused: summaries.count > 1 ? summaries[1] : nil,
                                     compileSeconds: compile, fusedError: fusedError, clock: clock.rawValue)
            report.sgemmBetweenRuns = sgemmRuns
            report.sgemmFlops = sgemm.flops
            report.sgemmSize = sgemm.size
            try options.finish(text: report.text, json: report.json, chart: BarChart(title: "", subtitle: "", panels: []), old: nil, outputs: outputs)
            if let gradient = fused?.gradient as? FusedGradient {
                print("fused kernels: \(gradient.vector.name) (--target-cpu)")
                if profile { print(Self.profileTable(gradient.kernelSeconds, steps: rounds, stepSeconds: summaries[1])) }
            }
        }
    }

    /// Per kernel: milliseconds per fused step and the share of the median step, largest first.
    static func profileTable(_ seconds: [String: Double], steps: Int, stepSeconds: Summary) -> String {
        let step = stepSeconds.median
        var lines = ["fused step by kernel (ms per step, % of the median step \(String(format: "%.3f", step * 1000)) ms):"]
        for (name, s) in seconds.sorted(by: { $0.value > $1.value }) {
            let perStep = s / Double(steps)
            lines.append(String(format: "  %8.3f ms  %5.1f%%  %@", perStep * 1000, 100 * perStep / step, name))
        }
        let kernels = seconds.values.reduce(0, +) / Double(steps)
        lines.append(String(format: "  %8.3f ms  %5.1f%%  all kernels (the rest is host work and timing noise)", kernels * 1000, 100 * kernels / step))
        return lines.joined(separator: "\n")
    }
}
