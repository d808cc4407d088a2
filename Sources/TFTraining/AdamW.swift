import Foundation

/// AdamW hyper-parameters (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW` semantics).
public struct AdamWOptions: Equatable, Sendable, Codable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.95
    public var epsilon: Double = 1e-8
    /// Decoupled weight decay, applied as `w -= lr · decay · w` to matrices only (not to the
    /// affine LayerNorm's weight and bias, the usual practice).
    public var weightDecay: Double = 0
    /// Gradients are scaled down so their global L2 norm is at most this (0: no clipping).
    public var clipNorm: Double = 1

    public init(beta1: Double = 0.9, beta2: Double = 0.95, epsilon: Double = 1e-8, weightDecay: Double = 0, clipNorm: Double = 1) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay; self.clipNorm = clipNorm
    }
}

/// One AdamW update, tensor by tensor, in float32 state with double arithmetic per element.
public enum AdamW {
    /// The L2 norm of all gradients together: per tensor, squares summed in double in 8 interleaved
    /// partial sums (element i into sum i mod 8, so the loop runs at vector speed instead of one
    /// dependent add per element), the partial sums then added in order.
    public static func globalNorm<C: Collection>(_ gradients: C) -> Double where C.Element == [Float] {
        var sum = 0.0
        for g in gradients { sum += squaredSum(g) }
        return sum.squareRoot()
    }

    static func squaredSum(_ g: [Float]) -> Double { g.withUnsafeBufferPointer(squaredSum) }

    static func squaredSum(_ p: UnsafeBufferPointer<Float>) -> Double {
        var lanes = SIMD8<Double>()
        let full = p.count / 8 * 8
        var i = 0
        while i < full {
            let x = SIMD8<Double>(UnsafeRawPointer(p.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self))
            lanes += x * x
            i += 8
        }
        var sum = 0.0
        for l in 0..<8 { sum += lanes[l] }
        while i < p.count { sum += Double(p[i]) * Double(p[i]); i += 1 }
        return sum
    }

    /// The factor that clips a gradient of global norm `norm` to `options.clipNorm`.
    public static func clipScale(norm: Double, _ options: AdamWOptions) -> Double {
        options.clipNorm > 0 && norm > options.clipNorm ? options.clipNorm / norm : 1
    }

    /// The bias corrections `1 − β1ᵗ`, `1 − β2ᵗ` and the decay factor `1 − lr·λ` (1 without decay).
    public static func corrections(step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) -> (Double, Double, Double) {
        (1 - Foundation.pow(options.beta1, Double(step)), 1 - Foundation.pow(options.beta2, Double(step)),
         decay ? 1 - lr * options.weightDecay : 1)
    }

    /// The per-step factors of the update: `lr / (1 − β1ᵗ)` and `1 / √(1 − β2ᵗ)`, so each element
    /// costs one division and one square root (`lr·m̂ / (√v̂ + ε)` written as
    /// `(lr / c1)·m / (√v · (1/√c2) + ε)`, PyTorch's own arrangement of the bias corrections).
    public static func stepFactors(lr: Double, correction1: Double, correction2: Double) -> (stepSize: Double, inverseRootCorrection2: Double) {
        (lr / correction1, 1 / correction2.squareRoot())
    }

    /// Updates `w` in place from gradient `g · scale`, moments `m`, `v`, at 1-based step `step`:
    /// `w -= lr·λ·w` (if `decay`), then `w -= lr · m̂ / (√v̂ + ε)` with bias-corrected moments
    /// (`stepFactors`).
    public static func update(_ w: UnsafeMutableBufferPointer<Float>, gradient g: [Float], scale: Double,
                              m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>,
                              step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) {
        g.withUnsafeBufferPointer { update(w, gradient: $0, scale: scale, m: m, v: v, step: step, lr: lr, decay: decay, options) }
    }

    /// `update` on a gradient read in place.
    public static func update(_ w: UnsafeMutableBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>, scale: Double,
                              m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>,
                              step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) {
        let b1 = options.beta1, b2 = options.beta2
        let (correction1, correction2, shrink) = corrections(step: step, lr: lr, decay: decay, options)
        let (stepSize, inverseRoot) = stepFactors(lr: lr, correction1: correction1, correction2: correction2)
        for i in 0..<w.count {
            let gi = Double(g[i]) * scale
            let mi = b1 * Double(m[i]) + (1 - b1) * gi
            let vi = b2 * Double(v[i]) + (1 - b2) * gi * gi
            m[i] = Float(mi); v[i] = Float(vi)
            w[i] = Float(Double(w[i]) * shrink - stepSize * mi / (vi.squareRoot() * inverseRoot + options.epsilon))
        }
    }
}
