import Foundation
import TFIR
import TFWeights

/// Everything a run needs to continue bit-exactly: weights, both Adam moments, the step count and
/// the window sampler's state. Saved as `checkpoint.safetensors` (weights under their own names,
/// moments as `adam.m.NAME` / `adam.v.NAME`, step and sampler state in the metadata) next to a
/// small `checkpoint.json`; `weights.safetensors` holds the weights alone, for `tfc run`.
public final class TrainingState {
    public let parameters: [Parameter]
    public private(set) var weights: [String: UnsafeMutableBufferPointer<Float>] = [:]
    var m: [String: UnsafeMutableBufferPointer<Float>] = [:]
    var v: [String: UnsafeMutableBufferPointer<Float>] = [:]
    /// Steps completed.
    public var step = 0
    public var random: TrainingRandom

    /// Fresh moments; `initial` gives each weight's starting values.
    public init(parameters: [Parameter], seed: UInt64, initial: (Parameter, UnsafeMutableBufferPointer<Float>) -> Void) {
        self.parameters = parameters
        random = TrainingRandom(seed: seed)
        for p in parameters {
            weights[p.name] = Self.allocate(p.elementCount)
            m[p.name] = Self.allocate(p.elementCount)
            v[p.name] = Self.allocate(p.elementCount)
            initial(p, weights[p.name]!)
        }
    }

    deinit { for buffer in Array(weights.values) + Array(m.values) + Array(v.values) { buffer.deallocate() } }

    static func allocate(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        b.initialize(repeating: 0)
        return b
    }

    public func lookup(_ name: String) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(weights[name]!) }

    public static let checkpointName = "checkpoint.safetensors"
    public static let journalName = "checkpoint.json"
    public static let weightsName = "weights.safetensors"

    /// The small JSON beside the checkpoint.
    struct Journal: Codable {
        var model: String
        var step: Int
        var random: String
        var loss: Double?
        var heldOutLoss: Double?
    }

    /// Writes the three files into `directory`, each atomically (temporary file, then rename);
    /// the JSON last, so it never names a step whose tensors are not on disk.
    public func save(to directory: String, model: String, loss: Double?, heldOutLoss: Double?) throws {
        let metadata = ["tfc.model": model, "tfc.train.step": String(step), "tfc.train.random": String(random.state)]
        var state = SafetensorsWriter(metadata: metadata)
        var plain = SafetensorsWriter(metadata: ["tfc.model": model, "tfc.train.step": String(step)])
        for p in parameters {
            state.add(p.name, shape: p.shape, data: UnsafeBufferPointer(weights[p.name]!))
            state.add("adam.m." + p.name, shape: p.shape, data: UnsafeBufferPointer(m[p.name]!))
            state.add("adam.v." + p.name, shape: p.shape, data: UnsafeBufferPointer(v[p.name]!))
            plain.add(p.name, shape: p.shape, data: UnsafeBufferPointer(weights[p.name]!))
        }
        // Both tensor files pass the output policy before either is written.
        let targets = try OutputPolicy.check([(role: "--out", path: directory + "/" + Self.checkpointName),
                                              (role: "--out", path: directory + "/" + Self.weightsName)], inputs: [])
        try state.write(to: targets[0])
        try plain.write(to: targets[1])
        let journal = Journal(model: model, step: step, random: String(random.state), loss: loss, heldOutLoss: heldOutLoss)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let path = directory + "/" + Self.journalName
        let json: String
        do { json = String(decoding: try encoder.encode(journal), as: UTF8.self) } catch {
            throw TrainingError("\(path): error: cannot encode the journal: \(error)")
        }
        try TrainingFile.write(json, to: path)
    }

    /// Reads a state `save` wrote; every tensor and both moments must match `parameters`.
    public static func load(from directory: String, parameters: [Parameter]) throws -> TrainingState {
        let journalPath = directory + "/" + journalName, checkpointPath = directory + "/" + checkpointName
        guard let data = FileManager.default.contents(atPath: journalPath) else {
            throw TrainingError("\(journalPath): error: no checkpoint to resume from")
        }
        guard let journal = try? JSONDecoder().decode(Journal.self, from: data), let seed = UInt64(journal.random) else {
            throw TrainingError("\(journalPath): error: not a tfc training checkpoint journal")
        }
        let file = try WeightFile(path: checkpointPath)
        guard file.metadata["tfc.train.step"] == String(journal.step), file.metadata["tfc.train.random"] == journal.random else {
            throw TrainingError("\(checkpointPath): error: step \(file.metadata["tfc.train.step"] ?? "?") does not match \(journalName) (step \(journal.step))")
        }
        for p in parameters {
            for name in [p.name, "adam.m." + p.name, "adam.v." + p.name] {
                guard let t = file.tensor(name) else { throw TrainingError("\(checkpointPath): error: missing tensor '\(name)'") }
                guard t.shape == p.shape else {
                    throw TrainingError("\(checkpointPath): error: tensor '\(name)' has shape \(t.shape), the spec needs \(p.shape)")
                }
            }
        }
        let state = TrainingState(parameters: parameters, seed: seed) { p, out in _ = out.update(fromContentsOf: file.tensor(p.name)!.floats) }
        for p in parameters {
            _ = state.m[p.name]!.update(fromContentsOf: file.tensor("adam.m." + p.name)!.floats)
            _ = state.v[p.name]!.update(fromContentsOf: file.tensor("adam.v." + p.name)!.floats)
        }
        state.step = journal.step
        return state
    }
}
