import CLLVM

/// Quantises activations per row on the fly for the int8 GEMMs (`Int8GemmKernelSpec`):
/// row t of `X[T, ldx]` (first `k` columns), optionally times per-depth weight scales (the values
/// GEMM folds each parameter token's scale into the activations: `Σ_k a[k]·s_k·q[k,j]`), becomes
/// codes `[T, lda]` (`lda = 4·ceil(k/4)`, padding zero) and one scale per row — the same
/// arithmetic as `Int8Quantization.quantizeRows` (`max|v| / 127`, round half to even of `v / s`,
/// a zero row gives scale 0 and zero codes).
///
/// Kernel arguments: 0 X (float), 1 depth scales (float[k], ignored unless `depthScaled`),
/// 2 codes (i8 out), 3 row scales (float[T] out).
public struct Int8ActivationQuantizerSpec: Hashable {
    public let k: Int
    public let ldx: Int
    public let depthScaled: Bool

    public init(k: Int, ldx: Int? = nil, depthScaled: Bool = false) {
        self.k = k
        self.ldx = ldx ?? k
        self.depthScaled = depthScaled
    }

    public var lda: Int { PanelLayout(k: k, n: 1, nr: 8, format: .int8).paddedK }
    public var symbol: String { "tfc_i8quant_k\(k)_x\(ldx)\(depthScaled ? "_ds" : "")" }
}

extension KernelModule {
    public func addInt8ActivationQuantizer(_ spec: Int8ActivationQuantizerSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        defineKernel(symbol) { args, T, _ in
            let X = g.argPtr(args, 0), ds = g.argPtr(args, 1), Q = g.bitcast(g.argPtr(args, 2), g.pi8), S = g.argPtr(args, 3)
            g.loop(0, T) { t in
                let row = g.gep(X, g.mul(t, spec.ldx)), out = g.gep(Q, g.mul(t, spec.lda))
                func value(_ kk: LLVMValueRef) -> LLVMValueRef {
                    let v = g.loadF(row, kk)
                    return spec.depthScaled ? g.fmul(v, g.loadF(ds, kk)) : v
                }
                let m = g.loop(g.i64(0), g.i64(spec.k), carried: [g.f32(0)]) { kk, acc in
                    [g.fmax(acc[0], g.unary("fabs", value(kk)))]
                }[0]
                let s = g.fdiv(m, g.f32(127))
                g.storeF(s, S, t)
                let positive = g.fcmp(LLVMRealOGT, s, g.f32(0))
                let safe = g.select(positive, s, g.f32(1))
                g.loop(0, g.i64(spec.k)) { kk in
                    let r = g.unary("nearbyint", g.fdiv(value(kk), safe))
                    let clamped = g.fmax(g.f32(-127), g.fmin(g.f32(127), r))
                    let code = g.select(positive, LLVMBuildFPToSI(g.builder, clamped, g.i8, "")!, LLVMConstInt(g.i8, 0, 0))
                    g.store(code, g.gep(out, kk), align: 1)
                }
                for kk in spec.k..<spec.lda { g.store(LLVMConstInt(g.i8, 0, 0), g.gep(out, kk), align: 1) }
            }
        }
        return symbol
    }
}
