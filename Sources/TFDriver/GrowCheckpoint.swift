import Foundation
import TFIR
import TFPasses
import TFSpec
import TFTraining
import TFWeights

/// `tfc grow SPEC --weights RUN_DIR -o NEW.tfs --out-checkpoint NEW_DIR`: grows a training
/// checkpoint. The weights grow as in plain growth; both Adam moments grow by the same plan with
/// every new entry zero (a new token has no gradient history); the step count and the window
/// sampler's state are kept, so `tfc train NEW.tfs --out NEW_DIR --resume` continues the schedule.
extension GrowCommand {
    /// The training directory --weights names (a directory holding a checkpoint, or its
    /// checkpoint.safetensors); any other directory is left to the weights reader's error.
    var checkpointDirectory: String? {
        guard let weights else { return nil }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: weights, isDirectory: &isDirectory), isDirectory.boolValue {
            let holdsCheckpoint = [TrainingState.checkpointName, TrainingState.journalName].contains {
                FileManager.default.fileExists(atPath: weights + "/" + $0)
            }
            return holdsCheckpoint ? weights : nil
        }
        let url = URL(fileURLWithPath: weights)
        return url.lastPathComponent == TrainingState.checkpointName ? url.deletingLastPathComponent().path : nil
    }

    /// The options of checkpoint growth; the new directory is created only once growth succeeded.
    func checkCheckpointOptions(_ directory: String) throws -> (spec: OutputTarget, weights: OutputTarget?) {
        if let outWeights {
            throw UserError("error: --out-weights \(outWeights): --weights \(weights!) is a training checkpoint, which grows into a training directory; give --out-checkpoint DIR instead")
        }
        var missing: [String] = []
        if output == nil { missing.append("-o NEW.tfs") }
        if outCheckpoint == nil { missing.append("--out-checkpoint DIR") }
        if !missing.isEmpty { throw UserError("error: growing the training checkpoint \(directory) needs \(missing.joined(separator: ", "))") }
        let out = outCheckpoint!
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { throw UserError("error: --out-checkpoint \(out) is a file; give a directory for the grown checkpoint") }
            if OutputPolicy.sameFile(out, directory) {
                throw UserError("error: --out-checkpoint \(out) is the checkpoint being grown; choose another directory")
            }
            if FileManager.default.fileExists(atPath: out + "/" + TrainingState.journalName) {
                throw UserError("error: --out-checkpoint \(out) already holds a checkpoint; choose another directory")
            }
        }
        let inputs = [(what: "spec", path: spec), (what: "checkpoint", path: directory + "/" + TrainingState.checkpointName),
                      (what: "checkpoint journal", path: directory + "/" + TrainingState.journalName)]
        return (try OutputPolicy.check(role: "-o", path: output!, inputs: inputs), nil)
    }

    func growCheckpoint(_ directory: String, result: GrowthResult, report: GrowReport, inserted: (count: Int, at: Int)?,
                        files: (spec: OutputTarget, weights: OutputTarget?)) throws {
        let old = try LoadedSpec(path: spec).graph
        let mode = try scaleMode()
        let oldState = try TrainingState.load(from: directory, parameters: old.parameters)
        let start = Date()
        let plan = Dictionary(result.plan.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let normal = normalFill
        let state = TrainingState(continuing: oldState, parameters: result.graph.parameters) { part, p, out in
            var tensor = plan[p.name]!
            if part != .weights {
                // A moment of a new entry starts at zero, whatever fills the weight.
                tensor.segments = tensor.segments.map { if case .fill(_, let count) = $0 { return .fill(.zero, count: count) } else { return $0 } }
            }
            WeightPlan.materialise(tensor, into: out, source: { oldState.values(part, $0)! }, normal: normal)
        }
        print("growing the training checkpoint \(directory) at step \(state.step) (\(old.config.name)), --init \(keyInit.rawValue), τ \(mode == .pinned ? "pinned at grown sites" : "follows sqrt(n) (reference)")")
        print(report.text)
        print("weights: \(GrowReport.planSummary(result.plan)); Adam moments: the same rows, new entries zero")

        let out = outCheckpoint!
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw UserError("error: --out-checkpoint \(out): cannot create the directory: \(error.localizedDescription)")
        }
        if verify {
            // Both models' weights as files for the executors; the grown one is a temporary file only.
            let oldWeights = try weightFile(of: oldState, graph: old, at: try OutputPolicy.check(role: "--out-checkpoint", path: out + "/.old-weights.safetensors"))
            let newWeights = try weightFile(of: state, graph: result.graph, at: try OutputPolicy.check(role: "--out-checkpoint", path: out + "/" + TrainingState.weightsName))
            defer { oldWeights.abandon(); newWeights.abandon() }
            let oldExecutor = try GrowExecutor(graph: old, weights: try old.loadWeights(oldWeights.temporaryPath, allowNonFinite: true), backend: backend, threads: threads)
            try verifyGrowth(oldExecutor, result, weightsPath: newWeights.temporaryPath)
        } else {
            try verifyGrowth(nil, result, weightsPath: "")
        }
        let header = GrowReport.header(from: spec, old: old, new: result.graph, scale: mode, inserted: inserted)
        let specFile = try AtomicFile(files.spec)
        try specFile.write(Array((header + Printer.print(result.spec)).utf8))
        try specFile.commit()
        let losses = TrainingState.journalLosses(in: directory)
        try state.save(to: out, model: result.graph.config.name, loss: losses.loss, heldOutLoss: losses.heldOutLoss)
        try TrainingLog(resumingFrom: directory, upTo: state.step).write(to: out)
        print(String(format: "wrote %@ and the training checkpoint %@ (step %d) in %.2f s; continue with tfc train %@ --out %@ --resume",
                     output!, out, state.step, Date().timeIntervalSince(start), output!, out))
    }

    /// A state's weights in a temporary safetensors file (uncommitted).
    func weightFile(of state: TrainingState, graph: Graph, at target: OutputTarget) throws -> AtomicFile {
        let file = try AtomicFile(target)
        var writer = SafetensorsWriter(metadata: ["tfc.model": graph.config.name])
        for p in state.parameters { writer.add(p.name, shape: p.shape, data: state.values(.weights, p.name)!) }
        try writer.write(into: file)
        return file
    }
}
