import Foundation
import TFExperiment
import TFIR
import TFTraining
import TFWeights
#if canImport(Glibc)
import Glibc
#endif

/// The growth experiment's runs as `tfc train` and `tfc grow` child processes of this executable
/// (docs/experiments.md): planning, resuming, progress, and the results.
struct GrowthExperiment {
    let config: GrowthConfig
    let plan: GrowthPlan
    let graphA: Graph, graphB: Graph
    let data: String, evalData: String, out: String
    let jobs: Int, progressEvery: Double
    let tfc: String

    init(config: GrowthConfig, configPath: String, data: String, evalData: String, out: String, jobs: Int, progressEvery: Double) throws {
        self.config = config; self.data = data; self.evalData = evalData; self.out = out; self.jobs = jobs; self.progressEvery = progressEvery
        graphA = try LoadedSpec(path: config.specA).graph
        graphB = try LoadedSpec(path: config.specB).graph
        for (graph, path) in [(graphA, config.specA), (graphB, config.specB)] where config.seq > graph.config.context {
            throw UserError("\(configPath): error: \"seq\" \(config.seq) exceeds the context of \(path) (\(graph.config.context))")
        }
        plan = try GrowthPlan(config: config,
                              flopsPerStepA: TrainingFlops.perStep(graphA, batch: config.batch, seq: config.seq),
                              flopsPerStepB: TrainingFlops.perStep(graphB, batch: config.batch, seq: config.seq))
        tfc = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func runDirectory(_ name: String) -> String { out + "/runs/" + name }
    func grownSpec(_ name: String) -> String { out + "/specs/" + name + ".tfs" }
    func logFile(_ name: String) -> String { out + "/logs/" + name + ".log" }

    /// The step of the checkpoint in `directory` (nil: none yet).
    func checkpointStep(_ directory: String) -> Int? { TrainingState.journalStep(in: directory) }

    func run() throws -> GrowthResults {
        try prepareDirectory()
        let lock = try lockDirectory()
        defer { close(lock) }
        let c = config
        let grownSteps = plan.runs.first { $0.grownAt != nil }?.steps ?? 0
        say(String(format: "growth experiment: A %@ parameters (%.3g FLOPs per step), B %@ (%.3g); batch %d × %d bytes; scratch-A %d steps, scratch-B %d, grown runs %d (A's %d + %d after growth, the compute of scratch-B)",
                   grouped(graphA.parameterCount), plan.flopsPerStepA, grouped(graphB.parameterCount), plan.flopsPerStepB, c.batch, c.seq,
                   c.stepsA, c.stepsB, grownSteps, c.stepsA, grownSteps - c.stepsA))
        let start = Date()
        var list: [JobQueue.Job] = []
        for run in plan.runs {
            switch run.kind {
            case .scratchA: list.append(.init(name: run.name, after: []) { try train(run, spec: c.specA) })
            case .scratchB: list.append(.init(name: run.name, after: []) { try train(run, spec: c.specB) })
            case .grown(let initialisation):
                list.append(.init(name: "grow " + run.name, after: ["scratch-A"]) { try grow(run, initialisation: initialisation) })
                list.append(.init(name: run.name, after: ["grow " + run.name]) { try train(run, spec: grownSpec(run.name)) })
            }
        }
        let monitor = ExperimentProgress(plan: plan, directory: runDirectory, every: progressEvery)
        monitor.start()
        defer { monitor.stop() }
        try JobQueue(list, width: jobs).run()
        say(String(format: "all runs done in %.0f s", Date().timeIntervalSince(start)))
        return try results()
    }

    /// DIR/config.json records the config the runs were made with; a rerun with another is refused
    /// (its finished runs would not be this config's).
    func prepareDirectory() throws {
        for sub in ["runs", "specs", "logs"] {
            do { try FileManager.default.createDirectory(atPath: out + "/" + sub, withIntermediateDirectories: true) } catch {
                throw UserError("error: --out \(out): cannot create \(sub)/: \(error.localizedDescription)")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let recorded = String(decoding: try encoder.encode(config), as: UTF8.self) + "\n"
        let path = out + "/config.json"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            if existing != recorded {
                throw UserError("error: --out \(out) holds runs of another config (\(path)); choose another --out or delete it")
            }
        } else {
            try TrainingFile.write(recorded, to: path)
        }
    }

    /// An exclusive lock on DIR/lock for the whole run (released when the process ends): a second
    /// experiment in the same directory would train the same runs twice.
    func lockDirectory() throws -> Int32 {
        let path = out + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw UserError("error: --out \(out): cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw UserError("error: --out \(out): another experiment is running there (\(path) is locked); wait for it or choose another --out")
        }
        return fd
    }

    /// One training run: skipped when finished, resumed from its checkpoint when interrupted.
    func train(_ run: GrowthPlan.Run, spec: String) throws {
        let directory = runDirectory(run.name)
        let step = checkpointStep(directory)
        if let step, step >= run.steps {
            say("\(run.name): done (step \(step)), skipped")
            return
        }
        let c = config
        var arguments = ["train", spec, "--data", data, "--eval-data", evalData, "--format", "bytes",
                         "--steps", "\(run.steps)", "--batch", "\(c.batch)", "--seq", "\(c.seq)", "--lr", "\(c.lr)", "--warmup", "\(c.warmup)",
                         "--seed", "\(c.seed)", "--eval-every", "\(c.evalEvery)", "--eval-windows", "\(c.evalWindows)",
                         "--checkpoint-every", "\(c.evalEvery)", "--log-every", "\(c.evalEvery)", "--threads", "1", "--out", directory]
        if let grownAt = run.grownAt { arguments += ["--schedule-start", "\(grownAt)"] }
        // A grown run always continues its checkpoint; the log is appended to after an interruption.
        let resuming = step != nil, interrupted = step != nil && step != run.grownAt
        if resuming { arguments.append("--resume") }
        let how = interrupted ? " (resumed)" : run.grownAt != nil ? " (after growth, a fresh warm-up and cosine)" : ""
        say("\(run.name): training steps \((step ?? 0) + 1)...\(run.steps)\(how) (log \(logFile(run.name)))")
        let started = Date()
        try child(arguments, log: logFile(run.name), append: interrupted, what: run.name)
        let loss = TrainingLog(resumingFrom: directory, upTo: run.steps).rows.last?.heldOutLoss
        say(String(format: "%@: done in %.0f s, held-out loss %.4f", run.name, Date().timeIntervalSince(started), loss ?? .nan))
    }

    /// A's final checkpoint grown into the run's directory (skipped once it exists), and the
    /// grown spec checked to have B's parameters.
    func grow(_ run: GrowthPlan.Run, initialisation: String) throws {
        let directory = runDirectory(run.name)
        if checkpointStep(directory) == nil {
            let arguments = ["grow", config.specA, "--weights", runDirectory("scratch-A"), "-o", grownSpec(run.name), "--out-checkpoint", directory]
                + config.grow.flatMap { ["--tokens", $0] }
                + ["--init", initialisation, "--seed", "\(config.seed)", "--threads", "1", "--backend", "naive"]
            say("\(run.name): growing A's checkpoint (--init \(initialisation))")
            try child(arguments, log: out + "/logs/" + run.name + ".grow.log", append: false, what: "grow " + run.name)
        }
        let grown = try LoadedSpec(path: grownSpec(run.name)).graph
        let shapes = { (g: Graph) in Dictionary(g.parameters.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a }) }
        if shapes(grown) != shapes(graphB) {
            throw UserError("error: \(grownSpec(run.name)): growing \(config.specA) by \(config.grow.joined(separator: " ")) does not give the parameters of \(config.specB); make spec_b the grown model")
        }
    }

    /// Runs this executable with `arguments`, its output to `log`; a failure names the log.
    func child(_ arguments: [String], log: String, append: Bool, what: String) throws {
        let (status, stdout, stderr) = try runChildProcess(tfc, arguments)
        var text = append ? ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") : ""
        text += "$ tfc " + arguments.joined(separator: " ") + "\n" + stdout + stderr
        try TrainingFile.write(text, to: log)
        if status != 0 {
            let reason = stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
            throw UserError("error: \(what) failed (\(reason)); its output is in \(log)")
        }
    }

    func results() throws -> GrowthResults {
        let runs = try plan.runs.map { run -> GrowthResults.RunResult in
            let directory = runDirectory(run.name)
            guard let step = checkpointStep(directory), step >= run.steps else {
                throw UserError("error: \(directory): the run \(run.name) is not finished; rerun the experiment")
            }
            let log = TrainingLog(resumingFrom: directory, upTo: run.steps)
            let curve = ComputeCurve(log: log) { plan.flops(run, atStep: $0) }
            switch run.kind {
            case .scratchA: return .init(run: run, model: graphA.config.name, parameters: graphA.parameterCount, curve: curve)
            case .scratchB: return .init(run: run, model: graphB.config.name, parameters: graphB.parameterCount, curve: curve)
            case .grown(let i):
                return .init(run: run, model: "\(graphA.config.name) grown (\(config.grow.joined(separator: " ")), --init \(i))",
                             parameters: graphB.parameterCount, curve: curve)
            }
        }
        return GrowthResults(plan: plan, runs: runs)
    }

    /// The result files, none of which may be an input (the config itself is named growth.json).
    static let resultNames = ["growth.json", "growth.svg", "growth-table.md"]

    func checkResults(_ directory: String, configPath: String) throws {
        let inputs = [("the config", configPath), ("--data", data), ("--eval-data", evalData), ("spec_a", config.specA), ("spec_b", config.specB)]
        for name in Self.resultNames {
            for (what, input) in inputs where OutputPolicy.sameFile(directory + "/" + name, input) {
                throw UserError("error: --results \(directory): \(name) would replace \(what) \(input); choose another --results")
            }
        }
    }

    func write(_ results: GrowthResults, to directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw UserError("error: --results \(directory): cannot create the directory: \(error.localizedDescription)")
        }
        try TrainingFile.write(results.json, to: directory + "/growth.json")
        try TrainingFile.write(results.chart.svg, to: directory + "/growth.svg")
        try TrainingFile.write(results.markdownTable, to: directory + "/growth-table.md")
        say("\n" + results.markdownTable)
        say("wrote \(directory)/growth.json, growth.svg and growth-table.md")
    }
}
