import CLLVM

/// The backward of a row-wise LayerNorm (biased variance), optionally affine, recomputing each
/// row's mean, 1/σ and x̂ from the saved input: with `g = dy ⊙ w` (or dy),
/// `dx += (g − mean(g) − x̂·mean(g·x̂)) / σ`, and when affine `dw += Σ_rows dy·x̂`, `db += Σ_rows dy`.
/// Rows run one after another (they all add into dw and db).
///
/// ABI: `args = [X [T, d], dY [T, d], dX [T, d] (+=)]`, plus `[w, dw (+=), db (+=)]` when `affine`; `T` rows.
extension KernelModule {
    @discardableResult
    public func addLayerNormBackward(d: Int, eps: Float, affine: Bool) -> String {
        let symbol = "tfc_layernorm_bwd_d\(d)_e\(eps.bitPattern)\(affine ? "_affine" : "")"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let full = d / g.width * g.width, tail = d - full
        defineKernel(symbol) { args, T, _ in
            let X = g.argPtr(args, 0), dY = g.argPtr(args, 1), dX = g.argPtr(args, 2)
            let w = affine ? g.argPtr(args, 3) : nil, dw = affine ? g.argPtr(args, 4) : nil, db = affine ? g.argPtr(args, 5) : nil
            let tailMask = g.laneMask(tail)
            /// Calls `body(offset, mask)` for every vector of a row (the tail with its mask).
            func columns(_ body: (LLVMValueRef, LLVMValueRef?) -> Void) {
                g.loop(0, g.i64(full), step: g.width) { c in body(c, nil) }
                if tail > 0 { body(g.i64(full), tailMask) }
            }
            func load(_ p: LLVMValueRef, _ c: LLVMValueRef, _ mask: LLVMValueRef?) -> LLVMValueRef {
                mask.map { g.maskedLoadV(p, c, $0) } ?? g.loadV(p, c)
            }
            func store(_ v: LLVMValueRef, _ p: LLVMValueRef, _ c: LLVMValueRef, _ mask: LLVMValueRef?) {
                if let mask { g.maskedStoreV(v, p, c, mask) } else { g.storeV(v, p, c) }
            }
            let sums = g.alloca(g.vf, count: 2)
            g.loop(0, T) { r in
                let x = g.gep(X, g.mul(r, d)), dy = g.gep(dY, g.mul(r, d)), dx = g.gep(dX, g.mul(r, d))
                let (mean, rstd) = g.rowMoments(x, k: d, eps: eps)
                g.store(g.vzero, g.gep(sums, 0), align: 32)
                g.store(g.vzero, g.gep(sums, 1), align: 32)
                columns { c, mask in
                    let xhat = g.fmul(g.fsub(load(x, c, mask), mean), rstd)
                    let gy = load(dy, c, mask)
                    var gg = gy
                    if let w, let dw, let db {
                        gg = g.fmul(gy, load(w, c, mask))
                        store(g.fma(gy, xhat, load(dw, c, mask)), dw, c, mask)
                        store(g.fadd(gy, load(db, c, mask)), db, c, mask)
                    }
                    if let mask { gg = g.select(mask, gg, g.vzero) }
                    g.store(g.fadd(g.load(g.gep(sums, 0), align: 32), gg), g.gep(sums, 0), align: 32)
                    g.store(g.fma(gg, xhat, g.load(g.gep(sums, 1), align: 32)), g.gep(sums, 1), align: 32)
                }
                let inverseD = g.f32(1 / Float(d))
                let meanG = g.splat(g.fmul(g.hsum(g.load(g.gep(sums, 0), align: 32)), inverseD))
                let meanGX = g.splat(g.fmul(g.hsum(g.load(g.gep(sums, 1), align: 32)), inverseD))
                columns { c, mask in
                    let xhat = g.fmul(g.fsub(load(x, c, mask), mean), rstd)
                    var gg = load(dy, c, mask)
                    if let w { gg = g.fmul(gg, load(w, c, mask)) }
                    let v = g.fmul(rstd, g.fsub(g.fsub(gg, meanG), g.fmul(xhat, meanGX)))
                    store(g.fadd(load(dx, c, mask), v), dx, c, mask)
                }
            }
        }
        return symbol
    }
}
