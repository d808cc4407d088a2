import CLLVM

/// The weight-gradient product of training, `C[m, n] += Aᵀ · B` with A `[R, m]` and B `[R, n]`
/// row-major and R (the rows of a batch, T) known only at run time: `dV += Aᵀ·dY`, `dK += dSᵀ·X`,
/// `dEmbed += dLogitsᵀ·X`. The reduction runs over rows, in blocks of `depth` rows: the micro-kernel
/// reads Aᵀ in place (`ALayout.transposed`: a tile's `mr` rows are adjacent columns of A) and
/// B's rows in place when its columns are whole tiles (else B is packed into panels per block).
/// The same register-tile micro-kernel as every other GEMM (`microKernel`) does the arithmetic,
/// with the block's row count as its run-time depth (no work on padding). Row tiles of C are
/// independent, so threads split them (no partial sums, the same bits at any thread count).
///
/// ABI: `args = [A, B, C]`, `T` = R rows; `p0` ignored.
public struct TransposedGemmSpec: Hashable, Sendable, CustomStringConvertible {
    /// Columns of A (rows of C).
    public var m: Int
    /// Columns of B and C.
    public var n: Int
    public var lda: Int
    public var ldb: Int
    public var ldc: Int

    public init(m: Int, n: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        precondition(m > 0 && n > 0)
        self.m = m; self.n = n
        self.lda = lda ?? m; self.ldb = ldb ?? n; self.ldc = ldc ?? n
    }

    /// Rows of A and B packed per block.
    static let depth = 128

    public var description: String { "gemm_at m=\(m) n=\(n) lda=\(lda) ldb=\(ldb) ldc=\(ldc)" }
    public var symbol: String { "tfc_gemm_at_" + stableHash(description) }
}

extension IRGen {
    /// Packs `rows` (at most `depth`) rows of a row-major `[rows, cols]` matrix (row stride `ld`)
    /// into panels of `w` columns: panel p at `p·w·depth`, element (r, j) at `r·w + j`, columns
    /// past `cols` zero: a GEMM's weight panels (`w = nr`), for a B whose columns are not whole tiles.
    /// Rows at and past `rows` are not written (the micro-kernel's run-time depth stops there).
    /// `void pack(const float *src, i64 rows, float *dst)`.
    func packPanels(cols: Int, ld: Int, width w: Int, depth: Int) -> IRFunction {
        define("tfc.panels.c\(cols).ld\(ld).w\(w).k\(depth)", voidT, [pf32, i64, pf32], attributes: ["nounwind"]) { fn in
            let src = self.param(fn, 0), rows = self.param(fn, 1), dst = self.param(fn, 2)
            let full = cols / w, tail = cols % w
            /// Copies `count` floats of source row `row` from `from` to `to`, zero-filling to `w`.
            func copy(_ from: LLVMValueRef, _ to: LLVMValueRef, count: Int) {
                var j = 0
                while j + self.width <= count { self.storeV(self.loadV(from, j), to, j); j += self.width }
                if j < count && w % self.width == 0 {
                    let mask = self.laneMask(count - j)
                    self.storeV(self.maskedLoadV(from, self.i64(j), mask), to, j)  // masked-off lanes load as zero
                    j += self.width
                }
                while j < count { self.storeF(self.loadF(from, j), to, j); j += 1 }
                while j < w { self.storeF(self.f32(0), to, j); j += 1 }
            }
            self.loop(0, rows) { r in
                let row = self.gep(src, self.mul(r, ld))
                let out = self.gep(dst, self.mul(r, w))
                if full > 0 {
                    self.loop(0, self.i64(full)) { p in copy(self.gep(row, self.mul(p, w)), self.gep(out, self.mul(p, w * depth)), count: w) }
                }
                if tail > 0 { copy(self.gep(row, full * w), self.gep(out, full * w * depth), count: tail) }
            }
            self.retVoid()
        }
    }

    /// The micro-kernel shape of `C += Aᵀ·B`: A read in place as the transpose of its row-major
    /// `[R, m]` (`ALayout.transposed`), B in place when its columns are whole tiles (else packed
    /// per depth block), `depth` rows a block.
    func transposedGemmShape(_ spec: TransposedGemmSpec) -> GemmShape {
        let schedule = GemmSchedule.choose(k: TransposedGemmSpec.depth, n: spec.n, for: vector)
        return GemmShape(k: TransposedGemmSpec.depth, n: spec.n, a: .transposed(ld: spec.lda), ldc: spec.ldc, schedule: schedule)
            .inPlaceB(ldb: spec.ldb)
    }

    /// Row tiles (`mr` rows of C each) of `C += Aᵀ·B`.
    func transposedGemmTiles(_ spec: TransposedGemmSpec) -> Int {
        let mr = transposedGemmShape(spec).mr
        return (spec.m + mr - 1) / mr
    }

