import TFIR
import TFAutodiff
import TFNaive
import TFCodegen

/// What one optimiser step did.
public struct StepReport: Sendable {
    public var step: Int
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
}

/// Training: per step, `batch` windows, the mean of their gradients from the
/// backward graph, global-norm clipping, one AdamW update.
public final class Trainer {
    public let grad: GradGraph
    public let state: TrainingState
    public let data: TrainingData
    public let options: AdamWOptions
    public let schedule: LearningRate
    public let batch: Int
    public let window: Int
    let threads: Int
    /// Computes each window's gradient: the naive backend unless `backend` says otherwise.
    public let gradient: GradientBackend

    /// - Parameters:
    ///   - backend: `.fused` compiles the gradient kernels here (throws what LLVM or the fused
    ///     backend's refusal throws); `.naive` (the default) runs the oracle.
    ///   - vector: the fused kernels' vector target (AVX2 by default, see `FusedGradient`).
    ///   - notes: one-line notes of the fused backend (a damaged compiled-code cache entry rebuilt).
    public init(grad: GradGraph, state: TrainingState, data: TrainingData, options: AdamWOptions, schedule: LearningRate,
                batch: Int, window: Int, threads: Int, backend: TrainingBackend = .naive,
                vector: VectorTarget = .avx2, notes: (String) -> Void = { _ in }) throws {
        self.grad = grad; self.state = state; self.data = data; self.options = options; self.schedule = schedule
        self.batch = batch; self.window = window; self.threads = threads
        switch backend {
        case .naive: gradient = NaiveGradient(grad: grad, weights: state.lookup, threads: threads)
        case .fused: gradient = try FusedGradient(grad: grad, weights: state.lookup, threads: threads, vector: vector, notes: notes)
        }
    }

    public func step() -> StepReport {
        let windows = data.batch(batch, window: window, random: &state.random)
        let result = gradient.runForUpdate(batch: windows)
        let sum = result.gradients
        let norm = state.parameters.reduce(0.0) { total, p in total + sum.with(p.name) { AdamW.squaredSum($0) } }.squareRoot()
        let scale = AdamW.clipScale(norm: norm, options)
        state.step += 1
        let lr = schedule.at(state.step)
        for p in state.parameters {
            sum.with(p.name) { g in
                gradient.adamW(state.weights[p.name]!, gradient: g, scale: scale, m: state.m[p.name]!, v: state.v[p.name]!,
                               step: state.step, lr: lr, decay: p.shape.count > 1, options)
            }
        }
        return StepReport(step: state.step, loss: result.loss, learningRate: lr, gradientNorm: norm)
    }

    /// Mean loss over the held-out windows (forward only through the same graph).
    public func heldOutLoss() -> Double {
        let windows = data.heldOutWindows(window)
        let runner = gradient
        return windows.reduce(0.0) { $0 + runner.loss($1) } / Double(windows.count)
    }
}
