import CLLVM

/// The forward of one Pattention site for training, keeping what its backward would recompute:
/// per block of rows `S = X·Kᵀ` and `A = Θ(S)` are written to `[T, ld]` buffers the caller keeps
/// until the backward (`PattentionBackwardSpec.scoresSaved`), then `Y = A·V`. The score GEMM and
/// Θ are the backward's own (`scoreShape`, `pattentionActivation`), so the saved S and A are
/// bit for bit what the backward would have recomputed. Row blocks are the parallel axis.
///
/// ABI: `args = [X [T, d_in], Kt, Vp, Y [T, d_out], S [T, ld], A [T, ld]]`, `T` rows; `p0` ignored.
/// Kt = `keyLayout.packTransposed(K)`, Vp = `forwardValueLayout.pack(V)`, or V itself when
/// `readsValueInPlace` (Y = A·V then reads V's rows in place).
extension PattentionBackwardSpec {
    var forwardValueSchedule: GemmSchedule { GemmSchedule.choose(k: n, n: dOut, for: vector) }
    /// B = V `[n, d_out]` for the forward's `Y = A·V` (`pack(V)`).
    public var forwardValueLayout: PanelLayout { PanelLayout(k: n, n: dOut, nr: forwardValueSchedule.nr) }
    /// Y = A·V, reading V in place when its tiles allow it (`GemmShape.inPlaceB`).
    var forwardValueShape: GemmShape { GemmShape(k: n, n: dOut, a: .rowMajor(lda: ld), ldc: dOut, schedule: forwardValueSchedule).inPlaceB(ldb: dOut) }
    /// Whether the Vp argument is V itself rather than `forwardValueLayout.pack(V)`.
    public var readsValueInPlace: Bool { forwardValueShape.readsBInPlace }
    /// The training forward's symbol (one per site shape and target, saved or not).
    public var trainingForwardSymbol: String { "tfc_pattention_train_fwd_" + stableHash("pattention_train_forward d_in=\(dIn) \(site) \(vector.name)") }
}

extension KernelModule {
    /// Emits the training forward of a Pattention site (once per distinct shape) and returns its symbol.
    @discardableResult
    public func addPattentionTrainingForward(_ spec: PattentionBackwardSpec) -> String {
        precondition(spec.vector == vector, "a \(spec.vector.name) Pattention forward in a \(vector.name) module")
        let symbol = spec.trainingForwardSymbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let rb = PattentionBackwardSpec.rowBlock, n = spec.n, din = spec.dIn, dout = spec.dOut, ld = spec.ld
        let scoreShape = spec.scoreShape
        let valueShape = spec.forwardValueShape
        let scoreGemm = g.gemmBlock(scoreShape), valueGemm = g.gemmBlock(valueShape)
        let act = g.pattentionActivation(spec.site, ld: ld)

        // ctx: 0 X, 1 Kt, 2 Vp, 3 Y, 4 S, 5 A, 6 T, 7 blocks
        let mr = scoreShape.mr
        let perBlock = g.task(symbol + ".block") { ctx, b in
            let T = g.contextInt(ctx, 6)
            let (r0, rows) = g.rowBlockRange(b, blocks: g.contextInt(ctx, 7), rows: T, mr: mr)
            let S = g.gep(g.contextPtr(ctx, 4), g.mul(r0, ld)), A = g.gep(g.contextPtr(ctx, 5), g.mul(r0, ld))
            g.call(scoreGemm, [g.gep(g.contextPtr(ctx, 0), g.mul(r0, din)), g.contextPtr(ctx, 1), S, rows, g.i64(0), g.i64(scoreShape.panels), g.bool(false)])
            g.loop(0, rows) { r in g.copyRow(from: g.gep(S, g.mul(r, ld)), to: g.gep(A, g.mul(r, ld)), count: n) }
            g.call(act, [A, rows])
            g.call(valueGemm, [A, g.contextPtr(ctx, 2), g.gep(g.contextPtr(ctx, 3), g.mul(r0, dout)), rows, g.i64(0), g.i64(valueShape.panels), g.bool(false)])
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                // Blocks of at most `rb` rows, as many a thread (each row's bits are its own).
                let blocks = g.rowBlockCount(rows: T, rowBlock: rb, mr: mr, threads: g.numThreads())
                let ctx = g.makeContext((0..<6).map { g.argPtr(args, $0) } + [T, blocks])
                g.parallelFor(perBlock, ctx, blocks)
            }
        }
        return symbol
    }
}
