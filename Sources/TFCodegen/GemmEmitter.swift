import CLLVM

/// Where a GEMM reads its left operand A (`rows x k`).
enum ALayout: Hashable {
    /// Packed row tiles: tile `t` holds `k x mr` floats, `A[t·mr + i, kk]` at `t·k·mr + kk·mr + i`.
    case packed
    /// Row-major with leading dimension `lda`.
    case rowMajor(lda: Int)
    /// The transpose of a row-major `[k, rows]` matrix of row stride `ld`: `A[i, kk]` at
    /// `kk·ld + i` (a weight gradient's `Aᵀ`, read in place: `TransposedGemm.swift`).
    case transposed(ld: Int)

    var key: String {
        switch self {
        case .packed: return "p"
        case .rowMajor(let lda): return "r\(lda)"
        case .transposed(let ld): return "t\(ld)"
        }
    }
}

/// A statically shaped GEMM `C[rows, n] (+)= A[rows, k] · B[k, n]` with B in packed panels
/// (`PanelLayout(k:n:nr:)` with `nr` the schedule's `panelWidth`), `rows` known only at run time.
/// Column tiles ("panels" below: `nr` columns each) are what the driver and its callers count;
/// with a panel wider than the tile, tile `p` is columns `(p % group)·nr…` of packed panel `p / group`.
struct GemmShape: Hashable {
    var k: Int
    var n: Int
    var a: ALayout
    var ldc: Int
    var schedule: GemmSchedule
    /// What B's panels and A's rows hold, and the instructions that multiply them.
    var kernel: MicroKernelKind = .f32FMA
    /// B read in place as a row-major `[k, n]` matrix of this row stride instead of packed panels
    /// (`GemmShape.inPlaceB`: f32, one tile per panel, whole tiles only), so a weight that
    /// changes every step needs no copy.
    var bRowStride: Int? = nil

    /// This shape reading B in place (row stride `ldb`) when its tiles allow it, else unchanged.
    func inPlaceB(ldb: Int) -> GemmShape {
        guard kernel == .f32FMA, group == 1, n % nr == 0 else { return self }
        var s = self
        s.bRowStride = ldb
        return s
    }
    /// Whether B is read in place.
    var readsBInPlace: Bool { bRowStride != nil }
    /// Floats between consecutive k of one tile's B.
    var bStride: Int { bRowStride ?? panelWidth }

    var mr: Int { schedule.mr }
    /// The depth block: the schedule's, rounded up to whole k pairs for bf16 panels (every
    /// block but the last then starts on a pair).
    var kc: Int { bGroup == 2 ? (schedule.kc + 1) / 2 * 2 : schedule.kc }
    var nr: Int { schedule.nr }
    /// Columns per packed panel (a multiple of `nr`) and tiles per panel.
    var panelWidth: Int { schedule.panelWidth }
    var group: Int { panelWidth / nr }
    /// Column tiles of `nr` columns.
    var panels: Int { (n + nr - 1) / nr }
    var layout: PanelLayout { PanelLayout(k: k, n: n, nr: panelWidth, format: kernel.weights) }
    /// k values per 32-bit unit of B (bf16 pairs: 2) and of A (bf16 activations: 2). Offsets
    /// into A and B below count 32-bit units, so a row of pairs is addressed like a row of floats.
    var bGroup: Int { kernel.weights.storage.kGroup }
    var aGroup: Int { kernel.activations.kGroup }
    /// 32-bit rows of one panel (k, or k pairs).
    var bDepth: Int { (k + bGroup - 1) / bGroup }
    /// Units between consecutive k (or k pairs) of one row of A.
    var aColStride: Int {
        switch a {
        case .packed: return mr
        case .rowMajor: return 1
        case .transposed(let ld): return ld
        }
    }
    /// Units between consecutive rows of A inside a tile.
    var aRowStride: Int { if case .rowMajor(let lda) = a { return lda } else { return 1 } }
    /// Units between consecutive row tiles of A.
    var aTileStride: Int {
        switch a {
        case .packed: return (k + aGroup - 1) / aGroup * mr
        case .rowMajor(let lda): return lda * mr
        case .transposed: return mr
        }
    }
    /// Panels outermost (each `rows x nr` C strip is finished in L1 across all depth blocks)
    /// unless a row block of A exceeds 1 MiB; then depth blocks outermost (one `rows x kc`
    /// slice of A stays in L2 across all panels). Measured on znver3 (512 KiB L2): panels
    /// outermost wins even with a 590 KiB A block (48 x 3072).
    var panelsOuter: Bool {
        switch schedule.loopOrder {
        case .panelsOuter: return true
        case .depthOuter: return false
        case .automatic: return schedule.rowBlock * k * 4 <= 1 << 20
        }
    }
    var key: String {
        "k\(k).n\(n).\(a.key).c\(ldc).m\(mr)n\(nr)\(group > 1 ? "w\(panelWidth)" : "")kc\(schedule.kc)u\(schedule.unroll)\(panelsOuter ? "po" : "ko")" + (kernel == .f32FMA ? "" : ".\(kernel.name)")
            + (bRowStride.map { ".b\($0)" } ?? "")
    }
}

