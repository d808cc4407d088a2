import CLLVM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Θ, the row-wise "modified softmax" of a Pattention site (`norm_activation_type`).
public enum PattentionActivation: String, CaseIterable, Hashable, Sendable {
    /// `gelu(s / ‖s‖₂ · τ)` (the released models).
    case l2NormGelu = "l2_norm_gelu"
    /// `g / ‖g‖₂ · τ` with `g = gelu(s)`.
    case geluL2Norm = "gelu_l2_norm"
    /// `exp(s) / Σ exp(s) · n` (computed with max subtraction).
    case softmax
}

/// GPT-NeoX rotary embedding (rotate-half layout, partial): within each of `heads` heads of
/// `headDim` columns, the first `rotaryDims` rotate by angle `p · inv_freq[j]` where p is the
/// row's absolute position.
public struct RotaryEmbedding: Hashable, Sendable, CustomStringConvertible {
    public var heads: Int
    public var headDim: Int
    public var rotaryDims: Int
    public var base: Double

    /// `rotaryDims = Int(headDim · fraction)` (Python's `int()`), e.g. 64 · 0.25 = 16.
    public init(heads: Int, headDim: Int, fraction: Double = 0.25, base: Double = 10000) {
        self.init(heads: heads, headDim: headDim, rotaryDims: Int(Double(headDim) * fraction), base: base)
    }

    public init(heads: Int, headDim: Int, rotaryDims: Int, base: Double) {
        precondition(rotaryDims >= 0 && rotaryDims <= headDim && rotaryDims % 2 == 0, "rotary dims must be even and at most head_dim")
        self.heads = heads
        self.headDim = headDim
        self.rotaryDims = rotaryDims
        self.base = base
    }

    /// `inv_freq[j] = 1 / base^(2j / rd)`, computed in float32 as the reference does
    /// (`1.0 / (base ** (torch.arange(0, rd, 2).float() / rd))`).
    public var inverseFrequencies: [Float] {
        (0..<rotaryDims / 2).map { j in
            let e = Float(2 * j) / Float(rotaryDims)
            return 1 / powf(Float(base), e)
        }
    }

    public var description: String { "rotary(heads=\(heads), head_dim=\(headDim), dims=\(rotaryDims), base=\(base))" }
}

/// One Pattention site of a fused kernel: parameter tokens `K[tokens, d_in]`,
/// `V[tokens, d_out]`, output `Y[T, d_out]`.
public struct PattentionSite: Hashable, Sendable, CustomStringConvertible {
    public var tokens: Int
    public var dOut: Int
    public var activation: PattentionActivation
    /// τ; defaults to sqrt(tokens).
    public var tau: Float
    /// `Y += out` (residual epilogue) instead of `Y = out`.
    public var residual: Bool
    /// Rotary epilogue on the output (not combined with `residual`).
    public var rotary: RotaryEmbedding?
    /// Row stride of the output (default `dOut`): sites writing side by side into one
    /// `[T, Σ dOut]` buffer pass `ldy = Σ dOut` and `Yᵢ = base + column offset`.
    public var ldy: Int

    public init(tokens: Int, dOut: Int, activation: PattentionActivation = .l2NormGelu, tau: Float? = nil,
                residual: Bool = false, rotary: RotaryEmbedding? = nil, ldy: Int? = nil) {
        precondition(tokens > 0 && dOut > 0 && (ldy ?? dOut) >= dOut)
        precondition(!(residual && rotary != nil), "a site has either a residual or a rotary epilogue")
        if let r = rotary { precondition(r.heads * r.headDim == dOut, "rotary heads x head_dim must equal d_out") }
        self.tokens = tokens
        self.dOut = dOut
        self.activation = activation
        self.tau = tau ?? Float(Double(tokens).squareRoot())
        self.residual = residual
        self.rotary = rotary
        self.ldy = ldy ?? dOut
    }

