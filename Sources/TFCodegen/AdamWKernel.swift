import CLLVM

/// One AdamW step over one tensor as a generated kernel: `w -= lr·λ·w` (the `shrink` factor),
/// then `w -= lr · m̂ / (√v̂ + ε)` with bias-corrected moments, as
/// `stepSize · m / (√v · inverseRootCorrection2 + ε)` (one division and one square root per
/// element: `AdamW.stepFactors`), the gradient scaled by the global-norm clip factor. Per element
/// in double, in exactly the order of the host's `AdamW.update` (no reassociation, no fused
/// multiply-add), so both give the same bits.
///
/// ABI: `args = [w, g, m, v, coefficients]`, `T` = element count; w, m, v updated in place (float32),
/// g read; `coefficients` is 9 doubles: scale, β1, 1 − β1, β2, 1 − β2, stepSize, inverseRootCorrection2,
/// shrink, ε — see `AdamWKernel.coefficients`. The `zeroingSymbol` variant also sets each
/// gradient element to 0 once read: the fused trainer's kept gradients are then ready for the next
/// step's kernels to add into, without a separate pass zeroing them.
public enum AdamWKernel {
    public static let symbol = "tfc_adamw_step"
    public static let zeroingSymbol = "tfc_adamw_step_zeroing"

    /// The coefficient block for one step.
    public static func coefficients(scale: Double, beta1: Double, beta2: Double, stepSize: Double, inverseRootCorrection2: Double,
                                    shrink: Double, epsilon: Double) -> [Double] {
        [scale, beta1, 1 - beta1, beta2, 1 - beta2, stepSize, inverseRootCorrection2, shrink, epsilon]
    }
}

extension KernelModule {
    /// Emits the AdamW kernel (once per module) and returns its symbol; `zeroingGradient`: the
    /// variant that leaves the gradient 0.
    @discardableResult
    public func addAdamW(zeroingGradient: Bool = false) -> String {
        let symbol = zeroingGradient ? AdamWKernel.zeroingSymbol : AdamWKernel.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        defineKernel(symbol) { args, T, _ in
            let w = g.argPtr(args, 0), grad = g.argPtr(args, 1), m = g.argPtr(args, 2), v = g.argPtr(args, 3)
            let c = g.bitcast(g.argPtr(args, 4), LLVMPointerType(g.f64, 0))
            let k = (0..<9).map { g.load(g.gep(c, $0), align: 8) }
            let (scale, b1, ob1, b2, ob2, stepSize, inverseRoot, shrink, eps) = (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8])
            g.loop(0, T) { i in
                let gi = g.fmul(g.fpext(g.loadF(grad, i)), scale)
                if zeroingGradient { g.storeF(g.f32(0), grad, i) }
                let mi = g.fadd(g.fmul(b1, g.fpext(g.loadF(m, i))), g.fmul(ob1, gi))
                let vi = g.fadd(g.fmul(b2, g.fpext(g.loadF(v, i))), g.fmul(g.fmul(ob2, gi), gi))
                g.storeF(g.fptrunc(mi), m, i)
                g.storeF(g.fptrunc(vi), v, i)
                let step = g.fdiv(g.fmul(stepSize, mi), g.fadd(g.fmul(g.unary("sqrt", vi), inverseRoot), eps))
                g.storeF(g.fptrunc(g.fsub(g.fmul(g.fpext(g.loadF(w, i)), shrink), step)), w, i)
            }
        }
        return symbol
    }
}
