import TFNaive

/// What computes a training step's loss and gradients: the oracle (`NaiveGradient`) or the
/// generated kernels (`FusedGradient`). Both follow the same `GradGraph`.
public protocol GradientBackend: AnyObject {
    /// The mean next-token cross-entropy of `tokens` and the gradient of every weight.
    func run(_ tokens: [Int32]) -> GradientResult
    /// Equally long windows: the mean of their losses and the mean of their gradients.
    func run(batch windows: [[Int32]]) -> GradientResult
    /// The mean next-token cross-entropy alone (a forward pass).
    func loss(_ tokens: [Int32]) -> Double
    /// One AdamW step on one tensor (`AdamW.update`'s contract and bits).
    func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: [Float], scale: Double, m: UnsafeMutableBufferPointer<Float>,
               v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions)
}

extension GradientBackend {
    /// Window by window: each window's gradient, summed, then scaled by 1 / windows.
    public func run(batch windows: [[Int32]]) -> GradientResult {
        var sum: [String: [Float]] = [:]
        var loss = 0.0
        for w in windows {
            let r = run(w)
            loss += r.loss
            for (name, g) in r.gradients {
                guard sum[name] != nil else { sum[name] = g; continue }
                sum[name]!.withUnsafeMutableBufferPointer { s in for i in 0..<s.count { s[i] += g[i] } }
            }
        }
        let inverse = 1 / Float(windows.count)
        for name in Array(sum.keys) { sum[name]!.withUnsafeMutableBufferPointer { s in for i in 0..<s.count { s[i] *= inverse } } }
        return GradientResult(loss: loss / Double(windows.count), gradients: sum)
    }

    /// The host loop, for backends without an AdamW kernel.
    public func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: [Float], scale: Double, m: UnsafeMutableBufferPointer<Float>,
                      v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) {
        AdamW.update(w, gradient: gradient, scale: scale, m: m, v: v, step: step, lr: lr, decay: decay, options)
    }
}

extension NaiveGradient: GradientBackend {}

/// Which backend `tfc grad` and `tfc train` run (`--backend`).
public enum TrainingBackend: String, CaseIterable, Sendable {
    case naive, fused
}

/// A backend that cannot run a graph (a one-line message saying what and why).
public struct GradientBackendError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