    public var description: String {
        var s = "site(n=\(tokens), d_out=\(dOut), \(activation.rawValue), tau=\(tau)"
        if residual { s += ", residual" }
        if let r = rotary { s += ", \(r)" }
        if ldy != dOut { s += ", ldy=\(ldy)" }
        return s + ")"
    }
}

/// A fused Pattention kernel: for `X[T, d_in]` and each site, `out = Θ(X·Kᵀ)·V`, written
/// (or added) to the site's output, without ever materialising the `[T, n]` scores: rows
/// are processed in blocks (`schedule.rowBlock`) whose scores live in per-thread scratch;
/// blocks are the parallel axis. With few rows (≤ `schedule.smallRows`, more than one
/// thread) threads instead split the weight panels (decode-time GEMV).
///
/// Options: `layerNormEps` (non-parametric LayerNorm of X's rows, applied while packing them;
/// X is not modified), per-site residual/rotary epilogues, several sites sharing one pass
/// over X (horizontal fusion: query/key/value).
///
/// ABI: `args = [X, K₀, V₀, Y₀, K₁, V₁, Y₁, ...]`, `T` rows, `p0` = absolute position of
/// row 0 (rotary). X is `[T, ldx]`, `Yᵢ` is `[T, ldyᵢ]` (row-major; only the first
/// `d_in` / `d_outᵢ` columns are read / written). `Kᵢ`/`Vᵢ` are packed with
/// `keyLayout(i)`/`valueLayout(i)`.
/// A row whose scores are all zero yields zeros (‖s‖ = 0 is treated as s/‖s‖ = 0).
/// A residual site's output may alias X (`x += Pattention(LN(x))` in place): each row block
/// is packed before any of its outputs are written.
public struct PattentionKernelSpec: Hashable, Sendable, CustomStringConvertible {
    public var dIn: Int
    /// Row stride of X (default `dIn`).
    public var ldx: Int
    public var layerNormEps: Float?
    public var sites: [PattentionSite]
    /// Schedule of the score GEMMs `X·Kᵀ` (also: rows per block, the small-T threshold).
    public var schedule: GemmSchedule
    /// Schedule of the value GEMMs `A·V` (its `mr`, `nr`, `kc`, `unroll`, `columnTasks` are used).
    public var valueSchedule: GemmSchedule
    /// The micro-kernel (weight format × activation format) both products use.
    public var microKernel: MicroKernelKind

    /// Schedules not given are chosen for `vector`.
    public init(dIn: Int, layerNormEps: Float? = nil, sites: [PattentionSite], schedule: GemmSchedule? = nil, valueSchedule: GemmSchedule? = nil,
                ldx: Int? = nil, microKernel: MicroKernelKind = .f32FMA, for vector: VectorTarget = .avx2) {
        precondition(dIn > 0 && !sites.isEmpty && (ldx ?? dIn) >= dIn)
        self.dIn = dIn
        self.ldx = ldx ?? dIn
        self.layerNormEps = layerNormEps
        self.sites = sites
        self.microKernel = microKernel
        let maxN = sites.map(\.tokens).max()!
        self.schedule = schedule ?? GemmSchedule.choose(k: dIn, n: maxN, for: vector)
        self.valueSchedule = valueSchedule ?? GemmSchedule.choose(k: maxN, n: sites.map(\.dOut).max()!, for: vector)
    }

    /// One site, the common case.
    public init(dIn: Int, site: PattentionSite, layerNormEps: Float? = nil, schedule: GemmSchedule? = nil, for vector: VectorTarget = .avx2) {
        self.init(dIn: dIn, layerNormEps: layerNormEps, sites: [site], schedule: schedule, for: vector)
    }

    public func keyLayout(_ site: Int) -> PanelLayout { PanelLayout(k: dIn, n: sites[site].tokens, nr: schedule.panelWidth, format: microKernel.weights) }
    public func valueLayout(_ site: Int) -> PanelLayout {
        PanelLayout(k: sites[site].tokens, n: sites[site].dOut, nr: valueSchedule.panelWidth, format: microKernel.weights)
    }

