import CLLVM

/// The backward of one Pattention site `Y = Θ(X·Kᵀ)·V` (training): given X, K, V and dY it adds
/// `dX = dS·K`, `dK += dSᵀ·X` and `dV += Aᵀ·dY`, where per block of rows the scores are
/// recomputed, never stored for the whole sequence: `S = X·Kᵀ`, `A = Θ(S)`, `dA = dY·Vᵀ`,
/// `dS = Θ'(S)ᵀ(dA)` — all `[rowBlock, n]` in scratch. The five products are the generated GEMM
/// (`gemmBlock`, `microKernel`); the three with a row-major left operand (X, dY, dS) read it in
/// place (`ALayout.rowMajor`: no packing, measured as fast as packed row tiles at mid's shapes);
/// Θ and its backward are vector code (`pattentionActivation` and
/// `pattentionActivationBackward`), with the zero-norm-row rule (such a row's gradient is 0).
/// With one thread (or one block) the blocks add into dK and dV directly. With several threads
/// and saved scores the work runs in two phases, rows then weight-gradient tiles (below), with
/// the one-thread bits; recomputing, contiguous runs of row blocks are tasks, each adding into
/// its own zeroed partial dK and dV, summed in task order afterwards (deterministic for a given
/// thread count).
///
/// ABI: `args = [X [T, d_in], Kt, Vt, Kp, dY [T, d_out], dX [T, d_in] (+=), dK [n, d_in] (+=), dV [n, d_out] (+=),
/// partials]`, `T` rows; `p0` nonzero writes dX (`dX = dS·K`, the first contribution: the caller
/// need not zero it) instead of adding into it. `partials` holds `partialFloats(threads:)` floats (scratch). Kt = `keyLayout.packTransposed(K)`, Vt = `valueTransposedLayout.packTransposed(V)`,
/// Kp = `keyPlainLayout.pack(K)`, or K itself when `readsKeyInPlace` (the dX product then reads
/// K's rows in place: no copy of a weight that changes every step).
///
/// With `scoresSaved`, the forward kept S and A = Θ(S) (`[T, ld]` each, written by
/// `addPattentionTrainingForward` with the same score GEMM, so the same bits): the backward reads
/// them instead of recomputing the first product and Θ. Its ABI then has S in Kt's place and A
/// appended: `[X, S, Vt, Kp, dY, dX, dK, dV, partials, A]`; with several threads S is
/// overwritten (with dS).
public struct PattentionBackwardSpec: Hashable, Sendable, CustomStringConvertible {
    public var dIn: Int
    public var site: PattentionSite
    /// The vector target the kernel and its weight panels are laid out for (the training module's).
    public var vector: VectorTarget
    /// Whether S and A come from the forward (saved) rather than recomputed per block.
    public var scoresSaved: Bool

    public init(dIn: Int, tokens: Int, dOut: Int, activation: PattentionActivation, tau: Float?, vector: VectorTarget = .avx2,
                scoresSaved: Bool = false) {
        self.dIn = dIn
        self.vector = vector
        self.scoresSaved = scoresSaved
        site = PattentionSite(tokens: tokens, dOut: dOut, activation: activation, tau: activation == .softmax ? nil : tau)
    }

    /// Tasks of the multi-threaded path at most (bounds the partial sums' memory).
    public static let maxTasks = 16
    var maxTasks: Int { Self.maxTasks }
    /// Floats of the `partials` argument for `threads` threads (none with saved scores: their
    /// threads split dK's and dV's rows instead of summing partial copies).
    public func partialFloats(threads: Int) -> Int { scoresSaved ? 0 : min(max(threads, 1), Self.maxTasks) * n * (dIn + dOut) }

    /// Rows per block (one block's scores, activations and their gradients live in scratch).
    static let rowBlock = TransposedGemmSpec.depth
    var n: Int { site.tokens }
    var dOut: Int { site.dOut }
    /// Row stride of the score blocks.
    public var ld: Int { roundUp(n, 16) }
    var scoreSchedule: GemmSchedule { GemmSchedule.choose(k: dIn, n: n, for: vector) }
    /// S = X·Kᵀ for a block of rows into `[rows, ld]`: the backward's and the training forward's one score product.
    var scoreShape: GemmShape { GemmShape(k: dIn, n: n, a: .rowMajor(lda: dIn), ldc: ld, schedule: scoreSchedule) }
    var dASchedule: GemmSchedule { GemmSchedule.choose(k: dOut, n: n, for: vector) }
    var dXSchedule: GemmSchedule { GemmSchedule.choose(k: n, n: dIn, for: vector) }