extension IRGen {
    /// The register-tile micro-kernel for `rows` (1...mr) rows:
    /// `void ukr(const float *A, const float *B, float *C, i64 kc, i64 nValid, i1 accumulate)`
    /// computes the `rows x nr` tile `C (+)= A[rows, kc] · Bpanel[kc, nr]`, storing only the first
    /// `nValid` columns (masked stores). Accumulators live in SSA values (registers).
    /// bf16 kernels step over k pairs (`kc` is even except in the last depth block of an odd k):
    /// `bf16-widen-fma` widens both halves of each pair and does two fp32 FMAs per row,
    /// `bf16-vdpbf16ps` does one `vdpbf16ps` per row with the row's pair broadcast.
    func microKernel(_ s: GemmShape, rows: Int) -> IRFunction {
        let nv = s.nr / width
        // B's row stride: the packed panel's width (the tile reads `nr` of its columns), or the
        // row stride of a B read in place.
        let ldb = s.bStride
        // The default prefetch is one depth block ahead in the packed panels (the next panel's
        // micro-panel); a B read in place is left to the hardware's stride prefetcher.
        let prefetchBytes = s.readsBInPlace && s.schedule.prefetch < 0 ? 0
            : s.schedule.prefetch < 0 ? s.kc * ldb * 4 / s.bGroup : s.schedule.prefetch
        let kernelKey = s.kernel == .f32FMA ? "" : ".\(s.kernel.name)"
        let name = "tfc.ukr.m\(rows).n\(s.nr)\(s.group > 1 || s.readsBInPlace ? "w\(ldb)" : "").a\(s.aColStride)x\(s.aRowStride).c\(s.ldc).u\(s.schedule.unroll).pf\(prefetchBytes)\(kernelKey)"
        let f = define(name, voidT, [pf32, pf32, pf32, i64, i64, i1], attributes: ["nounwind"]) { fn in
            let A = self.param(fn, 0), B = self.param(fn, 1), C = self.param(fn, 2)
            let kc = self.param(fn, 3), nValid = self.param(fn, 4), accumulate = self.param(fn, 5)
            let colStride = s.aColStride, rowStride = s.aRowStride

            /// Prefetches B `prefetchBytes` ahead of the 32-bit offset `bOff` (a later micro-panel).
            func prefetch(_ bOff: LLVMValueRef) {
                guard prefetchBytes > 0 else { return }
                let f = self.declare("llvm.prefetch.p0i8", self.voidT, [self.pi8, self.i32, self.i32, self.i32])
                let addr = self.bitcast(self.gep(B, self.add(bOff, prefetchBytes / 4)), self.pi8)
                self.call(f, [addr, self.i32(0), self.i32(3), self.i32(1)])
            }
            func step(_ kk: LLVMValueRef, _ acc: [LLVMValueRef]) -> [LLVMValueRef] {
                var acc = acc
                let bOff = self.mul(kk, ldb)
                prefetch(bOff)
                let b = (0..<nv).map { self.loadV(B, self.add(bOff, $0 * self.width)) }
                let aOff = self.mul(kk, colStride)
                for i in 0..<rows {
                    let a = self.broadcastLoad(A, self.add(aOff, i * rowStride))
                    for v in 0..<nv { acc[i * nv + v] = self.fma(a, b[v], acc[i * nv + v]) }
                }
                return acc
            }
            /// One k pair `p` of a bf16 panel (`evenOnly`: the last, unpartnered k of an odd depth).
            func pairStep(_ p: LLVMValueRef, _ acc: [LLVMValueRef], evenOnly: Bool = false) -> [LLVMValueRef] {
                var acc = acc
                let bOff = self.mul(p, ldb)
                prefetch(bOff)
                let b = (0..<nv).map { self.loadI32V(B, self.add(bOff, $0 * self.width)) }
                if s.kernel == .bf16DotBF16 {
                    let aOff = self.mul(p, colStride)
                    for i in 0..<rows {
                        let a = self.broadcastI32(A, self.add(aOff, i * rowStride))
                        for v in 0..<nv { acc[i * nv + v] = self.dotBF16(acc[i * nv + v], a, b[v]) }
                    }
                } else {
                    let even = b.map { self.widenEvenBF16($0) }
                    let odd = evenOnly ? [] : b.map { self.widenOddBF16($0) }
                    let aOff = self.mul(self.mul(p, 2), colStride)
                    for i in 0..<rows {
                        let a0 = self.broadcastLoad(A, self.add(aOff, i * rowStride))
                        for v in 0..<nv { acc[i * nv + v] = self.fma(a0, even[v], acc[i * nv + v]) }
                        if evenOnly { continue }
                        let a1 = self.broadcastLoad(A, self.add(aOff, colStride + i * rowStride))
                        for v in 0..<nv { acc[i * nv + v] = self.fma(a1, odd[v], acc[i * nv + v]) }
                    }
                }
                return acc
            }
            let zero = [LLVMValueRef](repeating: self.vzero, count: rows * nv)
            let u = s.schedule.unroll
            let one: (LLVMValueRef, [LLVMValueRef]) -> [LLVMValueRef] = s.bGroup == 1 ? step : { p, acc in pairStep(p, acc) }
            // Steps: k (f32) or k pairs (bf16).
            let steps = s.bGroup == 1 ? kc : LLVMBuildLShr(self.builder, kc, self.i64(1), "")!
            let mainEnd = LLVMBuildAnd(self.builder, steps, self.i64(-u), "")!
            var acc = self.loop(self.i64(0), mainEnd, step: u, carried: zero) { k, acc in
                var a = acc
                for j in 0..<u { a = one(self.add(k, j), a) }
                return a
            }
            if u > 1 {
                acc = self.loop(mainEnd, steps, step: 1, carried: acc) { k, acc in one(k, acc) }
            }
            if s.bGroup == 2 && s.k % 2 == 1 {
                // The last depth block of an odd k ends with one unpaired k (its partner is a zero
                // pad in B and, for bf16 activations, in A).
                let odd = self.icmp(LLVMIntNE, LLVMBuildAnd(self.builder, kc, self.i64(1), "")!, self.i64(0))
                acc = self.ifElse(odd, then: { pairStep(steps, acc, evenOnly: s.kernel != .bf16DotBF16) }, otherwise: { acc })
            }
            // Epilogue: full tiles store whole vectors, the last panel masks its columns.
            let full = self.icmp(LLVMIntEQ, nValid, self.i64(s.nr))
            let fullBB = self.block("full"), partBB = self.block("partial"), done = self.block("done")
            self.condBr(full, fullBB, partBB)
            self.position(fullBB)
            self.ifElse(accumulate, then: {
                for i in 0..<rows { for v in 0..<nv {
                    let off = i * s.ldc + v * self.width
                    self.storeV(self.fadd(self.loadV(C, off), acc[i * nv + v]), C, off)
                } }
                return []
            }, otherwise: {
                for i in 0..<rows { for v in 0..<nv { self.storeV(acc[i * nv + v], C, i * s.ldc + v * self.width) } }
                return []
            })
            self.br(done)
            self.position(partBB)
            let masks = (0..<nv).map { self.laneMask(self.sub(nValid, self.i64($0 * self.width))) }
            self.ifElse(accumulate, then: {
                for i in 0..<rows { for v in 0..<nv {
                    let off = self.i64(i * s.ldc + v * self.width)
                    let old = self.maskedLoadV(C, off, masks[v])
                    self.maskedStoreV(self.fadd(old, acc[i * nv + v]), C, off, masks[v])
                } }
                return []
            }, otherwise: {
                for i in 0..<rows { for v in 0..<nv {
                    self.maskedStoreV(acc[i * nv + v], C, self.i64(i * s.ldc + v * self.width), masks[v])
                } }
                return []
            })
            self.br(done)
            self.position(done)
            self.retVoid()
        }
        for p in 0..<3 { addNoAlias(f.value, param: p) }
        return f
    }

