import CLLVM

/// A stand-alone GEMM `C[T, n] (+)= norm(X)[T, k] · W[n, k]ᵀ` with W pre-packed
/// (`weightLayout.packTransposed`): the logits product (`x · embedᵀ`, optionally with the final
/// LayerNorm fused as a prologue) and the GEMM benchmarked against OpenBLAS.
///
/// ABI: `args = [X, Wpacked, C]`, plus `[gamma, beta]` when `affineNorm`; `T` = rows;
/// `p0` ignored. X is `[T, ldx]` row-major (first k columns used), C is `[T, ldc]`.
public struct GemmKernelSpec: Hashable, CustomStringConvertible, Sendable {
    public var k: Int
    public var n: Int
    /// LayerNorm of X's rows (eps) applied while packing them; nil: none.
    public var layerNormEps: Float?
    /// With `layerNormEps`: multiply by gamma and add beta (extra args).
    public var affineNorm: Bool
    /// `C += ...` instead of `C = ...`.
    public var accumulate: Bool
    public var ldx: Int
    public var ldc: Int
    public var schedule: GemmSchedule
    /// How rows are parallelised: `.automatic` takes the column path (threads split the
    /// weight panels; X is packed once) for few rows or weights larger than the last-level cache.
    public var parallelism: Parallelism
    /// The micro-kernel (weight format × activation format) the products use.
    public var microKernel: MicroKernelKind

    public enum Parallelism: String, Hashable, Sendable { case automatic, rows, columns }

    public init(k: Int, n: Int, layerNormEps: Float? = nil, affineNorm: Bool = false, accumulate: Bool = false,
                ldx: Int? = nil, ldc: Int? = nil, schedule: GemmSchedule? = nil, parallelism: Parallelism = .automatic,
                microKernel: MicroKernelKind = .f32FMA, for vector: VectorTarget = .avx2) {
        self.k = k
        self.n = n
        self.layerNormEps = layerNormEps
        self.affineNorm = affineNorm
        self.accumulate = accumulate
        self.ldx = ldx ?? k
        self.ldc = ldc ?? n
        self.schedule = schedule ?? GemmSchedule.choose(k: k, n: n, for: vector)
        self.parallelism = parallelism
        self.microKernel = microKernel
    }

    /// The packed layout of W (`packTransposed` from `[n, k]`).
    public var weightLayout: PanelLayout { PanelLayout(k: k, n: n, nr: schedule.panelWidth, format: microKernel.weights) }

    public var description: String {
        var s = "gemm k=\(k) n=\(n)"
        if let eps = layerNormEps { s += " layernorm(eps=\(eps)\(affineNorm ? ", affine" : ""))" }
        if accumulate { s += " accumulate" }
        if ldx != k { s += " ldx=\(ldx)" }
        if ldc != n { s += " ldc=\(ldc)" }
        if microKernel != .f32FMA { s += " \(microKernel.name)" }
        return s + " parallel=\(parallelism.rawValue) [\(schedule)]"
    }

    public var symbol: String { "tfc_gemm_" + stableHash(description) }
}

extension KernelModule {
    /// Emits a GEMM kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addGemm(_ spec: GemmKernelSpec) -> String {
        if let problem = spec.schedule.validate(for: vector) { preconditionFailure("schedule: \(problem)") }
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let sch = spec.schedule
        let shape = GemmShape(k: spec.k, n: spec.n, a: .packed, ldc: spec.ldc, schedule: sch, kernel: spec.microKernel)
        let gemm = g.gemmBlock(shape)
        let pack = g.packRows(k: spec.k, ldx: spec.ldx, mr: sch.mr, layerNormEps: spec.layerNormEps, affine: spec.affineNorm,
                              bf16Pairs: spec.microKernel.activations == .bf16)
        let panels = shape.panels
        let perTask = max(1, (panels + sch.columnTasks - 1) / sch.columnTasks)
        let tasks = (panels + perTask - 1) / perTask
        let bigWeights = spec.k * spec.n * 4 > 24 << 20

        // ctx: 0 X, 1 W, 2 C, 3 T, 4 gamma, 5 beta, 6 Ap (column path) / block count (row path)
        let colTask = g.task(symbol + ".cols") { ctx, i in
            let p0 = g.mul(i, perTask)
            let p1 = g.smin(g.i64(panels), g.add(p0, perTask))
            g.call(gemm, [g.contextPtr(ctx, 6), g.contextPtr(ctx, 1), g.contextPtr(ctx, 2), g.contextInt(ctx, 3), p0, p1, g.bool(spec.accumulate)])
        }
        let rowTask = g.task(symbol + ".rows") { ctx, b in
            let T = g.contextInt(ctx, 3)
            let (r0, rows) = g.rowBlockRange(b, blocks: g.contextInt(ctx, 6), rows: T, mr: sch.mr)
            let Ap = g.threadScratch(floats: g.i64(sch.rowBlock * spec.k))
            g.call(pack, [g.gep(g.contextPtr(ctx, 0), g.mul(r0, spec.ldx)), rows, Ap, g.contextPtr(ctx, 4), g.contextPtr(ctx, 5)])
            g.call(gemm, [Ap, g.contextPtr(ctx, 1), g.gep(g.contextPtr(ctx, 2), g.mul(r0, spec.ldc)), rows, g.i64(0), g.i64(panels), g.bool(spec.accumulate)])
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let X = g.argPtr(args, 0), W = g.argPtr(args, 1), C = g.argPtr(args, 2)
                let gamma = spec.affineNorm ? g.argPtr(args, 3) : g.null(g.pf32)
                let beta = spec.affineNorm ? g.argPtr(args, 4) : g.null(g.pf32)
                let threads = g.numThreads()
                let columns: LLVMValueRef
                switch spec.parallelism {
                case .columns: columns = g.bool(true)
                case .rows: columns = g.bool(false)
                case .automatic:
                    columns = bigWeights ? g.bool(true)
                        : LLVMBuildAnd(g.builder, g.icmp(LLVMIntSLE, T, g.i64(sch.smallRows)), g.icmp(LLVMIntSGT, threads, g.i64(1)), "")!
                }
                g.ifElse(columns, then: {
                    let Ap = g.threadScratch(floats: g.mul(g.mul(g.ceilDiv(T, sch.mr), sch.mr), spec.k))
                    g.call(pack, [X, T, Ap, gamma, beta])
                    let ctx = g.makeContext([X, W, C, T, gamma, beta, Ap])
                    g.parallelFor(colTask, ctx, g.i64(tasks))
                    return []
                }, otherwise: {
                    let blocks = g.rowBlockCount(rows: T, rowBlock: sch.rowBlock, mr: sch.mr, threads: threads)
                    let ctx = g.makeContext([X, W, C, T, gamma, beta, blocks])
                    g.parallelFor(rowTask, ctx, blocks)
                    return []
                })
            }
        }
        return symbol
    }
}