    /// Leading dimension of a site's score block (padded to the panel width, and away from
    /// multiples of 4 KiB so the value GEMM's row streams do not alias in L1).
    func scoreStride(_ site: Int) -> Int {
        var ld = roundUp(sites[site].tokens, schedule.nr)
        if ld % 128 == 0 { ld += 16 }
        return ld
    }

    public var description: String {
        var s = "pattention d_in=\(dIn)" + (ldx != dIn ? " ldx=\(ldx)" : "")
        if let eps = layerNormEps { s += " layernorm(eps=\(eps))" }
        s += " " + sites.map(\.description).joined(separator: " ")
        if microKernel != .f32FMA { s += " \(microKernel.name)" }
        return s + " scores[\(schedule)] values[\(valueSchedule)]"
    }

    public var symbol: String { "tfc_pattention_" + stableHash(description) }

    /// Scratch floats per thread for the row-parallel path (packed rows + one score block).
    public var rowPathScratchFloats: Int {
        let rb = schedule.rowBlock
        return rb * dIn + rb * (0..<sites.count).map(scoreStride).max()!
    }
}

extension IRGen {
    /// The activation pass over a block of scores: `void act(float *S, i64 rows)`, in place,
    /// for `n` valid columns of row stride `ld`.
    func pattentionActivation(_ site: PattentionSite, ld: Int) -> IRFunction {
        let n = site.tokens
        let name = "tfc.act.\(site.activation.rawValue).n\(n).ld\(ld).tau\(site.tau.bitPattern)"
        return define(name, voidT, [pf32, i64], attributes: ["nounwind"]) { fn in
            let S = self.param(fn, 0), rows = self.param(fn, 1)
            let full = n / self.width * self.width
            let tail = n - full
            let tailMask = self.laneMask(tail)
            let fullEnd = self.i64(full)
            self.loop(0, rows) { r in
                let row = self.gep(S, self.mul(r, ld))
                /// Applies `f` to every vector of the row (tail masked) and stores the result.
                func mapRow(_ f: (LLVMValueRef) -> LLVMValueRef) {
                    self.loop(0, fullEnd, step: self.width) { c in self.storeV(f(self.loadV(row, c)), row, c) }
                    if tail > 0 { self.maskedStoreV(f(self.maskedLoadV(row, fullEnd, tailMask)), row, fullEnd, tailMask) }
                }
                /// Σ f(v) over the row (inactive tail lanes excluded).
                func reduceRow(_ f: (LLVMValueRef) -> LLVMValueRef) -> LLVMValueRef {
                    let acc = self.loop(self.i64(0), fullEnd, step: self.width, carried: [self.vzero]) { c, a in
                        [self.fadd(a[0], f(self.loadV(row, c)))]
                    }
                    var sum = acc[0]
                    if tail > 0 { sum = self.fadd(sum, self.select(tailMask, f(self.maskedLoadV(row, fullEnd, tailMask)), self.vzero)) }
                    return self.hsum(sum)
                }
                /// tau / sqrt(ss), or 0 when ss == 0.
                func inverseNorm(_ ss: LLVMValueRef) -> LLVMValueRef {
                    let scale = self.fdiv(self.f32(site.tau), self.unary("sqrt", ss))
                    return self.splat(self.select(self.fcmp(LLVMRealOGT, ss, self.f32(0)), scale, self.f32(0)))
                }
                switch site.activation {
                case .l2NormGelu:
                    let c = inverseNorm(reduceRow { self.fmul($0, $0) })
                    mapRow { self.vgelu(self.fmul($0, c)) }
                case .geluL2Norm:
                    mapRow { self.vgelu($0) }
                    let c = inverseNorm(reduceRow { self.fmul($0, $0) })
                    mapRow { self.fmul($0, c) }
                case .softmax:
                    let negInf = self.vsplat(-Float.infinity)
                    let mx = self.loop(self.i64(0), fullEnd, step: self.width, carried: [negInf]) { c, a in
                        [self.fmax(a[0], self.loadV(row, c))]
                    }
                    var m = mx[0]
                    if tail > 0 { m = self.fmax(m, self.select(tailMask, self.maskedLoadV(row, fullEnd, tailMask), negInf)) }
                    let mv = self.splat(self.hmax(m))
                    mapRow { self.vexp(self.fsub($0, mv)) }
                    let sum = reduceRow { $0 }
                    let c = self.splat(self.fdiv(self.f32(Float(n)), sum))
                    mapRow { self.fmul($0, c) }
                }
            }
            self.retVoid()
        }
    }

