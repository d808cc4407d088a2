import CLLVM

/// A vectorised LayerNorm over rows: `Y[t] = (X[t] - mean) / sqrt(var + eps)` (biased
/// variance), optionally `· gamma + beta`. Rows are split across threads.
/// (Inside Pattention kernels LayerNorm is fused as a prologue; this kernel is the
/// stand-alone op, e.g. an affine final norm whose output is needed.)
///
/// ABI: `args = [X, Y]`, plus `[gamma, beta]` when `affine`; `T` rows of `d` floats
/// (row strides `ldx`, `ldy`). Y may equal X (in place).
public struct LayerNormKernelSpec: Hashable, Sendable, CustomStringConvertible {
    public var d: Int
    public var eps: Float
    public var affine: Bool
    public var ldx: Int
    public var ldy: Int

    public init(d: Int, eps: Float = 1e-5, affine: Bool = false, ldx: Int? = nil, ldy: Int? = nil) {
        precondition(d > 0)
        self.d = d
        self.eps = eps
        self.affine = affine
        self.ldx = ldx ?? d
        self.ldy = ldy ?? d
    }

    public var description: String { "layernorm d=\(d) eps=\(eps)\(affine ? " affine" : "") ldx=\(ldx) ldy=\(ldy)" }
    public var symbol: String { "tfc_layernorm_" + stableHash(description) }
}

extension KernelModule {
    @discardableResult
    public func addLayerNorm(_ spec: LayerNormKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let d = spec.d, w = g.width
        let full = d / w * w, tail = d - full
        let rowsPerTask = max(1, 16384 / d)
        // ctx: 0 X, 1 Y, 2 gamma, 3 beta, 4 T
        let task = g.task(symbol + ".rows") { ctx, i in
            let X = g.contextPtr(ctx, 0), Y = g.contextPtr(ctx, 1), gamma = g.contextPtr(ctx, 2), beta = g.contextPtr(ctx, 3)
            let T = g.contextInt(ctx, 4)
            let r0 = g.mul(i, rowsPerTask)
            let r1 = g.smin(T, g.add(r0, rowsPerTask))
            g.loop(r0, r1) { r in
                let x = g.gep(X, g.mul(r, spec.ldx)), y = g.gep(Y, g.mul(r, spec.ldy))
                let (mean, rstd) = g.rowMoments(x, k: d, eps: spec.eps)
                func normalize(_ c: LLVMValueRef, _ mask: LLVMValueRef?) {
                    let v = mask.map { g.maskedLoadV(x, c, $0) } ?? g.loadV(x, c)
                    var out = g.fmul(g.fsub(v, mean), rstd)
                    if spec.affine {
                        let gm = mask.map { g.maskedLoadV(gamma, c, $0) } ?? g.loadV(gamma, c)
                        let bt = mask.map { g.maskedLoadV(beta, c, $0) } ?? g.loadV(beta, c)
                        out = g.fma(out, gm, bt)
                    }
                    if let mask { g.maskedStoreV(out, y, c, mask) } else { g.storeV(out, y, c) }
                }
                g.loop(0, g.i64(full), step: w) { c in normalize(c, nil) }
                if tail > 0 { normalize(g.i64(full), g.laneMask(tail)) }
            }
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let gamma = spec.affine ? g.argPtr(args, 2) : g.null(g.pf32)
                let beta = spec.affine ? g.argPtr(args, 3) : g.null(g.pf32)
                let ctx = g.makeContext([g.argPtr(args, 0), g.argPtr(args, 1), gamma, beta, T])
                g.parallelFor(task, ctx, g.ceilDiv(T, rowsPerTask))
            }
        }
        return symbol
    }
}