    /// B = Kᵀ `[d_in, n]` for the scores (`packTransposed(K)`).
    public var keyLayout: PanelLayout { PanelLayout(k: dIn, n: n, nr: scoreSchedule.nr) }
    /// B = Vᵀ `[d_out, n]` for dA (`packTransposed(V)`).
    public var valueTransposedLayout: PanelLayout { PanelLayout(k: dOut, n: n, nr: dASchedule.nr) }
    /// B = K `[n, d_in]` for dX (`pack(K)`).
    public var keyPlainLayout: PanelLayout { PanelLayout(k: n, n: dIn, nr: dXSchedule.nr) }
    /// dX = dS·K, reading K in place when its tiles allow it (`GemmShape.inPlaceB`).
    var dXShape: GemmShape { GemmShape(k: n, n: dIn, a: .rowMajor(lda: ld), ldc: dIn, schedule: dXSchedule).inPlaceB(ldb: dIn) }
    /// Whether the Kp argument is K itself rather than `keyPlainLayout.pack(K)`.
    public var readsKeyInPlace: Bool { dXShape.readsBInPlace }

    public var description: String { "pattention_backward d_in=\(dIn) \(site) \(vector.name)\(scoresSaved ? " saved" : "")" }
    public var symbol: String { "tfc_pattention_bwd_" + stableHash(description) }
}

extension IRGen {
    /// Θ's backward over a block of rows: `void act_bwd(const float *S, float *dA, float *dS, i64 rows)`
    /// turns `dA = dL/dΘ(S)` into `dS = dL/dS` for `n` valid columns of row stride `ld`; dS may be
    /// dA (in place) or S (each element of S is read before its dS is written), and dA is
    /// scratch either way.
    /// - l2_norm_gelu, `a = gelu(c·s)`, `c = τ/‖s‖`: `du = dA ⊙ gelu'(c·s)`, `dS = c·(du − s·(s·du)/‖s‖²)`.
    /// - gelu_l2_norm, `a = τ·g/‖g‖`, `g = gelu(s)`: `dS = c·(dA − g·(g·dA)/‖g‖²) ⊙ gelu'(s)`, `c = τ/‖g‖`.
    /// - softmax, `a = n·p`: `dS = n·p ⊙ (dA − p·dA)`.
    func pattentionActivationBackward(_ site: PattentionSite, ld: Int) -> IRFunction {
        let n = site.tokens
        let name = "tfc.act_bwd.\(site.activation.rawValue).n\(n).ld\(ld).tau\(site.tau.bitPattern)"
        return define(name, voidT, [pf32, pf32, pf32, i64], attributes: ["nounwind"]) { fn in
            let S = self.param(fn, 0), D = self.param(fn, 1), Out = self.param(fn, 2), rows = self.param(fn, 3)
            let full = n / self.width * self.width
            let tail = n - full
            let tailMask = self.laneMask(tail)
            let fullEnd = self.i64(full)
            self.loop(0, rows) { r in
                let s = self.gep(S, self.mul(r, ld)), d = self.gep(D, self.mul(r, ld)), out = self.gep(Out, self.mul(r, ld))
                /// `into = f(s, d)` over the row (tail masked): `d` for a step on the way, `out` for the last.
                func mapRow(into: LLVMValueRef, _ f: (LLVMValueRef, LLVMValueRef) -> LLVMValueRef) {
                    self.loop(0, fullEnd, step: self.width) { c in self.storeV(f(self.loadV(s, c), self.loadV(d, c)), into, c) }
                    if tail > 0 {
                        self.maskedStoreV(f(self.maskedLoadV(s, fullEnd, tailMask), self.maskedLoadV(d, fullEnd, tailMask)), into, fullEnd, tailMask)
                    }
                }
                /// Σ f(s, d) over the row (inactive tail lanes excluded).
                func reduceRow(_ f: (LLVMValueRef, LLVMValueRef) -> LLVMValueRef) -> LLVMValueRef {
                    let acc = self.loop(self.i64(0), fullEnd, step: self.width, carried: [self.vzero]) { c, a in
                        [self.fadd(a[0], f(self.loadV(s, c), self.loadV(d, c)))]
                    }
                    var sum = acc[0]
                    if tail > 0 {
                        let v = f(self.maskedLoadV(s, fullEnd, tailMask), self.maskedLoadV(d, fullEnd, tailMask))
                        sum = self.fadd(sum, self.select(tailMask, v, self.vzero))
                    }
                    return self.hsum(sum)
                }
                /// `τ/sqrt(ss)`, or 0 for a zero-norm row (whose output is constant).
                func scale(_ ss: LLVMValueRef) -> LLVMValueRef {
                    let c = self.fdiv(self.f32(site.tau), self.unary("sqrt", ss))
                    return self.select(self.fcmp(LLVMRealOGT, ss, self.f32(0)), c, self.f32(0))
                }
                func inverse(_ ss: LLVMValueRef) -> LLVMValueRef {
                    self.select(self.fcmp(LLVMRealOGT, ss, self.f32(0)), self.fdiv(self.f32(1), ss), self.f32(0))
                }
                switch site.activation {
                case .l2NormGelu:
                    let ss = reduceRow { x, _ in self.fmul(x, x) }
                    let c = self.splat(scale(ss))
                    mapRow(into: d) { x, g in self.fmul(g, self.vgeluDerivative(self.fmul(x, c))) }
                    let k = self.splat(self.fmul(reduceRow { x, du in self.fmul(x, du) }, inverse(ss)))
                    mapRow(into: out) { x, du in self.fmul(c, self.fsub(du, self.fmul(x, k))) }
                case .geluL2Norm:
                    let ss = reduceRow { x, _ in let g = self.vgelu(x); return self.fmul(g, g) }
                    let c = self.splat(scale(ss))
                    let k = self.splat(self.fmul(reduceRow { x, g in self.fmul(self.vgelu(x), g) }, inverse(ss)))
                    mapRow(into: out) { x, g in
                        self.fmul(self.fmul(c, self.fsub(g, self.fmul(self.vgelu(x), k))), self.vgeluDerivative(x))
                    }
                case .softmax:
                    let negInf = self.vsplat(-Float.infinity)
                    let mx = self.loop(self.i64(0), fullEnd, step: self.width, carried: [negInf]) { c, a in
                        [self.fmax(a[0], self.loadV(s, c))]
                    }
                    var m = mx[0]
                    if tail > 0 { m = self.fmax(m, self.select(tailMask, self.maskedLoadV(s, fullEnd, tailMask), negInf)) }
                    let mv = self.splat(self.hmax(m))
                    let sum = reduceRow { x, _ in self.vexp(self.fsub(x, mv)) }
                    let inv = self.splat(self.fdiv(self.f32(1), sum))
                    let dot = self.splat(self.fmul(reduceRow { x, g in self.fmul(self.vexp(self.fsub(x, mv)), g) }, self.extract(inv, 0)))
                    let scaleN = self.fmul(inv, self.vsplat(Float(n)))
                    mapRow(into: out) { x, g in self.fmul(self.fmul(scaleN, self.vexp(self.fsub(x, mv))), self.fsub(g, dot)) }
                }
            }
            self.retVoid()
        }
    }