    /// The cache-blocked driver over a range of panels:
    /// `void gemm(const float *A, const float *B, float *C, i64 rows, i64 pBegin, i64 pEnd, i1 accumulate)`
    /// computes columns `[pBegin·nr, min(pEnd·nr, n))` of `C (+)= A · B` for `rows` rows.
    /// Loop order: panels → depth blocks → row tiles or depth blocks → panels → row tiles
    /// (`GemmShape.panelsOuter`); either way each `kc x nr` weight micro-panel is reused from
    /// L1 across all row tiles.
    func gemmBlock(_ s: GemmShape) -> IRFunction {
        // Micro-kernels for a full tile and for power-of-two row counts: a partial tile of r rows
        // runs as r's binary parts (e.g. 7 = 4 + 2 + 1), each part the same per-element
        // arithmetic, so LLVM compiles log2(mr) + 2 kernels instead of mr (12 on AVX-512).
        var ukrs: [Int: IRFunction] = [s.mr: microKernel(s, rows: s.mr)]
        var part = 1
        while part < s.mr { ukrs[part] = microKernel(s, rows: part); part *= 2 }
        let f = define("tfc.gemm.\(s.key)", voidT, [pf32, pf32, pf32, i64, i64, i64, i1], attributes: ["nounwind"]) { fn in
            let A = self.param(fn, 0), B = self.param(fn, 1), C = self.param(fn, 2)
            let rows = self.param(fn, 3), pBegin = self.param(fn, 4), pEnd = self.param(fn, 5), accumulate = self.param(fn, 6)
            let tiles = self.ceilDiv(rows, s.mr)
            let kc = s.kc
            func depthBlock(_ kb: LLVMValueRef, _ body: (_ kcLen: LLVMValueRef, _ acc: LLVMValueRef) -> Void) {
                let kcLen = self.smin(self.i64(kc), self.sub(self.i64(s.k), kb))
                let acc = LLVMBuildOr(self.builder, accumulate, self.icmp(LLVMIntSGT, kb, self.i64(0)), "")!
                body(kcLen, acc)
            }
            func tileLoop(_ p: LLVMValueRef, _ kb: LLVMValueRef, _ kcLen: LLVMValueRef, _ acc: LLVMValueRef) {
                let nValid = self.smin(self.i64(s.nr), self.sub(self.i64(s.n), self.mul(p, s.nr)))
                // kb is a multiple of kc, even for bf16: the block's first pair is kb / 2.
                // Tile p is columns (p % group)·nr of packed panel p / group.
                let panelStart = s.readsBInPlace ? self.mul(p, s.nr) : s.group == 1 ? self.mul(p, s.nr * s.bDepth)
                    : self.add(self.mul(self.sdiv(p, self.i64(s.group)), s.panelWidth * s.bDepth),
                               self.mul(LLVMBuildSRem(self.builder, p, self.i64(s.group), "")!, s.nr))
                let Bp = self.gep(B, self.add(panelStart, self.mul(self.sdiv(kb, self.i64(s.bGroup)), s.bStride)))
                let Cp = self.gep(C, self.mul(p, s.nr))
                let aK = self.mul(self.sdiv(kb, self.i64(s.aGroup)), s.aColStride)
                self.loop(self.i64(0), tiles) { t in
                    let r = self.smin(self.i64(s.mr), self.sub(rows, self.mul(t, s.mr)))
                    let At = self.gep(A, self.add(self.mul(t, s.aTileStride), aK))
                    let Ct = self.gep(Cp, self.mul(t, s.mr * s.ldc))
                    let args = [At, Bp, Ct, kcLen, nValid, acc]
                    if s.mr == 1 {
                        self.call(ukrs[1]!, args)
                    } else {
                        let isFull = self.icmp(LLVMIntEQ, r, self.i64(s.mr))
                        self.ifElse(isFull, then: { self.call(ukrs[s.mr]!, args); return [] }, otherwise: {
                            self.switchOn(r, cases: (1..<s.mr).map { m in (m, {
                                var row = 0
                                for bit in (0..<8).reversed() where m & (1 << bit) != 0 {
                                    let rows = 1 << bit
                                    self.call(ukrs[rows]!, [self.gep(At, row * s.aRowStride), Bp, self.gep(Ct, row * s.ldc), kcLen, nValid, acc])
                                    row += rows
                                }
                            }) })
                            return []
                        })
                    }
                }
            }
            if s.panelsOuter {
                self.loop(pBegin, pEnd) { p in
                    self.loop(self.i64(0), self.i64(s.k), step: kc) { kb in
                        depthBlock(kb) { kcLen, acc in tileLoop(p, kb, kcLen, acc) }
                    }
                }
            } else {
                self.loop(self.i64(0), self.i64(s.k), step: kc) { kb in
                    depthBlock(kb) { kcLen, acc in
                        self.loop(pBegin, pEnd) { p in tileLoop(p, kb, kcLen, acc) }
                    }
                }
            }
            self.retVoid()
        }
        return f
    }

