import ArgumentParser
import Foundation
import TFIR
import TFAutodiff
import TFTraining
import TFWeights
import TFNaive
import TFTokenizer

extension DataFormat: ExpressibleByArgument {}
extension TrainingBackend: ExpressibleByArgument {}

/// `tfc train SPEC --data FILE --out DIR ...`: AdamW on the naive backend (or `--backend fused`), with the backward graph
/// of the autodiff pass; checkpoints that resume bit-exactly.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a text or token file (AdamW; naive backend unless --backend fused).",
        discussion: """
        Each step draws --batch windows of --seq tokens at random offsets of the first 90% of the data \
        (the last 10% is held out), averages their gradients, clips them to --clip global norm and takes \
        one AdamW step (bias-corrected, decoupled weight decay on matrices). The rate warms up linearly \
        over --warmup steps, then follows a cosine to 10% at --steps. DIR receives checkpoint.safetensors \
        (weights and Adam moments), checkpoint.json (step, sampler state), weights.safetensors \
        (for tfc run), loss.csv and loss.json (one row per step) and, at the end, loss.svg (the loss curve). --resume continues from DIR to --steps total, bit-exactly.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "Training data: text (tokenized with the spec's tokenizer, or bytes as tokens) or, with --format ids, token ids.") var data: String
    @Option(name: .customLong("eval-data"), help: "Held-out data (same --format); default: the last 10% of --data.") var evalData: String?
    @Option(help: "text (the spec's tokenizer or --tokenizer; the default when there is one), bytes (each byte a token; the default otherwise) or ids (decimal ids separated by commas or whitespace).") var format: DataFormat?
    @Option(help: "A tokenizer.json for --format text instead of the one the spec names.") var tokenizer: String?
    @Option(help: "Initial weights (.safetensors); default: tfc init's initialisation with --seed.") var weights: String?
    @Option(help: "Optimiser steps in total.") var steps: Int
    @Option(help: "Windows per step.") var batch: Int = 8
    @Option(help: "Tokens per window (at least 2, at most the context).") var seq: Int = 64
    @Option(help: "Peak learning rate.") var lr: Double = 1e-3
    @Option(help: "Warm-up steps.") var warmup: Int = 20
    @Option(name: .customLong("schedule-start"), help: "Begin the warm-up and cosine afresh after this step (e.g. a grown checkpoint's step).") var scheduleStart: Int = 0
    @Option(name: .customLong("weight-decay"), help: "Decoupled weight decay.") var weightDecay: Double = 0.1
    @Option(help: "Clip the gradient to this global norm (0: off).") var clip: Double = 1
    @Option(help: "Seed of the initial weights and of the window sampler.") var seed: UInt64 = 0
    @Option(help: "Output directory for checkpoints.") var out: String
    @Flag(help: "Continue from the checkpoint in --out.") var resume = false
    @Option(name: .customLong("stop-after"), help: "Stop (with a checkpoint) after this step; the schedule still spans --steps.") var stopAfter: Int?
    @Option(name: .customLong("log-every"), help: "Print a progress line every K steps.") var logEvery: Int = 10
    @Option(name: .customLong("eval-every"), help: "Held-out loss every K steps (0: at the start and the end only).") var evalEvery: Int = 0
    @Option(name: .customLong("eval-windows"), help: "Held-out windows of --seq tokens per evaluation (at most).") var evalWindows: Int = 16
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every K steps (0: at the end only).") var checkpointEvery: Int = 0
    @Option(help: "Worker threads (1 keeps runs reproducible across machines).") var threads: Int = 1
    @Option(help: "naive (the oracle, the default) or fused (generated gradient kernels).") var backend: TrainingBackend = .naive
    @Option(name: .customLong("target-cpu"), help: "Vector target of the fused backend's kernels: native (the CPU's best, the default: AVX-512 measured faster than AVX2 for training on Zen 4), avx2 or avx512. Runs repeat exactly at the same target and --threads.")
    var targetCPU: String?

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        if seq < 2 { throw ValidationError("--seq must be at least 2 (the loss predicts each next token), got \(seq)") }
        if !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if !(weightDecay >= 0 && weightDecay.isFinite) { throw ValidationError("--weight-decay must be a non-negative number, got \(weightDecay)") }
        if !(clip >= 0 && clip.isFinite) { throw ValidationError("--clip must be a non-negative number, got \(clip)") }
        if logEvery < 1 { throw ValidationError("--log-every must be at least 1, got \(logEvery)") }
        if evalEvery < 0 || checkpointEvery < 0 { throw ValidationError("--eval-every and --checkpoint-every must not be negative") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if scheduleStart < 0 || scheduleStart >= steps { throw ValidationError("--schedule-start must be in 0..<\(steps) (--steps), got \(scheduleStart)") }
        if evalWindows < 1 { throw ValidationError("--eval-windows must be at least 1, got \(evalWindows)") }
        if let stopAfter, stopAfter < 1 || stopAfter > steps { throw ValidationError("--stop-after must be in 1...\(steps) (--steps), got \(stopAfter)") }
    }

    func run() throws {
        try reportingErrors {
            let vector = try trainingVectorTarget(targetCPU)
            let loaded = try LoadedSpec(path: spec)
            let config = loaded.graph.config
            if seq > config.context { throw UserError("error: --seq \(seq) exceeds the model's context of \(config.context)") }
            try prepareDirectory()
            let grad = try differentiate(loaded.graph)
            let (format, encoder) = try dataFormat(loaded)
            var corpus = try TrainingData(path: data, format: format, vocab: config.vocab, window: seq, heldOutPath: evalData,
                                          encode: encoder.map { t in { t.encode($0) } })
            corpus.heldOutLimit = evalWindows
            let state = try initialState(grad)
            let last = stopAfter ?? steps
            if state.step >= last { throw UserError("error: \(out): the checkpoint is at step \(state.step), nothing to do up to step \(last)") }
            let (used, note) = BLASThreadLimit.clamp(threads)
            if let note { FileHandle.standardError.write((note + "\n").data(using: .utf8)!) }
            let trainer = try Trainer(grad: grad, state: state, data: corpus,
                                      options: AdamWOptions(weightDecay: weightDecay, clipNorm: clip),
                                      schedule: LearningRate(peak: lr, warmup: warmup, steps: steps, start: scheduleStart), batch: batch, window: seq, threads: used,
                                      backend: backend, vector: vector,
                                      notes: { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) })
            if backend == .fused { print("backend fused: generated gradient kernels (\(vector.name))") }
            print("training \(config.name): \(grouped(loaded.graph.parameterCount)) parameters, \(corpus.train.count) training tokens, \(corpus.heldOut.count) held out; data as \(format.rawValue); steps \(state.step + 1)...\(last) of \(steps), batch \(batch) × \(seq) tokens")
            let firstStep = state.step
            let initialHeldOut = trainer.heldOutLoss()
            print(String(format: "held-out loss %.4f at step %d", initialHeldOut, state.step))
            var heldOut = initialHeldOut
            var lastLoss: Double? = nil
            var log = resume ? TrainingLog(resumingFrom: out, upTo: state.step) : TrainingLog()
            let start = Date()
            while state.step < last {
                let report = trainer.step()
                lastLoss = report.loss
                log.rows.append(.init(step: report.step, loss: report.loss, learningRate: report.learningRate, gradientNorm: report.gradientNorm))
                let done = state.step == last
                if state.step % logEvery == 0 || done {
                    let seconds = Date().timeIntervalSince(start)
                    let ran = state.step - firstStep
                    let rate = Double(ran * batch * seq) / max(seconds, 1e-9)
                    let eta = seconds / Double(ran) * Double(last - state.step)
                    print(String(format: "step %d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %.0f s",
                                 report.step, steps, report.loss, report.learningRate, report.gradientNorm, rate, eta))
                }
                if done || (evalEvery > 0 && state.step % evalEvery == 0) {
                    heldOut = trainer.heldOutLoss()
                    log.rows[log.rows.count - 1].heldOutLoss = heldOut
                    if !done { print(String(format: "held-out loss %.4f at step %d", heldOut, state.step)) }
                }
                if done || (checkpointEvery > 0 && state.step % checkpointEvery == 0) {
                    try state.save(to: out, model: config.name, loss: lastLoss, heldOutLoss: done ? heldOut : nil)
                    try log.write(to: out)
                }
            }
            try LossCurve.write(log, title: config.name, to: out)
            print(String(format: "held-out loss %.4f → %.4f (steps %d..%d); checkpoint at step %d in %@", initialHeldOut, heldOut, firstStep, last, last, out))
        }
    }

    /// The files training writes in `--out`.
    static let writtenFiles = [TrainingState.checkpointName, TrainingState.weightsName, TrainingState.journalName,
                               TrainingLog.fileName, TrainingLog.jsonName, LossCurve.fileName]

    /// `--out` must be a directory (created if missing); without --resume it must not hold a
    /// checkpoint, and no file it will write may be an input.
    func prepareDirectory() throws {
        let inputs = [("--weights", weights), ("--data", data), ("--eval-data", evalData), ("--tokenizer", tokenizer), ("the spec", spec)]
            .compactMap { what, path in path.map { (what: what, path: $0) } }
        for name in Self.writtenFiles {
            let target = out + "/" + name
            for input in inputs where OutputPolicy.sameFile(target, input.path) {
                throw UserError("error: \(input.what) \(input.path) is \(target), which training writes; move it or choose another --out")
            }
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { throw UserError("error: --out \(out) is a file; give a directory for the checkpoints") }
            let journal = out + "/" + TrainingState.journalName
            if !resume && FileManager.default.fileExists(atPath: journal) {
                throw UserError("error: --out \(out) already holds a checkpoint; pass --resume to continue it or choose another directory")
            }
        } else if resume {
            throw UserError("error: --out \(out) does not exist; there is no checkpoint to resume")
        } else {
            do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
                throw UserError("error: --out \(out): cannot create the directory: \(error.localizedDescription)")
            }
        }
        // tfc's output policy on every file training writes, before the first step (a read-only
        // or special file found only at the first checkpoint would cost the whole run).
        _ = try OutputPolicy.check(Self.writtenFiles.map { (role: "--out", path: out + "/" + $0) }, inputs: inputs)
    }

    /// --format, by default text when there is a tokenizer (--tokenizer or the spec's) and bytes otherwise.
    func dataFormat(_ loaded: LoadedSpec) throws -> (DataFormat, Tokenizer?) {
        if let format, format != .text {
            if let tokenizer { throw UserError("error: --tokenizer \(tokenizer) is for --format text, not --format \(format.rawValue)") }
            return (format, nil)
        }
        let model = try loadModelTokenizer(override: tokenizer, for: loaded)
        if let model { return (.text, model) }
        if format == .text {
            throw UserError("error: --format text needs a tokenizer: \(loaded.source.path) names none; add `tokenizer = \"NAME.tokenizer.json\"` to its model, or pass --tokenizer FILE")
        }
        return (.bytes, nil)
    }

    func initialState(_ grad: GradGraph) throws -> TrainingState {
        if resume {
            if weights != nil { throw UserError("error: --weights and --resume exclude each other; the checkpoint holds the weights") }
            return try TrainingState.load(from: out, parameters: grad.parameters)
        }
        if let weights {
            let file = try grad.forward.loadWeights(weights)
            return TrainingState(parameters: grad.parameters, seed: seed) { p, buffer in _ = buffer.update(fromContentsOf: file.tensor(p.name)!.floats) }
        }
        let seed = self.seed
        return TrainingState(parameters: grad.parameters, seed: seed) { p, buffer in
            switch p.initialization {
            case .normal(let std): WeightInit.fill(buffer, for: TensorSpec(name: p.name, shape: p.shape, initStd: Float(std)), seed: seed)
            case .constant(let value): buffer.update(repeating: Float(value))
            }
        }
    }
}
