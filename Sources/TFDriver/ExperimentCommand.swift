import ArgumentParser
import Foundation
import TFExperiment

/// `tfc experiment growth CONFIG ...`: the experiments that check the paper's claims at small scale.
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run an experiment of docs/experiments.md (growth: grown versus trained from scratch).",
        subcommands: [GrowthExperimentCommand.self])
}

/// `tfc experiment growth CONFIG --data TRAIN --eval-data VALID --out DIR`: model A from scratch,
/// A grown to B with each initialisation and trained on, B from scratch; then the curves, the plot
/// and the table. Every run is a `tfc train` (and `tfc grow`) child process, so a rerun skips the
/// finished runs and resumes the others from their last checkpoint.
struct GrowthExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "growth",
        abstract: "Grow a trained model A to B and train on, versus B from scratch (docs/experiments.md).",
        discussion: """
        Runs, as tfc train / tfc grow child processes with one thread each (so every run repeats exactly): \
        scratch-A (spec_a, steps_a steps); scratch-B (spec_b, steps_b steps); and for --init exact, reference and \
        random-keys, A's final checkpoint grown by the config's --tokens clauses and trained on with a fresh warm-up \
        and cosine until its compute, A's training included, reaches scratch-B's. Training FLOPs are 3x the forward \
        prefill FLOPs of each window. DIR/runs/NAME holds each training directory, DIR/logs/NAME.log its output. \
        A rerun with the same config skips finished runs and resumes interrupted ones from their last checkpoint \
        (every eval_every steps). At the end --results DIR (default: --out) receives growth.json (every run's flops \
        and val_loss), growth.svg (the plot) and growth-table.md (the table of docs/experiments.md).
        """)

    @ArgumentParser.Argument(help: "The experiment config (JSON), e.g. specs/experiments/growth.json.") var config: String
    @Option(help: "Training text (bytes are the tokens), e.g. from scripts/experiment-corpus.sh.") var data: String
    @Option(name: .customLong("eval-data"), help: "Held-out text.") var evalData: String
    @Option(help: "Working directory of the runs (resumable).") var out: String
    @Option(help: "Where growth.json, growth.svg and growth-table.md go (default: --out).") var results: String?
    @Option(help: "Runs trained at the same time (each with one thread).") var jobs: Int = 2
    @Option(name: .customLong("progress-every"), help: "Seconds between progress lines.") var progressEvery: Double = 60

    func validate() throws {
        if jobs < 1 { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
        if !(progressEvery > 0) { throw ValidationError("--progress-every must be positive, got \(progressEvery)") }
    }

    func run() throws {
        try reportingErrors {
            let settings = try GrowthConfig.load(config)
            for (flag, path) in [("--data", data), ("--eval-data", evalData)] where !FileManager.default.isReadableFile(atPath: path) {
                throw UserError("error: \(flag) \(path): cannot read it (make experiment prepares the corpus with scripts/experiment-corpus.sh)")
            }
            let runner = try GrowthExperiment(config: settings, configPath: config, data: data, evalData: evalData, out: out,
                                              jobs: jobs, progressEvery: progressEvery)
            try runner.checkResults(self.results ?? out, configPath: config)
            let results = try runner.run()
            try runner.write(results, to: self.results ?? out)
        }
    }
}
