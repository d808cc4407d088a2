import CLLVM

/// IR building blocks of the bf16 micro-kernels (`MicroKernelKind.bf16WidenFMA`,
/// `.bf16DotBF16`). Panels hold k pairs as one 32-bit lane per column (`BF16Packing.swift`), so a
/// panel row of pairs is addressed in 32-bit units exactly like an f32 panel row.
extension IRGen {
    var pvi32: LLVMTypeRef { LLVMPointerType(vi32, 0)! }
    var i16: LLVMTypeRef { LLVMInt16TypeInContext(context)! }
    /// `i16*`: how bf16 data (a KV cache, panels, scales) is addressed element by element.
    var pi16: LLVMTypeRef { LLVMPointerType(i16, 0)! }

    /// `<width x i32>` at `p + offset` 32-bit units (`p` is a float pointer).
    func loadI32V(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef {
        load(bitcast(gep(p, offset), pvi32))
    }

    /// The 32-bit word at `p + offset` (a bf16 pair) splatted to every lane.
    func broadcastI32(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef {
        let word = load(bitcast(gep(p, offset), LLVMPointerType(i32, 0)!))
        let v = LLVMBuildInsertElement(builder, LLVMGetUndef(vi32), word, i32(0), "")!
        return shuffle(v, LLVMGetUndef(vi32)!, [Int](repeating: 0, count: width))
    }

    /// The even-k element of each bf16 pair as fp32: the low half moved up (`x << 16`).
    func widenEvenBF16(_ pairs: LLVMValueRef) -> LLVMValueRef {
        bitcast(LLVMBuildShl(builder, pairs, vsplatI32(16), "")!, vf)
    }

    /// The odd-k element of each bf16 pair as fp32: the high half kept (`x & 0xffff0000`).
    func widenOddBF16(_ pairs: LLVMValueRef) -> LLVMValueRef {
        bitcast(LLVMBuildAnd(builder, pairs, vsplatI32(Int32(bitPattern: 0xffff_0000)), "")!, vf)
    }

    /// bf16 lanes (`<width x i16>`) as fp32: zero-extend and move into the high half.
    func widenBF16(_ halves: LLVMValueRef) -> LLVMValueRef {
        let wide = LLVMBuildZExt(builder, halves, vi32, "")!
        return bitcast(LLVMBuildShl(builder, wide, vsplatI32(16), "")!, vf)
    }

    /// `width` consecutive bf16 values at `p + offset` (`p` is `i16*`) as fp32 lanes.
    func loadBF16Vector(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef {
        let vi16 = LLVMVectorType(i16, UInt32(width))!
        return widenBF16(load(bitcast(gep(p, offset), LLVMPointerType(vi16, 0)!), align: 2))
    }

    /// The bf16 value at `p` (`i16*`) as an fp32 scalar.
    func loadBF16Scalar(_ p: LLVMValueRef) -> LLVMValueRef {
        bitcast(LLVMBuildShl(builder, LLVMBuildZExt(builder, load(p, align: 2), i32, "")!, i32(16), "")!, f32)
    }

    /// `acc + Σ a.pair · b.pair` per lane (`vdpbf16ps`, AVX512_BF16; 16 lanes).
    func dotBF16(_ acc: LLVMValueRef, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef {
        precondition(width == 16, "vdpbf16ps kernels are 512-bit")
        let f = declare("llvm.x86.avx512bf16.dpbf16ps.512", vf, [vf, vi32, vi32])
        return call(f, [acc, a, b])
    }

    /// fp32 lanes rounded to bf16, nearest-even (`vcvtneps2bf16`, AVX512_BF16): `<16 x i16>`.
    func roundToBF16(_ x: LLVMValueRef) -> LLVMValueRef {
        precondition(width == 16, "vcvtneps2bf16 is used by the 512-bit bf16 kernels")
        let f = declare("llvm.x86.avx512bf16.cvtneps2bf16.512", LLVMVectorType(i16, 16)!, [vf])
        return call(f, [x])
    }

    /// Rewrites `rows` rows of `n` fp32 scores (row stride `ld` floats) in place as bf16 pairs:
    /// row r's pair p becomes the 32-bit word at `S + r·ld + p`, so the value GEMM reads the
    /// block as a row-major bf16 A with the same row stride. An odd `n` gets a zero partner.
    /// In place is safe: each vector is loaded before the half as many bytes are stored, and the
    /// stores never pass the loads.
    func scoresToBF16Pairs(n: Int, ld: Int) -> IRFunction {
        define("tfc.scores2bf16.n\(n).ld\(ld)", voidT, [pf32, i64], attributes: ["nounwind"]) { fn in
            let S = self.param(fn, 0), rows = self.param(fn, 1)
            let full = n / self.width * self.width, tail = n - full
            let pv16 = LLVMPointerType(LLVMVectorType(self.i16, 16)!, 0)!
            self.loop(0, rows) { r in
                let row = self.gep(S, self.mul(r, ld))
                let half = self.bitcast(row, pi16)
                self.loop(0, self.i64(full), step: self.width) { c in
                    let h = self.roundToBF16(self.loadV(row, c))
                    self.store(h, self.bitcast(self.gep(half, c), pv16), align: 2)
                }
                if tail > 0 {
                    let c = self.i64(full)
                    let h = self.roundToBF16(self.maskedLoadV(row, c, self.laneMask(tail)))
                    for l in 0..<tail {
                        self.store(LLVMBuildExtractElement(self.builder, h, self.i32(l), "")!,
                                   self.gep(half, full + l), align: 2)
                    }
                }
                if n % 2 == 1 {
                    self.store(LLVMConstInt(self.i16, 0, 0), self.gep(half, n), align: 2)
                }
            }
            self.retVoid()
        }
    }
}
