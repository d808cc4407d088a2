import CLLVM

/// Vectorised `exp`, `erf` and exact-erf `gelu` on `<width x float>`, emitted as IR (range
/// reduction + polynomial): no libm calls, so they stay in `ymm` registers.
///
/// Accuracy (checked by `VectorMathTests` over dense sweeps against Double references):
/// - `exp`: ~1 ulp on [-87.33, 88.37]; 0 below (flush), +inf above 88.3763.
/// - `erf`: absolute error ~1e-7 everywhere (|x| < 0.7: odd polynomial; beyond:
///   `1 - exp(-x²)·R(|x|)`, with R a degree-9 polynomial fitted to erfc(x)·exp(x²) on [0.7, 3.92]).
/// - `gelu(x) = 0.5·x·(1 + erf(x/√2))`, with `1 + erf(z)` computed as `erfc(|z|)` for
///   z < -0.7 (no cancellation for negative inputs).
///
/// The polynomial coefficients were fitted offline (Lawson-weighted least squares in
/// Chebyshev nodes, mpmath references) and are listed below as float literals.
enum VectorMath {
    /// Cephes expf minimax polynomial for exp(r) on [-ln2/2, ln2/2].
    static let expPoly: [Float] = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]
    static let expLo: Float = -87.33654
    static let expHi: Float = 88.3762626647949

    /// erf(x)/x = P(x²) for |x| < 0.7 (highest degree first).
    static let erfSmall: [Float] = [-6.956811994e-04, 5.139061250e-03, -2.684484608e-02, 1.128354743e-01, -3.761262894e-01, 1.128379226e+00]
    static let erfSplit: Float = 0.7
    /// erfc(x)·exp(x²) = R(x - 2.31) on [0.7, 3.92] (highest degree first).
    static let erfcLarge: [Float] = [-5.893729394e-05, -1.525321568e-04, -2.957292309e-04, 3.305072314e-04, -7.882701466e-04,
                                     3.458393039e-03, -1.016741432e-02, 3.005959839e-02, -8.477035165e-02, 2.258908302e-01]
    static let erfcCenter: Float = 2.31
    static let erfClamp: Float = 3.92
}

extension IRGen {
    func horner(_ coeffs: [Float], _ x: LLVMValueRef) -> LLVMValueRef {
        var r = vsplat(coeffs[0])
        for c in coeffs.dropFirst() { r = fma(r, x, vsplat(c)) }
        return r
    }

    /// `exp(x)` lane-wise on `<width x float>`.
    func vexp(_ x: LLVMValueRef) -> LLVMValueRef {
        let f = define("tfc.vexp", vf, [vf], attributes: ["alwaysinline", "nounwind", "readnone"]) { fn in
            let x = self.param(fn, 0)
            ret(self.vexpBody(x))
        }
        return call(f, [x])
    }

    private func vexpBody(_ x0: LLVMValueRef) -> LLVMValueRef {
        let lo = vsplat(VectorMath.expLo), hi = vsplat(VectorMath.expHi)
        let x = fmin(fmax(x0, lo), hi)
        let n = unary("rint", fmul(x, vsplat(1.44269504088896341)))
        var r = fma(n, vsplat(-0.693359375), x)
        r = fma(n, vsplat(2.12194440e-4), r)
        let z = fmul(r, r)
        var y = horner(VectorMath.expPoly, r)
        y = fma(y, z, r)
        y = fadd(y, vsplat(1))
        let ni = LLVMBuildFPToSI(builder, n, vi32, "")!
        let bits = LLVMBuildShl(builder, add32v(ni, 127), vsplatI32(23), "")!
        let scale = bitcast(bits, vf)
        var res = fmul(y, scale)
        res = select(fcmp(LLVMRealOLT, x0, lo), vzero, res)
        res = select(fcmp(LLVMRealOGT, x0, hi), vsplat(Float.infinity), res)
        return res
    }