    /// Packs `rows` rows of X (row-major, `k` floats per row, row stride `ldx`) into A's
    /// packed-tile layout, optionally applying a non-parametric LayerNorm to each row
    /// (`(x - mean) / sqrt(var + eps)`, biased variance) — and, when `affine`, `·gamma + beta`:
    /// `void pack(const float *X, i64 rows, float *Ap, const float *gamma, const float *beta)`.
    /// `bf16Pairs` (the `vdpbf16ps` kernels): each value is rounded to bf16 and a tile holds k
    /// pairs, `A[t·mr + i, kk]` at 16-bit index `2·(t·⌈k/2⌉·mr + (kk/2)·mr + i) + kk % 2`; an odd
    /// k's last pair gets a zero partner.
    func packRows(k: Int, ldx: Int, mr: Int, layerNormEps: Float?, affine: Bool = false, bf16Pairs: Bool = false) -> IRFunction {
        let lnKey = layerNormEps.map { "ln\($0.bitPattern)" + (affine ? "a" : "") } ?? "copy"
        let name = "tfc.pack.k\(k).x\(ldx).m\(mr).\(lnKey)" + (bf16Pairs ? ".bf16" : "")
        return define(name, voidT, [pf32, i64, pf32, pf32, pf32], attributes: ["nounwind"]) { fn in
            let X = self.param(fn, 0), rows = self.param(fn, 1), Ap = self.param(fn, 2)
            let gamma = self.param(fn, 3), beta = self.param(fn, 4)
            let fullVecs = k / self.width, tail = k % self.width
            let tailMask = self.laneMask(tail)
            self.loop(0, rows) { r in
                let row = self.gep(X, self.mul(r, ldx))
                let tile = self.sdiv(r, self.i64(mr))
                let lane = LLVMBuildSRem(self.builder, r, self.i64(mr), "")!
                let pairs = (k + 1) / 2
                let dst = bf16Pairs ? self.gep(self.bitcast(Ap, self.pi16), self.add(self.mul(tile, 2 * pairs * mr), self.mul(lane, 2)))
                    : self.gep(Ap, self.add(self.mul(tile, k * mr), lane))
                var mean: LLVMValueRef = self.vzero, rstd: LLVMValueRef = self.vzero
                if let eps = layerNormEps {
                    (mean, rstd) = self.rowMoments(row, k: k, eps: eps)
                }
                func transform(_ x: LLVMValueRef, _ off: LLVMValueRef, _ mask: LLVMValueRef?) -> LLVMValueRef {
                    guard layerNormEps != nil else { return x }
                    var y = self.fmul(self.fsub(x, mean), rstd)
                    if affine {
                        let g = mask.map { self.maskedLoadV(gamma, off, $0) } ?? self.loadV(gamma, off)
                        let b = mask.map { self.maskedLoadV(beta, off, $0) } ?? self.loadV(beta, off)
                        y = self.fma(y, g, b)
                    }
                    return y
                }
                func scatter(_ y: LLVMValueRef, _ c: LLVMValueRef, lanes: Int) {
                    guard bf16Pairs else {
                        for l in 0..<lanes { self.storeF(self.extract(y, l), dst, self.mul(self.add(c, l), mr)) }
                        return
                    }
                    // c is a multiple of the vector width, so lane l's pair is c/2 + l/2.
                    let h = self.roundToBF16(y)
                    for l in 0..<lanes {
                        self.store(self.extract(h, l), self.gep(dst, self.add(self.mul(c, mr), (l / 2) * 2 * mr + l % 2)), align: 2)
                    }
                }
                self.loop(0, self.i64(fullVecs * self.width), step: self.width) { c in
                    scatter(transform(self.loadV(row, c), c, nil), c, lanes: self.width)
                }
                if tail > 0 {
                    let c = self.i64(fullVecs * self.width)
                    scatter(transform(self.maskedLoadV(row, c, tailMask), c, tailMask), c, lanes: tail)
                }
                if bf16Pairs && k % 2 == 1 {
                    self.store(LLVMConstInt(self.i16, 0, 0), self.gep(dst, (k / 2) * 2 * mr + 1), align: 2)
                }
            }
            self.retVoid()
        }
    }