    /// The rotary epilogue: `void rope(float *Y, i64 rows, i64 pos0)` rotates, in each row
    /// (absolute position pos0 + row) and head, the first `rotaryDims` columns (rotate-half).
    /// Angles are `float(p) · inv_freq[j]` in float32 like the reference; cos/sin in double.
    func rotaryEpilogue(_ r: RotaryEmbedding, ld: Int) -> IRFunction {
        let half = r.rotaryDims / 2
        let name = "tfc.rope.h\(r.heads).d\(r.headDim).r\(r.rotaryDims).b\(r.base.bitPattern).ld\(ld)"
        return define(name, voidT, [pf32, i64, i64], attributes: ["nounwind"]) { fn in
            let Y = self.param(fn, 0), rows = self.param(fn, 1), pos0 = self.param(fn, 2)
            guard half > 0 else { self.retVoid(); return }
            let cosBuf = self.alloca(self.f32, count: half), sinBuf = self.alloca(self.f32, count: half)
            let inv = r.inverseFrequencies
            self.loop(0, rows) { row in
                let p = self.sitofp(self.add(pos0, row), self.f32)
                for j in 0..<half {
                    let theta = self.fpext(self.fmul(p, self.f32(inv[j])))
                    self.storeF(self.fptrunc(self.unary("cos", theta)), cosBuf, j)
                    self.storeF(self.fptrunc(self.unary("sin", theta)), sinBuf, j)
                }
                let y = self.gep(Y, self.mul(row, ld))
                // The `half` columns as one `<half x float>` vector: written as scalars, LLVM's
                // loop vectoriser widened the heads loop instead (stride head_dim: gathers and
                // scatters on AVX-512); a loop holding vectors is left alone.
                let pHalf = LLVMPointerType(LLVMVectorType(self.f32, UInt32(half)), 0)!
                let c = self.load(self.bitcast(cosBuf, pHalf)), s = self.load(self.bitcast(sinBuf, pHalf))
                self.loop(0, self.i64(r.heads)) { h in
                    let base = self.gep(y, self.mul(h, r.headDim))
                    let p1 = self.bitcast(base, pHalf), p2 = self.bitcast(self.gep(base, half), pHalf)
                    let x1 = self.load(p1), x2 = self.load(p2)
                    // torch: x * cos + rotate_half(x) * sin, rounded per operation (lane-wise).
                    self.store(self.fadd(self.fmul(x1, c), self.fmul(self.fneg(x2), s)), p1)
                    self.store(self.fadd(self.fmul(x2, c), self.fmul(x1, s)), p2)
                }
            }
            self.retVoid()
        }
    }
}