    private func add32v(_ v: LLVMValueRef, _ k: Int32) -> LLVMValueRef { LLVMBuildAdd(builder, v, vsplatI32(k), "")! }

    /// The two halves of erf: (small-branch value x·P(x²), erfc(|x|) from the large branch,
    /// is-small mask).
    private func erfParts(_ x: LLVMValueRef) -> (small: LLVMValueRef, erfcAbs: LLVMValueRef, isSmall: LLVMValueRef) {
        let ax = unary("fabs", x)
        let u = fmul(x, x)
        let small = fmul(x, horner(VectorMath.erfSmall, u))
        let t = fsub(fmin(ax, vsplat(VectorMath.erfClamp)), vsplat(VectorMath.erfcCenter))
        let r = horner(VectorMath.erfcLarge, t)
        let e = vexp(fneg(u))
        let erfc = fmul(e, r)
        return (small, erfc, fcmp(LLVMRealOLT, ax, vsplat(VectorMath.erfSplit)))
    }

    /// `erf(x)` lane-wise on `<width x float>`.
    func verf(_ x: LLVMValueRef) -> LLVMValueRef {
        let f = define("tfc.verf", vf, [vf], attributes: ["alwaysinline", "nounwind", "readnone"]) { fn in
            let x = self.param(fn, 0)
            let p = self.erfParts(x)
            let large = self.call(self.declare("llvm.copysign.\(self.vfName)", self.vf, [self.vf, self.vf]),
                                  [self.fsub(self.vsplat(1), p.erfcAbs), x])
            self.ret(self.select(p.isSmall, p.small, large))
        }
        return call(f, [x])
    }

    /// `gelu(x) = 0.5·x·(1 + erf(x/√2))` lane-wise on `<width x float>`.
    func vgelu(_ x: LLVMValueRef) -> LLVMValueRef {
        let f = define("tfc.vgelu", vf, [vf], attributes: ["alwaysinline", "nounwind", "readnone"]) { fn in
            let x = self.param(fn, 0)
            let z = self.fmul(x, self.vsplat(0.70710678118654752))
            let p = self.erfParts(z)
            // 1 + erf(z): small z directly; z <= -0.7: erfc(|z|); z >= 0.7: 2 - erfc(z).
            let onePlusLarge = self.select(self.fcmp(LLVMRealOLT, z, self.vzero), p.erfcAbs, self.fsub(self.vsplat(2), p.erfcAbs))
            let onePlus = self.select(p.isSmall, self.fadd(self.vsplat(1), p.small), onePlusLarge)
            self.ret(self.fmul(self.fmul(x, self.vsplat(0.5)), onePlus))
        }
        return call(f, [x])
    }
}

/// A probe for testing vector math: `void name(args = [in, out], T = count)` applies the
/// function to `count` floats (any count; the tail is masked).
public enum VectorMathFunction: String, CaseIterable, Sendable {
    case exp, erf, gelu
}

extension KernelModule {
    /// Adds `name(args = [const float *in, float *out], T = count, p0 ignored)` computing
    /// `fn` elementwise with the vectorised implementation.
    @discardableResult
    public func addVectorMathProbe(_ fn: VectorMathFunction, name: String? = nil) -> String {
        let symbol = name ?? "tfc_probe_\(fn.rawValue)"
        let g = gen
        defineKernel(symbol) { args, count, _ in
            let input = g.bitcast(g.load(g.gep(args, 0), align: 8), g.pf32)
            let output = g.bitcast(g.load(g.gep(args, 1), align: 8), g.pf32)
            g.loop(0, count, step: g.width) { i in
                let mask = g.laneMask(g.sub(count, i))
                let x = g.maskedLoadV(input, i, mask)
                let y: LLVMValueRef
                switch fn {
                case .exp: y = g.vexp(x)
                case .erf: y = g.verf(x)
                case .gelu: y = g.vgelu(x)
                }
                g.maskedStoreV(y, output, i, mask)
            }
        }
        return symbol
    }
}
