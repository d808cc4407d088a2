import CLLVM

/// Quantises activations on the fly for the int8 GEMMs (`Int8GemmKernelSpec`): row t of
/// `X[T, ldx]` (first `k` columns) becomes codes `[T, lda]` (`lda = 4·ceil(k/4)`, padding zero),
/// one scale per group of 32 depth values (`[T, groups]`) and each group's code sum (`[T, groups]`
/// int32, which the VNNI kernel needs for its u8 offset) — the same arithmetic as
/// `Int8Quantization.quantizeRows` (`max|v| / 127`, round half to even of `v / s`, a zero group
/// gives scale 0 and zero codes).
///
/// Kernel arguments: 0 X (float), 1 codes (i8 out), 2 group scales (float out), 3 group code sums (i32 out).
public struct Int8ActivationQuantizerSpec: Hashable {
    public let k: Int
    public let ldx: Int

    public init(k: Int, ldx: Int? = nil) {
        self.k = k
        self.ldx = ldx ?? k
    }

    public var lda: Int { PanelLayout(k: k, n: 1, nr: 8, format: .int8).paddedK }
    public var groups: Int { Int8Quantization.groups(k) }
    public var symbol: String { "tfc_i8quant_k\(k)_x\(ldx)" }
}

extension IRGen {
    /// `void quant(const float *X, i64 rows, i8 *codes, float *groupScales, i32 *groupSums)`.
    func int8QuantizeRows(_ spec: Int8ActivationQuantizerSpec) -> IRFunction {
        let pi32 = LLVMPointerType(i32, 0)!
        return define("tfc.i8quant.k\(spec.k).x\(spec.ldx)", voidT, [pf32, i64, pi8, pf32, pi32], attributes: ["nounwind"]) { fn in
            let X = self.param(fn, 0), T = self.param(fn, 1), Q = self.param(fn, 2), S = self.param(fn, 3), sums = self.param(fn, 4)
            let gd = Int8Quantization.groupDepth
            self.loop(0, T) { t in
                let row = self.gep(X, self.mul(t, spec.ldx)), out = self.gep(Q, self.mul(t, spec.lda))
                /// One group: `count` values from column `c0`, its scale and code sum at `slot`.
                func quantizeGroup(_ group: LLVMValueRef, count: Int) {
                    let c0 = self.mul(group, gd), c1 = self.add(c0, count)
                    let m = self.loop(c0, c1, carried: [self.f32(0)]) { kk, acc in
                        [self.fmax(acc[0], self.unary("fabs", self.loadF(row, kk)))]
                    }[0]
                    let s = self.fdiv(m, self.f32(127))
                    let slot = self.add(self.mul(t, spec.groups), group)
                    self.storeF(s, S, slot)
                    let positive = self.fcmp(LLVMRealOGT, s, self.f32(0))
                    let safe = self.select(positive, s, self.f32(1))
                    let sum = self.loop(c0, c1, carried: [self.i32(0)]) { kk, acc in
                        let r = self.unary("nearbyint", self.fdiv(self.loadF(row, kk), safe))
                        let clamped = self.fmax(self.f32(-127), self.fmin(self.f32(127), r))
                        let code = self.select(positive, LLVMBuildFPToSI(self.builder, clamped, self.i8, "")!, LLVMConstInt(self.i8, 0, 0))
                        self.store(code, self.gep(out, kk), align: 1)
                        return [self.add(acc[0], LLVMBuildSExt(self.builder, code, self.i32, "")!)]
                    }[0]
                    self.store(sum, self.gep(sums, slot))
                }
                let full = spec.k / gd, tail = spec.k % gd
                self.loop(0, self.i64(full)) { group in quantizeGroup(group, count: gd) }
                if tail > 0 { quantizeGroup(self.i64(full), count: tail) }
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
        let pi32 = LLVMPointerType(g.i32, 0)!
        defineKernel(symbol) { args, T, _ in
            g.call(quantize, [g.argPtr(args, 0), T, g.bitcast(g.argPtr(args, 1), g.pi8), g.argPtr(args, 2), g.bitcast(g.argPtr(args, 3), pi32)])
        }
        return symbol
    }
}