extension KernelModule {
    /// Emits a fused Pattention kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addPattention(_ spec: PattentionKernelSpec) -> String {
        for s in [spec.schedule, spec.valueSchedule] {
            if let problem = s.validate(for: vector) { preconditionFailure("schedule: \(problem)") }
        }
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let sch = spec.schedule, vsch = spec.valueSchedule
        let m = spec.sites.count
        let ld = (0..<m).map(spec.scoreStride)
        // bf16 activations (vdpbf16ps): X is rounded to bf16 pairs as it is packed, and each
        // score block after its activation (in place, `scoresToBF16Pairs`).
        let bf16Activations = spec.microKernel.activations == .bf16
        let pack = g.packRows(k: spec.dIn, ldx: spec.ldx, mr: sch.mr, layerNormEps: spec.layerNormEps, bf16Pairs: bf16Activations)
        let scoreShapes = (0..<m).map { GemmShape(k: spec.dIn, n: spec.sites[$0].tokens, a: .packed, ldc: ld[$0], schedule: sch, kernel: spec.microKernel) }
        var vschRows = vsch
        vschRows.rowBlock = sch.rowBlock  // the value GEMMs see the score GEMMs' row blocks
        let valueShapes = (0..<m).map { GemmShape(k: spec.sites[$0].tokens, n: spec.sites[$0].dOut, a: .rowMajor(lda: ld[$0]), ldc: spec.sites[$0].ldy, schedule: vschRows, kernel: spec.microKernel) }
        let scoreGemm = scoreShapes.map { g.gemmBlock($0) }
        let valueGemm = valueShapes.map { g.gemmBlock($0) }
        let act = (0..<m).map { g.pattentionActivation(spec.sites[$0], ld: ld[$0]) }
        let toPairs = (0..<m).map { bf16Activations ? g.scoresToBF16Pairs(n: spec.sites[$0].tokens, ld: ld[$0]) : nil }
        let rope = (0..<m).map { i in spec.sites[i].rotary.map { g.rotaryEpilogue($0, ld: spec.sites[i].ldy) } }
        let rb = sch.rowBlock
        let maxLd = ld.max()!

        // Row-parallel path. ctx: 0 args, 1 T, 2 p0, 3 block count.
        let rowTask = g.task(symbol + ".rows") { ctx, b in
            let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
            let T = g.contextInt(ctx, 1), p0 = g.contextInt(ctx, 2)
            let (r0, rows) = g.rowBlockRange(b, blocks: g.contextInt(ctx, 3), rows: T, mr: sch.mr)
            let scratch = g.threadScratch(floats: g.i64(rb * spec.dIn + rb * maxLd))
            let Ap = scratch, S = g.gep(scratch, rb * spec.dIn)
            g.call(pack, [g.gep(g.argPtr(args, 0), g.mul(r0, spec.ldx)), rows, Ap, g.null(g.pf32), g.null(g.pf32)])
            for i in 0..<m {
                let site = spec.sites[i]
                let K = g.argPtr(args, 1 + 3 * i), V = g.argPtr(args, 2 + 3 * i)
                let Y = g.gep(g.argPtr(args, 3 + 3 * i), g.mul(r0, site.ldy))
                g.call(scoreGemm[i], [Ap, K, S, rows, g.i64(0), g.i64(scoreShapes[i].panels), g.bool(false)])
                g.call(act[i], [S, rows])
                if let toPairs = toPairs[i] { g.call(toPairs, [S, rows]) }
                g.call(valueGemm[i], [S, V, Y, rows, g.i64(0), g.i64(valueShapes[i].panels), g.bool(site.residual)])
                if let rope = rope[i] { g.call(rope, [Y, rows, g.add(p0, r0)]) }
            }
        }

