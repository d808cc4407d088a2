import TFNaive
import TFCodegen

/// What computes a training step's loss and gradients: the oracle (`NaiveGradient`) or the
/// generated kernels (`FusedGradient`). Both follow the same `GradGraph`.
public protocol GradientBackend: AnyObject {
    /// The mean next-token cross-entropy of `tokens` and the gradient of every weight.
    func run(_ tokens: [Int32]) -> GradientResult
    /// Equally long windows: the mean of their losses and the mean of their gradients.
    func run(batch windows: [[Int32]]) -> GradientResult
    /// `run(batch:)` for one optimiser update: the gradients where the backend keeps them (the
    /// fused backend's own buffers, valid until its next run: no copy out), else its arrays.
    func runForUpdate(batch windows: [[Int32]]) -> (loss: Double, gradients: StepGradients)
    /// The mean next-token cross-entropy alone (a forward pass).
    func loss(_ tokens: [Int32]) -> Double
    /// One AdamW step on one tensor (`AdamW.update`'s contract and bits).
    func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, scale: Double, m: UnsafeMutableBufferPointer<Float>,
               v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions)
}

/// A step's gradients by tensor name, read in place.
public enum StepGradients {
    case arrays([String: [Float]])
    case buffers([String: AlignedBuffer])

    /// `body` on tensor `name`'s gradient.
    public func with<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        switch self {
        case .arrays(let a): return a[name]!.withUnsafeBufferPointer(body)
        case .buffers(let b): let g = b[name]!; return body(UnsafeBufferPointer(start: g.pointer, count: g.count))
        }
    }
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

    public func runForUpdate(batch windows: [[Int32]]) -> (loss: Double, gradients: StepGradients) {
        let r = run(batch: windows)
        return (r.loss, .arrays(r.gradients))
    }

    /// `adamW` on an array.
    public func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: [Float], scale: Double, m: UnsafeMutableBufferPointer<Float>,
                      v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) {
        gradient.withUnsafeBufferPointer { adamW(w, gradient: $0, scale: scale, m: m, v: v, step: step, lr: lr, decay: decay, options) }
    }

    /// The host loop, for backends without an AdamW kernel.
    public func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, scale: Double, m: UnsafeMutableBufferPointer<Float>,
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
