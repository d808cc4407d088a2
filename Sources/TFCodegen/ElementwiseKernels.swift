import CLLVM

/// The small kernels a whole-model program needs besides Pattention, attention, LayerNorm and
/// the logits GEMM: the embedding gather, a residual add the fusion passes could not absorb,
/// and a stand-alone rotary. They are bandwidth-bound and single-threaded; specialised on
/// their widths and strides like every other kernel.
extension KernelModule {
    /// `Y[t] = table[tokens[t]]`. ABI: `args = [tokens (int32), table [vocab, d], Y [T, ldy]]`.
    /// With `bf16Table` the table holds bf16 (16-bit, row-major as stored) and rows are widened
    /// to float as they are copied (`x << 16` is exact).
    @discardableResult
    public func addEmbedding(d: Int, ldy: Int, bf16Table: Bool = false) -> String {
        let symbol = "tfc_embedding\(bf16Table ? "_bf16" : "")_d\(d)_ldy\(ldy)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        defineKernel(symbol) { args, T, _ in
            let tokens = g.bitcast(g.load(g.gep(args, 0), align: 8), LLVMPointerType(g.i32, 0))
            let Y = g.argPtr(args, 2)
            let table = bf16Table ? g.bitcast(g.load(g.gep(args, 1), align: 8), g.pi16) : g.argPtr(args, 1)
            g.loop(0, T) { r in
                let row = g.gep(table, g.mul(g.sext64(g.load(g.gep(tokens, r))), d)), y = g.gep(Y, g.mul(r, ldy))
                if bf16Table { g.widenBF16Row(from: row, to: y, count: d) } else { g.copyRow(from: row, to: y, count: d) }
            }
        }
        return symbol
    }

    /// `Y[t] = column tokens[t] of the bf16 logits panels` (`PanelLayout.packTransposedBF16` of the
    /// embedding, the tied head's weight): a tied bf16 model stores its table once, as the head's
    /// panels, and the lookup widens the token's bf16 pairs (`x << 16`, exact) as it gathers them.
    /// ABI: `args = [tokens (int32), panels, Y [T, ldy]]`.
    @discardableResult
    public func addBF16PanelEmbedding(table layout: PanelLayout, ldy: Int) -> String {
        precondition(layout.format == .bf16)
        let symbol = "tfc_embedding_bf16panels_k\(layout.k)_n\(layout.n)_r\(layout.nr)_y\(ldy)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let pi32 = LLVMPointerType(g.i32, 0)!
        defineKernel(symbol) { args, T, _ in
            let tokens = g.bitcast(g.load(g.gep(args, 0), align: 8), pi32)
            let panels = g.bitcast(g.load(g.gep(args, 1), align: 8), pi32)   // one i32 = one bf16 pair
            let Y = g.argPtr(args, 2)
            g.loop(0, T) { t in
                let j = g.sext64(g.load(g.gep(tokens, t)))
                // Column j: panel j / nr, lane j % nr; pair q of the depth at q·nr within the panel.
                let panel = g.sdiv(j, g.i64(layout.nr)), lane = LLVMBuildSRem(g.builder, j, g.i64(layout.nr), "")!
                let column = g.gep(panels, g.add(g.mul(panel, layout.nr * layout.paddedK / 2), lane))
                let y = g.gep(Y, g.mul(t, ldy))
                let pairs = layout.k / 2
                g.loop(0, g.i64(pairs)) { q in
                    let pair = g.load(g.gep(column, g.mul(q, layout.nr)))
                    let low = LLVMBuildShl(g.builder, pair, g.i32(16), "")!
                    let high = LLVMBuildAnd(g.builder, pair, g.i32(Int(Int32(bitPattern: 0xffff_0000))), "")!
                    let kk = g.mul(q, 2)
                    g.storeF(g.bitcast(low, g.f32), y, kk)
                    g.storeF(g.bitcast(high, g.f32), y, g.add(kk, 1))
                }
                if layout.k % 2 == 1 {
                    let pair = g.load(g.gep(column, pairs * layout.nr))
                    g.storeF(g.bitcast(LLVMBuildShl(g.builder, pair, g.i32(16), "")!, g.f32), y, layout.k - 1)
                }
            }
        }
        return symbol
    }

    /// `Y = A + B`, row by row. ABI: `args = [A [T, lda], B [T, ldb], Y [T, ldy]]`; Y may be A or B.
    @discardableResult
    public func addAdd(d: Int, lda: Int, ldb: Int, ldy: Int) -> String {
        let symbol = "tfc_add_d\(d)_\(lda)_\(ldb)_\(ldy)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let w = g.width, full = d / w * w, tail = d - full
        defineKernel(symbol) { args, T, _ in
            let A = g.argPtr(args, 0), B = g.argPtr(args, 1), Y = g.argPtr(args, 2)
            g.loop(0, T) { r in
                let a = g.gep(A, g.mul(r, lda)), b = g.gep(B, g.mul(r, ldb)), y = g.gep(Y, g.mul(r, ldy))
                g.loop(0, g.i64(full), step: w) { c in g.storeV(g.fadd(g.loadV(a, c), g.loadV(b, c)), y, c) }
                if tail > 0 {
                    let m = g.laneMask(tail), c = g.i64(full)
                    g.maskedStoreV(g.fadd(g.maskedLoadV(a, c, m), g.maskedLoadV(b, c, m)), y, c, m)
                }
            }
        }
        return symbol
    }

    /// `Y = X` with other row strides. ABI: `args = [X [T, ldx], Y [T, ldy]]`.
    @discardableResult
    public func addCopy(d: Int, ldx: Int, ldy: Int) -> String {
        let symbol = "tfc_copy_d\(d)_\(ldx)_\(ldy)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        defineKernel(symbol) { args, T, _ in
            let X = g.argPtr(args, 0), Y = g.argPtr(args, 1)
            g.loop(0, T) { r in g.copyRow(from: g.gep(X, g.mul(r, ldx)), to: g.gep(Y, g.mul(r, ldy)), count: d) }
        }
        return symbol
    }

    /// `Y = rotary(X)` at positions `p0 ..< p0 + T`. ABI: `args = [X [T, ldx], Y [T, ldy]]`.
    @discardableResult
    public func addRotary(_ rotary: RotaryEmbedding, ldx: Int, ldy: Int) -> String {
        let symbol = "tfc_rotary_" + stableHash("\(rotary) \(ldx) \(ldy)")
        if hasKernel(symbol) { return symbol }
        let g = gen
        let d = rotary.heads * rotary.headDim
        let rope = g.rotaryEpilogue(rotary, ld: ldy)
        defineKernel(symbol) { args, T, p0 in
            let X = g.argPtr(args, 0), Y = g.argPtr(args, 1)
            g.loop(0, T) { r in g.copyRow(from: g.gep(X, g.mul(r, ldx)), to: g.gep(Y, g.mul(r, ldy)), count: d) }
            _ = g.call(rope, [Y, T, p0])
        }
        return symbol
    }
}

extension IRGen {
    /// Copies `count` floats (vectors, then a masked tail).
    func copyRow(from src: LLVMValueRef, to dst: LLVMValueRef, count: Int) {
        let full = count / width * width, tail = count - full
        loop(0, i64(full), step: width) { c in storeV(loadV(src, c), dst, c) }
        if tail > 0 {
            let m = laneMask(tail), c = i64(full)
            maskedStoreV(maskedLoadV(src, c, m), dst, c, m)
        }
    }

    /// Copies `count` bf16 values (`src` is `i16*`) into floats at `dst`: vectors of `width`
    /// (zero-extend, shift into the high half, reinterpret), then the tail one by one.
    func widenBF16Row(from src: LLVMValueRef, to dst: LLVMValueRef, count: Int) {
        let full = count / width * width
        loop(0, i64(full), step: width) { c in storeV(loadBF16Vector(src, c), dst, c) }
        for c in full..<count { storeF(loadBF16Scalar(gep(src, c)), dst, c) }
    }
}