        // Column-parallel path. ctx: 0 args, 1 T, 2 p0, 3 Ap, 4 + i: S of site i.
        func grouped(_ panels: Int, _ tasks: Int) -> (perTask: Int, tasks: Int) {
            let per = max(1, (panels + tasks - 1) / tasks)
            return (per, (panels + per - 1) / per)
        }
        let scoreSplit = scoreShapes.map { grouped($0.panels, sch.columnTasks) }
        let valueSplit = valueShapes.map { grouped($0.panels, vsch.columnTasks) }
        /// A task function whose index range is the concatenation of every site's tasks.
        func siteTasks(_ name: String, _ split: [(perTask: Int, tasks: Int)], _ body: @escaping (LLVMValueRef, Int, LLVMValueRef, LLVMValueRef) -> Void) -> IRFunction {
            g.task(name) { ctx, index in
                var begin = 0
                for i in 0..<m {
                    let end = begin + split[i].tasks
                    let inSite = LLVMBuildAnd(g.builder, g.icmp(LLVMIntSGE, index, g.i64(begin)), g.icmp(LLVMIntSLT, index, g.i64(end)), "")!
                    let local = g.sub(index, g.i64(begin))
                    g.ifThen(inSite) {
                        let pBegin = g.mul(local, split[i].perTask)
                        body(ctx, i, pBegin, g.add(pBegin, split[i].perTask))
                    }
                    begin = end
                }
            }
        }
        let scoreTask = siteTasks(symbol + ".scores", scoreSplit) { ctx, i, pBegin, pEnd in
            let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
            let end = g.smin(pEnd, g.i64(scoreShapes[i].panels))
            g.call(scoreGemm[i], [g.contextPtr(ctx, 3), g.argPtr(args, 1 + 3 * i), g.contextPtr(ctx, 4 + i), g.contextInt(ctx, 1), pBegin, end, g.bool(false)])
        }
        let valueTask = siteTasks(symbol + ".values", valueSplit) { ctx, i, pBegin, pEnd in
            let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
            let end = g.smin(pEnd, g.i64(valueShapes[i].panels))
            g.call(valueGemm[i], [g.contextPtr(ctx, 4 + i), g.argPtr(args, 2 + 3 * i), g.argPtr(args, 3 + 3 * i), g.contextInt(ctx, 1), pBegin, end,
                                  g.bool(spec.sites[i].residual)])
        }

        // The activation pass of the column path, one (site, row) per task.
        let actTask = g.task(symbol + ".act") { ctx, index in
            let T = g.contextInt(ctx, 1)
            let site = g.sdiv(index, T), row = LLVMBuildSRem(g.builder, index, T, "")!
            g.switchOn(site, cases: (0..<m).map { i in (i, {
                let S = g.gep(g.contextPtr(ctx, 4 + i), g.mul(row, ld[i]))
                g.call(act[i], [S, g.i64(1)])
                if let toPairs = toPairs[i] { g.call(toPairs, [S, g.i64(1)]) }
            }) })
        }

        defineKernel(symbol) { args, T, p0 in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let threads = g.numThreads()
                let small = LLVMBuildAnd(g.builder, g.icmp(LLVMIntSLE, T, g.i64(sch.smallRows)), g.icmp(LLVMIntSGT, threads, g.i64(1)), "")!
                g.ifElse(small, then: {
                    let tPad = g.mul(g.ceilDiv(T, sch.mr), sch.mr)
                    let apFloats = g.mul(tPad, spec.dIn)
                    var offsets: [LLVMValueRef] = []
                    var total = apFloats
                    for i in 0..<m {
                        offsets.append(total)
                        total = g.add(total, g.mul(g.mul(g.ceilDiv(tPad, 16), 16), ld[i]))
                    }
                    let scratch = g.threadScratch(floats: total)
                    g.call(pack, [g.argPtr(args, 0), T, scratch, g.null(g.pf32), g.null(g.pf32)])
                    let ctx = g.makeContext([g.ptrToInt(args), T, p0, scratch] + offsets.map { g.gep(scratch, $0) })
                    g.parallelFor(scoreTask, ctx, g.i64(scoreSplit.map(\.tasks).reduce(0, +)))
                    g.parallelFor(actTask, ctx, g.mul(T, g.i64(m)))
                    g.parallelFor(valueTask, ctx, g.i64(valueSplit.map(\.tasks).reduce(0, +)))
                    for i in 0..<m { if let rope = rope[i] { g.call(rope, [g.argPtr(args, 3 + 3 * i), T, p0]) } }
                    return []
                }, otherwise: {
                    let blocks = g.rowBlockCount(rows: T, rowBlock: rb, mr: sch.mr, threads: threads)
                    let ctx = g.makeContext([g.ptrToInt(args), T, p0, blocks])
                    g.parallelFor(rowTask, ctx, blocks)
                    return []
                })
            }
        }
        return symbol
    }
}