    /// gelu'(u) = Φ(u) + u·φ(u) for the exact-erf GELU, on a vector.
    func vgeluDerivative(_ u: LLVMValueRef) -> LLVMValueRef {
        let phi = fmul(vsplat(0.5), fadd(vsplat(1), verf(fmul(u, vsplat(Float(1 / 2.0.squareRoot()))))))
        let density = fmul(vsplat(Float(1 / (2 * Double.pi).squareRoot())), vexp(fmul(vsplat(-0.5), fmul(u, u))))
        return fma(u, density, phi)
    }
}

extension KernelModule {
    /// Emits a Pattention backward kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addPattentionBackward(_ spec: PattentionBackwardSpec) -> String {
        precondition(spec.vector == vector, "a \(spec.vector.name) Pattention backward in a \(vector.name) module")
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let rb = PattentionBackwardSpec.rowBlock, n = spec.n, din = spec.dIn, dout = spec.dOut, ld = spec.ld
        let scoreShape = spec.scoreShape
        let dAShape = GemmShape(k: dout, n: n, a: .rowMajor(lda: dout), ldc: ld, schedule: spec.dASchedule)
        let dXShape = spec.dXShape
        let scoreGemm = g.gemmBlock(scoreShape), dAGemm = g.gemmBlock(dAShape), dXGemm = g.gemmBlock(dXShape)
        let act = g.pattentionActivation(spec.site, ld: ld)
        let actBackward = g.pattentionActivationBackward(spec.site, ld: ld)
        let dVSpec = TransposedGemmSpec(m: n, n: dout, lda: ld, ldb: dout, ldc: dout)
        let dKSpec = TransposedGemmSpec(m: n, n: din, lda: ld, ldb: din, ldc: din)
        let dVGemm = g.transposedGemm(dVSpec), dKGemm = g.transposedGemm(dKSpec)
        let block = rb * ld
        let saved = spec.scoresSaved
        let total = (saved ? 1 : 3) * block + max(g.transposedGemmScratch(dVSpec), g.transposedGemmScratch(dKSpec))

