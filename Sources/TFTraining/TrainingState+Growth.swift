import Foundation
import TFIR

/// What `tfc grow` needs to grow a training checkpoint: each tensor of a state (weights and both
/// moments) by name, and a new state built tensor by tensor that keeps the step and sampler state.
extension TrainingState {
    /// The three tensors a state holds per parameter.
    public enum Part: CaseIterable, Sendable { case weights, firstMoment, secondMoment }

    public func values(_ part: Part, _ name: String) -> UnsafeBufferPointer<Float>? {
        let table: [String: UnsafeMutableBufferPointer<Float>]
        switch part {
        case .weights: table = weights
        case .firstMoment: table = m
        case .secondMoment: table = v
        }
        return table[name].map { UnsafeBufferPointer($0) }
    }

    /// A state for `parameters` (a grown model's) at `old`'s step and sampler state, every tensor
    /// written by `fill`.
    public convenience init(continuing old: TrainingState, parameters: [Parameter],
                            fill: (Part, Parameter, UnsafeMutableBufferPointer<Float>) -> Void) {
        self.init(parameters: parameters, seed: old.random.state) { p, out in fill(.weights, p, out) }
        for p in parameters {
            fill(.firstMoment, p, m[p.name]!)
            fill(.secondMoment, p, v[p.name]!)
        }
        step = old.step
    }

    /// The last losses `checkpoint.json` in `directory` records (nil where absent).
    public static func journalLosses(in directory: String) -> (loss: Double?, heldOutLoss: Double?) {
        guard let journal = journal(in: directory) else { return (nil, nil) }
        return (journal.loss, journal.heldOutLoss)
    }

    /// The step `checkpoint.json` in `directory` records (nil: no readable journal yet).
    public static func journalStep(in directory: String) -> Int? { journal(in: directory)?.step }

    static func journal(in directory: String) -> Journal? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + journalName) else { return nil }
        return try? JSONDecoder().decode(Journal.self, from: data)
    }
}
