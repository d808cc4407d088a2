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
        // Elements in chunks of `chunk`, one parallel task each (a tensor of one chunk runs on
        // the calling thread). Element-wise, so the chunking never changes a bit.
        let chunk = 16_384
        // ctx: 0 w, 1 g, 2 m, 3 v, 4 coefficients, 5 T
        let task = g.task(symbol + ".chunk") { ctx, index in
            let w = g.contextPtr(ctx, 0), grad = g.contextPtr(ctx, 1), m = g.contextPtr(ctx, 2), v = g.contextPtr(ctx, 3)
            let c = g.intToPtr(g.contextInt(ctx, 4), LLVMPointerType(g.f64, 0))
            let k = (0..<9).map { g.load(g.gep(c, $0), align: 8) }
            let (scale, b1, ob1, b2, ob2, stepSize, inverseRoot, shrink, eps) = (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8])
            let i0 = g.mul(index, chunk), i1 = g.smin(g.contextInt(ctx, 5), g.add(i0, chunk))
            g.loop(i0, i1) { i in
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
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let ctx = g.makeContext((0..<5).map { g.argPtr(args, $0) } + [T])
                g.parallelFor(task, ctx, g.ceilDiv(T, chunk))
            }
        }
        return symbol
    }
}