        let ppi8 = LLVMPointerType(g.pi8, 0)!
        // Row blocks b0 ..< b1, adding into the given dK and dV (the real ones, or a task's partial sums).
        // `addsDX`: dX += dS·K, else dX = dS·K.
        let blocks = g.define(symbol + ".blocks", g.voidT, [ppi8, g.i64, g.i64, g.i64, g.pf32, g.pf32, g.i1], attributes: ["nounwind"]) { fn in
            let args = g.param(fn, 0), T = g.param(fn, 1), b0 = g.param(fn, 2), b1 = g.param(fn, 3), dK = g.param(fn, 4), dV = g.param(fn, 5)
            let addsDX = g.param(fn, 6)
            let X = g.argPtr(args, 0), Kt = g.argPtr(args, 1), Vt = g.argPtr(args, 2), Kp = g.argPtr(args, 3)
            let dY = g.argPtr(args, 4), dX = g.argPtr(args, 5)
            let scratch = g.threadScratch(floats: g.i64(total))
            let dA = scratch, rest = g.gep(dA, block)
            let blockS = saved ? nil : g.gep(rest, max(g.transposedGemmScratch(dVSpec), g.transposedGemmScratch(dKSpec)))
            g.loop(g.mul(b0, rb), g.smin(T, g.mul(b1, rb)), step: rb) { r0 in
                let rows = g.smin(g.i64(rb), g.sub(T, r0))
                let x = g.gep(X, g.mul(r0, din)), dy = g.gep(dY, g.mul(r0, dout))
                let S: LLVMValueRef, A: LLVMValueRef
                if saved {
                    // This block's rows of the forward's S (in Kt's place) and A (the last argument).
                    S = g.gep(Kt, g.mul(r0, ld)); A = g.gep(g.argPtr(args, 9), g.mul(r0, ld))
                } else {
                    // S = X·Kᵀ, A = Θ(S) for this block.
                    S = blockS!; A = g.gep(S, block)
                    g.call(scoreGemm, [x, Kt, S, rows, g.i64(0), g.i64(scoreShape.panels), g.bool(false)])
                    g.loop(0, rows) { r in g.copyRow(from: g.gep(S, g.mul(r, ld)), to: g.gep(A, g.mul(r, ld)), count: n) }
                    g.call(act, [A, rows])
                }
                // dV += Aᵀ·dY.
                g.call(dVGemm, [A, dy, dV, rows, g.i64(0), g.i64(g.transposedGemmTiles(dVSpec)), rest])
                // dA = dY·Vᵀ, then dS = Θ'(S)ᵀ(dA) in place.
                g.call(dAGemm, [dy, Vt, dA, rows, g.i64(0), g.i64(dAShape.panels), g.bool(false)])
                g.call(actBackward, [S, dA, dA, rows])
                // dK += dSᵀ·X, dX += dS·K.
                g.call(dKGemm, [dA, x, dK, rows, g.i64(0), g.i64(g.transposedGemmTiles(dKSpec)), rest])
                g.call(dXGemm, [dA, Kp, g.gep(dX, g.mul(r0, din)), rows, g.i64(0), g.i64(dXShape.panels), addsDX])
            }
            g.retVoid()
        }
        let partialFloats = n * (din + dout)
        // Task c of `tasks`: a contiguous run of blocks into its own zeroed partial dK, dV.
        // ctx: 0 args, 1 T, 2 block count, 3 tasks, 4 partial sums, 5 p0 (nonzero: dX written)
        let task = g.task(symbol + ".part") { ctx, c in
            let count = g.contextInt(ctx, 2), tasks = g.contextInt(ctx, 3)
            let partial = g.gep(g.contextPtr(ctx, 4), g.mul(c, partialFloats))
            g.loop(0, g.i64(partialFloats)) { i in g.storeF(g.f32(0), partial, i) }
            g.call(blocks, [g.intToPtr(g.contextInt(ctx, 0), ppi8), g.contextInt(ctx, 1), g.sdiv(g.mul(c, count), tasks),
                            g.sdiv(g.mul(g.add(c, g.i64(1)), count), tasks), partial, g.gep(partial, n * din),
                            g.icmp(LLVMIntEQ, g.contextInt(ctx, 5), g.i64(0))])
        }

