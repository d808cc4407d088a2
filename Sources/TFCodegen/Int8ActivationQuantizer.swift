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

extension IRGen {
    /// `void quant(const float *X, i64 rows, const float *depthScales, i8 *codes, float *rowScales)`.
    func int8QuantizeRows(_ spec: Int8ActivationQuantizerSpec) -> IRFunction {
        define("tfc.i8quant.k\(spec.k).x\(spec.ldx)\(spec.depthScaled ? ".ds" : "")", voidT, [pf32, i64, pf32, pi8, pf32], attributes: ["nounwind"]) { fn in
            let X = self.param(fn, 0), T = self.param(fn, 1), ds = self.param(fn, 2), Q = self.param(fn, 3), S = self.param(fn, 4)
            self.loop(0, T) { t in
                let row = self.gep(X, self.mul(t, spec.ldx)), out = self.gep(Q, self.mul(t, spec.lda))
                func value(_ kk: LLVMValueRef) -> LLVMValueRef {
                    let v = self.loadF(row, kk)
                    return spec.depthScaled ? self.fmul(v, self.loadF(ds, kk)) : v
                }
                let m = self.loop(self.i64(0), self.i64(spec.k), carried: [self.f32(0)]) { kk, acc in
                    [self.fmax(acc[0], self.unary("fabs", value(kk)))]
                }[0]
                let s = self.fdiv(m, self.f32(127))
                self.storeF(s, S, t)
                let positive = self.fcmp(LLVMRealOGT, s, self.f32(0))
                let safe = self.select(positive, s, self.f32(1))
                self.loop(0, self.i64(spec.k)) { kk in
                    let r = self.unary("nearbyint", self.fdiv(value(kk), safe))
                    let clamped = self.fmax(self.f32(-127), self.fmin(self.f32(127), r))
                    let code = self.select(positive, LLVMBuildFPToSI(self.builder, clamped, self.i8, "")!, LLVMConstInt(self.i8, 0, 0))
                    self.store(code, self.gep(out, kk), align: 1)
                }
                for kk in spec.k..<spec.lda { self.store(LLVMConstInt(self.i8, 0, 0), self.gep(out, kk), align: 1) }
            }
            self.retVoid()
        }
    }
}

extension KernelModule {
    public func addInt8ActivationQuantizer(_ spec: Int8ActivationQuantizerSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let quantize = g.int8QuantizeRows(spec)
        defineKernel(symbol) { args, T, _ in
            g.call(quantize, [g.argPtr(args, 0), T, g.argPtr(args, 1), g.bitcast(g.argPtr(args, 2), g.pi8), g.argPtr(args, 3)])
        }
        return symbol
    }
}