    /// `void gemm_at(const float *A, const float *B, float *C, i64 R, i64 t0, i64 t1, float *scratch)`:
    /// row tiles `t0 ..< t1` of `C += Aᵀ·B`, block by block of `TransposedGemmSpec.depth` rows;
    /// `scratch` holds `transposedGemmScratch(spec)` floats. Each tile of C adds one product a
    /// block, the blocks in order, whatever the tile range: any split of the tiles among threads
    /// gives the bits of one call over all of them.
    func transposedGemm(_ spec: TransposedGemmSpec) -> IRFunction {
        let depth = TransposedGemmSpec.depth
        let shape = transposedGemmShape(spec)
        let mr = shape.mr, nr = shape.nr
        let ukrs = (1...mr).map { microKernel(shape, rows: $0) }
        let packB = shape.readsBInPlace ? nil : packPanels(cols: spec.n, ld: spec.ldb, width: nr, depth: depth)
        return define("tfc.gemm_at.\(stableHash(spec.description))", voidT, [pf32, pf32, pf32, i64, i64, i64, pf32], attributes: ["nounwind"]) { fn in
            let A = self.param(fn, 0), B = self.param(fn, 1), C = self.param(fn, 2), R = self.param(fn, 3)
            let t0 = self.param(fn, 4), t1 = self.param(fn, 5), scratch = self.param(fn, 6)
            self.loop(self.i64(0), R, step: depth) { r0 in
                let rows = self.smin(self.i64(depth), self.sub(R, r0))
                let Ab = self.gep(A, self.mul(r0, spec.lda)), Bb = self.gep(B, self.mul(r0, spec.ldb))
                if let packB { self.call(packB, [Bb, rows, scratch]) }
                self.loop(0, self.i64(shape.panels)) { p in
                    let nValid = self.smin(self.i64(nr), self.sub(self.i64(spec.n), self.mul(p, nr)))
                    let Bpanel = packB == nil ? self.gep(Bb, self.mul(p, nr)) : self.gep(scratch, self.mul(p, nr * depth))
                    self.loop(t0, t1) { t in
                        let tileRows = self.smin(self.i64(mr), self.sub(self.i64(spec.m), self.mul(t, mr)))
                        let args = [self.gep(Ab, self.mul(t, mr)), Bpanel,
                                    self.gep(C, self.add(self.mul(t, mr * spec.ldc), self.mul(p, nr))), rows, nValid, self.bool(true)]
                        self.switchOn(self.sub(tileRows, self.i64(1)), cases: (0..<mr).map { m in (m, { self.call(ukrs[m], args) }) })
                    }
                }
            }
            self.retVoid()
        }
    }

    /// Floats of scratch `transposedGemm(spec)` needs (B's panels of one block, unless B is read in place).
    func transposedGemmScratch(_ spec: TransposedGemmSpec) -> Int {
        let shape = transposedGemmShape(spec)
        return shape.readsBInPlace ? 0 : shape.panels * shape.nr * TransposedGemmSpec.depth
    }
}

extension IRGen {
    /// Chunk `c` of `chunks` of `transposedGemm(spec)`'s row tiles: `[c·tiles/chunks, (c+1)·tiles/chunks)`.
    func callTransposedGemmChunk(_ body: IRFunction, _ spec: TransposedGemmSpec, A: LLVMValueRef, B: LLVMValueRef, C: LLVMValueRef,
                                 rows: LLVMValueRef, chunk c: LLVMValueRef, of chunks: LLVMValueRef) {
        let tiles = i64(transposedGemmTiles(spec))
        call(body, [A, B, C, rows, sdiv(mul(c, tiles), chunks), sdiv(mul(add(c, i64(1)), tiles), chunks),
                    threadScratch(floats: i64(transposedGemmScratch(spec)))])
    }

    /// Chunks to split `transposedGemm(spec)`'s row tiles into for the pool's threads: a few a
    /// thread (chunks are taken dynamically, so a thread that others' jobs delay does fewer),
    /// one when one thread runs.
    func transposedGemmChunks(_ spec: TransposedGemmSpec) -> LLVMValueRef {
        let threads = numThreads()
        return select(icmp(LLVMIntSLE, threads, i64(1)), i64(1), smin(i64(transposedGemmTiles(spec)), mul(threads, i64(4))))
    }
}

extension KernelModule {
    /// Emits a stand-alone `C += Aᵀ·B` kernel (once per distinct spec) and returns its symbol;
    /// with several threads, chunks of C's row tiles are the tasks (the bits do not change).
    @discardableResult
    public func addTransposedGemm(_ spec: TransposedGemmSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let body = g.transposedGemm(spec)
        // ctx: 0 A, 1 B, 2 C, 3 R, 4 chunks
        let chunk = g.task(symbol + ".chunk") { ctx, c in
            g.callTransposedGemmChunk(body, spec, A: g.contextPtr(ctx, 0), B: g.contextPtr(ctx, 1), C: g.contextPtr(ctx, 2),
                                      rows: g.contextInt(ctx, 3), chunk: c, of: g.contextInt(ctx, 4))
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let chunks = g.transposedGemmChunks(spec)
                g.parallelFor(chunk, g.makeContext([g.argPtr(args, 0), g.argPtr(args, 1), g.argPtr(args, 2), T, chunks]), chunks)
            }
        }
        return symbol
    }
}