        // Saved S and A, several threads: two parallel phases, each split without partial sums.
        // 1. Row blocks: dA = dY·Vᵀ, dS = Θ'(S)ᵀ(dA) written over S (the forward's, used only
        //    here), dX (+)= dS·K. 2. Chunks of dK's and dV's row tiles over all T rows: dK += dSᵀ·X,
        //    dV += Aᵀ·dY, block by block of the same rows as the one-thread path, so the bits are
        //    those of one thread.
        let dAMr = dAShape.mr
        // ctx: 0 args, 1 T, 2 row blocks, 3 p0 (nonzero: dX written)
        let rowTask = g.task(symbol + ".rows") { ctx, b in
            let args = g.intToPtr(g.contextInt(ctx, 0), ppi8), T = g.contextInt(ctx, 1)
            let (r0, rows) = g.rowBlockRange(b, blocks: g.contextInt(ctx, 2), rows: T, mr: dAMr)
            let S = g.gep(g.argPtr(args, 1), g.mul(r0, ld)), dA = g.threadScratch(floats: g.i64(block))
            g.call(dAGemm, [g.gep(g.argPtr(args, 4), g.mul(r0, dout)), g.argPtr(args, 2), dA, rows, g.i64(0), g.i64(dAShape.panels), g.bool(false)])
            g.call(actBackward, [S, dA, S, rows])
            g.call(dXGemm, [S, g.argPtr(args, 3), g.gep(g.argPtr(args, 5), g.mul(r0, din)), rows, g.i64(0), g.i64(dXShape.panels),
                            g.icmp(LLVMIntEQ, g.contextInt(ctx, 3), g.i64(0))])
        }
        // ctx: 0 args, 1 T, 2 chunks of each weight gradient; tasks [0, chunks) are dK's, the rest dV's.
        let weightTask = g.task(symbol + ".weights") { ctx, i in
            let args = g.intToPtr(g.contextInt(ctx, 0), ppi8), T = g.contextInt(ctx, 1), chunks = g.contextInt(ctx, 2)
            g.ifElse(g.icmp(LLVMIntSLT, i, chunks), then: {
                g.callTransposedGemmChunk(dKGemm, dKSpec, A: g.argPtr(args, 1), B: g.argPtr(args, 0), C: g.argPtr(args, 6), rows: T, chunk: i, of: chunks)
                return []
            }, otherwise: {
                g.callTransposedGemmChunk(dVGemm, dVSpec, A: g.argPtr(args, 9), B: g.argPtr(args, 4), C: g.argPtr(args, 7), rows: T,
                                          chunk: g.sub(i, chunks), of: chunks)
                return []
            })
        }

        defineKernel(symbol) { args, T, p0 in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let dK = g.argPtr(args, 6), dV = g.argPtr(args, 7), partials = g.argPtr(args, 8)
                let count = g.ceilDiv(T, rb)
                let threads = g.numThreads()
                let tasks = g.smin(count, g.smin(threads, g.i64(spec.maxTasks)))
                let oneThread = g.icmp(LLVMIntSLE, saved ? threads : tasks, g.i64(1))
                g.ifElse(oneThread, then: {
                    g.call(blocks, [args, T, g.i64(0), count, dK, dV, g.icmp(LLVMIntEQ, p0, g.i64(0))])
                    return []
                }, otherwise: {
                    if saved {
                        let rowBlocks = g.rowBlockCount(rows: T, rowBlock: rb, mr: dAMr, threads: threads)
                        g.parallelFor(rowTask, g.makeContext([g.ptrToInt(args), T, rowBlocks, p0]), rowBlocks)
                        let chunks = g.transposedGemmChunks(dKSpec)
                        g.parallelFor(weightTask, g.makeContext([g.ptrToInt(args), T, chunks]), g.mul(chunks, g.i64(2)))
                        return []
                    }
                    g.parallelFor(task, g.makeContext([g.ptrToInt(args), T, count, tasks, partials, p0]), tasks)
                    // The partial sums in task order: the same bits for the same thread count.
                    g.loop(0, tasks) { c in
                        let partial = g.gep(partials, g.mul(c, partialFloats))
                        g.loop(0, g.i64(n * din)) { i in g.storeF(g.fadd(g.loadF(dK, i), g.loadF(partial, i)), dK, i) }
                        g.loop(0, g.i64(n * dout)) { i in g.storeF(g.fadd(g.loadF(dV, i), g.loadF(g.gep(partial, n * din), i)), dV, i) }
                    }
                    return []
                })
            }
        }
        return symbol
    }
}
