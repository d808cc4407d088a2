import CLLVM

/// The training loss and its seed: for logits `[T, vocab]` and token ids, row t < T−1 gets
/// `loss_t = logsumexp(x_t) − x_t[tokens[t+1]]` and `dx_t = (softmax(x_t) − onehot(tokens[t+1])) / (T−1)`;
/// the last row predicts nothing (zero gradient, zero loss). The caller sums the row losses.
///
/// ABI: `args = [logits, tokens (int32), dLogits, losses [T]]`, `T` rows (at least 2); `p0` ignored.
extension KernelModule {
    @discardableResult
    public func addCrossEntropy(vocab: Int) -> String {
        let symbol = "tfc_cross_entropy_v\(vocab)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let full = vocab / g.width * g.width, tail = vocab - full
        defineKernel(symbol) { args, T, _ in
            let X = g.argPtr(args, 0), D = g.argPtr(args, 2), losses = g.argPtr(args, 3)
            let tokens = g.bitcast(g.load(g.gep(args, 1), align: 8), LLVMPointerType(g.i32, 0))
            let tailMask = g.laneMask(tail), fullEnd = g.i64(full)
            let scale = g.fdiv(g.f32(1), g.sitofp(g.sub(T, g.i64(1)), g.f32))
            g.loop(0, g.sub(T, g.i64(1))) { t in
                let x = g.gep(X, g.mul(t, vocab)), d = g.gep(D, g.mul(t, vocab))
                let negInf = g.vsplat(-Float.infinity)
                var mx = g.loop(g.i64(0), fullEnd, step: g.width, carried: [negInf]) { c, a in [g.fmax(a[0], g.loadV(x, c))] }[0]
                if tail > 0 { mx = g.fmax(mx, g.select(tailMask, g.maskedLoadV(x, fullEnd, tailMask), negInf)) }
                let m = g.splat(g.hmax(mx))
                var sum = g.loop(g.i64(0), fullEnd, step: g.width, carried: [g.vzero]) { c, a in [g.fadd(a[0], g.vexp(g.fsub(g.loadV(x, c), m)))] }[0]
                if tail > 0 { sum = g.fadd(sum, g.select(tailMask, g.vexp(g.fsub(g.maskedLoadV(x, fullEnd, tailMask), m)), g.vzero)) }
                let total = g.hsum(sum)
                let target = g.sext64(g.load(g.gep(tokens, g.add(t, g.i64(1)))))
                let lse = g.fadd(g.extract(m, 0), g.unary("log", total))
                g.storeF(g.fsub(lse, g.loadF(x, target)), losses, t)
                let k = g.splat(g.fdiv(scale, total))
                g.loop(0, fullEnd, step: g.width) { c in g.storeV(g.fmul(g.vexp(g.fsub(g.loadV(x, c), m)), k), d, c) }
                if tail > 0 { g.maskedStoreV(g.fmul(g.vexp(g.fsub(g.maskedLoadV(x, fullEnd, tailMask), m)), k), d, fullEnd, tailMask) }
                g.storeF(g.fsub(g.loadF(d, target), scale), d, target)
            }
            let last = g.gep(D, g.mul(g.sub(T, g.i64(1)), vocab))
            g.loop(0, g.i64(vocab)) { c in g.storeF(g.f32(0), last, c) }
            g.storeF(g.f32(0), losses, g.sub(T, g.i64(1)))
        }
        return symbol
    }
}
