import Foundation
import TFTraining

/// One run's held-out loss against its cumulative training FLOPs, with the two readings the
/// table needs: the compute at which it first reaches a loss, and its loss at a given compute,
/// both by linear interpolation between the evaluated points.
public struct ComputeCurve: Equatable, Sendable {
    public var steps: [Int]
    public var flops: [Double]
    public var valLoss: [Double]

    public init(steps: [Int], flops: [Double], valLoss: [Double]) {
        self.steps = steps; self.flops = flops; self.valLoss = valLoss
    }

    /// The held-out rows of a training log, each placed at the plan's FLOPs of its step.
    public init(log: TrainingLog, flopsAtStep: (Int) -> Double) {
        let rows = log.rows.filter { $0.heldOutLoss != nil }
        self.init(steps: rows.map(\.step), flops: rows.map { flopsAtStep($0.step) }, valLoss: rows.map { $0.heldOutLoss! })
    }

    /// The least compute at which the curve is at or below `loss`: the first evaluated point that
    /// is, or the interpolated crossing between it and the point before; nil if it never gets there.
    public func flopsToReach(_ loss: Double) -> Double? {
        guard let i = valLoss.firstIndex(where: { $0 <= loss }) else { return nil }
        if i == 0 { return flops[0] }
        let (f0, l0, f1, l1) = (flops[i - 1], valLoss[i - 1], flops[i], valLoss[i])
        return f0 + (l0 - loss) / (l0 - l1) * (f1 - f0)
    }

    /// The loss at compute `f`, interpolated between the evaluated points around it; nil outside
    /// the evaluated range.
    public func loss(atFlops f: Double) -> Double? {
        guard let first = flops.first, let last = flops.last, f >= first, f <= last else { return nil }
        guard let i = flops.firstIndex(where: { $0 >= f }) else { return nil }
        if flops[i] == f || i == 0 { return valLoss[i] }
        let t = (f - flops[i - 1]) / (flops[i] - flops[i - 1])
        return valLoss[i - 1] + t * (valLoss[i] - valLoss[i - 1])
    }
}
