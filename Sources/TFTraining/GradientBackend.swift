import TFNaive

/// What computes a training step's loss and gradients: the oracle (`NaiveGradient`) or the
/// generated kernels (`FusedGradient`). Both follow the same `GradGraph`.
public protocol GradientBackend: AnyObject {
    /// The mean next-token cross-entropy of `tokens` and the gradient of every weight.
    func run(_ tokens: [Int32]) -> GradientResult
    /// The mean next-token cross-entropy alone (a forward pass).
    func loss(_ tokens: [Int32]) -> Double
    /// One AdamW step on one tensor (`AdamW.update`'s contract and bits).
    func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: [Float], scale: Double, m: UnsafeMutableBufferPointer<Float>,
               v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions)
}

extension GradientBackend {
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