    /// Mean and 1/sqrt(var + eps) of the `k` floats at `row`, both splatted to `<8 x float>`.
    /// Two passes (mean, then centred squares), accumulated in vectors.
    func rowMoments(_ row: LLVMValueRef, k: Int, eps: Float) -> (LLVMValueRef, LLVMValueRef) {
        let fullEnd = i64(k / width * width)
        let tail = k % width
        let s = loop(i64(0), fullEnd, step: width, carried: [vzero]) { c, acc in [fadd(acc[0], loadV(row, c))] }
        var sum = s[0]
        if tail > 0 { sum = fadd(sum, maskedLoadV(row, fullEnd, laneMask(tail))) }
        let mean = splat(fdiv(hsum(sum), f32(Float(k))))
        let q = loop(i64(0), fullEnd, step: width, carried: [vzero]) { c, acc in
            let d = fsub(loadV(row, c), mean)
            return [fma(d, d, acc[0])]
        }
        var sq = q[0]
        if tail > 0 {
            let m = laneMask(tail)
            let d = select(m, fsub(maskedLoadV(row, fullEnd, m), mean), vzero)
            sq = fma(d, d, sq)
        }
        let variance = fdiv(hsum(sq), f32(Float(k)))
        let rstd = fdiv(f32(1), unary("sqrt", fadd(variance, f32(eps))))
        return (mean, splat(rstd))
    }
}
