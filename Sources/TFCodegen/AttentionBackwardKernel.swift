import CLLVM

/// Flash-style backward of multi-head attention over positions `0 ..< T` (training): from the
/// saved q, k, v and dY it adds dq, dk and dv, never forming the `[T, T]` probabilities. Per head
/// and query row i, over the visible keys 8 at a time (keys and values transposed per head into
/// blocks of 8 positions, as in the KV cache): the scores `q·k_j·scale` and their maximum, then
/// `p_j = exp(s_j − max) / Σ exp` (the row's softmax, recomputed from q and k: its logsumexp is
/// not saved by the forward) and `dp_j = dY_i·v_j`, `D = Σ p·dp`, `ds_j = p_j·(dp_j − D)` — one row
/// of each in scratch — and per key `dq_i += scale·ds_j·k_j`, `dk_j += scale·ds_j·q_i`,
/// `dv_j += p_j·dY_i`. Heads are the parallel axis (each head writes only its own columns).
///
/// ABI: `args = [Q, K, V, dY, dQ (+=), dK (+=), dV (+=)]`, each `[T, heads·head_dim]` row-major
/// with head h in columns `h·head_dim ..< (h+1)·head_dim`; `T` rows; `p0` ignored.
public struct AttentionBackwardSpec: Hashable, Sendable, CustomStringConvertible {
    public var heads: Int
    public var headDim: Int
    public var causal: Bool
    public var scale: Float

    public init(heads: Int, headDim: Int, causal: Bool) {
        precondition(heads > 0 && headDim > 0)
        self.heads = heads; self.headDim = headDim; self.causal = causal
        scale = Float(1 / Double(headDim).squareRoot())
    }

    var width: Int { heads * headDim }
    public var description: String { "attention_backward heads=\(heads) head_dim=\(headDim) scale=\(scale)\(causal ? "" : " non-causal")" }
    public var symbol: String { "tfc_attention_bwd_" + stableHash(description) }
}

extension KernelModule {
    /// Emits an attention backward kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addAttentionBackward(_ spec: AttentionBackwardSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let Dh = spec.headDim, ld = spec.width
        let vectors = (Dh + g.width - 1) / g.width
        let tail = Dh % g.width

        let lanes = g.width
        // ctx: 0 Q, 1 K, 2 V, 3 dY, 4 dQ, 5 dK, 6 dV, 7 T
        let perHead = g.task(symbol + ".head") { ctx, h in
            let ptr = (0..<7).map { g.gep(g.contextPtr(ctx, $0), g.mul(h, Dh)) }
            let (Q, K, V, dY, dQ, dK, dV) = (ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6])
            let T = g.contextInt(ctx, 7)
            // Scratch: the head's keys and values transposed in blocks of 8 positions
            // (`[T/8][head_dim][8]`, as in the KV cache) so 8 scores come from head_dim FMAs,
            // then one row of probabilities and one of their gradients.
            let blocks = g.ceilDiv(T, lanes)
            let padded = g.mul(blocks, lanes)
            let scratch = g.threadScratch(floats: g.mul(padded, 2 * Dh + 2))
            let Kt = scratch, Vt = g.gep(scratch, g.mul(padded, Dh))
            let P = g.gep(Vt, g.mul(padded, Dh)), dP = g.gep(P, padded)
            g.loop(g.sub(padded, g.i64(lanes)), padded) { pos in  // the last block's padding lanes read as zero
                g.loop(0, g.i64(Dh)) { d in
                    let at = g.add(g.mul(g.sdiv(pos, g.i64(lanes)), Dh * lanes), g.add(g.mul(d, lanes), LLVMBuildSRem(g.builder, pos, g.i64(lanes), "")!))
                    g.storeF(g.f32(0), Kt, at)
                    g.storeF(g.f32(0), Vt, at)
                }
            }
            g.loop(0, T) { pos in
                let block = g.mul(g.sdiv(pos, g.i64(lanes)), Dh * lanes), lane = LLVMBuildSRem(g.builder, pos, g.i64(lanes), "")!
                g.loop(0, g.i64(Dh)) { d in
                    let at = g.add(block, g.add(g.mul(d, lanes), lane))
                    g.storeF(g.loadF(K, g.add(g.mul(pos, ld), d)), Kt, at)
                    g.storeF(g.loadF(V, g.add(g.mul(pos, ld), d)), Vt, at)
                }
            }
            let tailMask = tail > 0 ? g.laneMask(tail) : nil
            /// The head's `head_dim` floats of row `row` of `m` as vectors (tail lanes zero).
            func load(_ m: LLVMValueRef, _ row: LLVMValueRef) -> [LLVMValueRef] {
                (0..<vectors).map { v in
                    let off = g.add(g.mul(row, ld), v * g.width)
                    return v == vectors - 1 && tailMask != nil ? g.maskedLoadV(m, off, tailMask!) : g.loadV(m, off)
                }
            }
            /// Adds `x` into the head's floats of row `row` of `m`.
            func addInto(_ m: LLVMValueRef, _ row: LLVMValueRef, _ x: [LLVMValueRef]) {
                let old = load(m, row)
                for v in 0..<vectors {
                    let off = g.add(g.mul(row, ld), v * g.width)
                    let sum = g.fadd(old[v], x[v])
                    if v == vectors - 1, let mask = tailMask { g.maskedStoreV(sum, m, off, mask) } else { g.storeV(sum, m, off) }
                }
            }
            /// 8 dot products: `Σ_d x[d] · Mt[block][d][lane]`.
            func dots(_ x: [LLVMValueRef], _ Mt: LLVMValueRef, _ block: LLVMValueRef) -> LLVMValueRef {
                let base = g.gep(Mt, g.mul(block, Dh * lanes))
                var acc = g.vzero
                for d in 0..<Dh { acc = g.fma(x[d], g.loadV(base, d * lanes), acc) }
                return acc
            }
            let scale = g.f32(spec.scale), scaleV = g.splat(scale)
            let laneIndex = g.constVector((0..<lanes).map { g.i32($0) })
            let negInf = g.vsplat(-Float.infinity)
            g.loop(0, T) { i in
                let visible = spec.causal ? g.add(i, g.i64(1)) : T
                let visibleBlocks = g.ceilDiv(visible, lanes)
                /// Lanes of block `b` at positions `< visible`.
                func valid(_ b: LLVMValueRef) -> LLVMValueRef {
                    let first = g.trunc32(g.sub(visible, g.mul(b, lanes)))
                    return g.icmp(LLVMIntSLT, laneIndex, g.splat(first))
                }
                let qs = (0..<Dh).map { g.splat(g.loadF(Q, g.add(g.mul(i, ld), $0))) }
                let dys = (0..<Dh).map { g.splat(g.loadF(dY, g.add(g.mul(i, ld), $0))) }
                // Pass 1: scores (masked lanes −∞) and their maximum.
                let mx = g.loop(g.i64(0), visibleBlocks, carried: [negInf]) { b, c in
                    let s = g.select(valid(b), g.fmul(dots(qs, Kt, b), scaleV), negInf)
                    g.storeV(s, P, g.mul(b, lanes))
                    return [g.fmax(c[0], s)]
                }
                let m = g.splat(g.hmax(mx[0]))
                // Pass 2: e = exp(s − max) and its sum; dp = dY·v_j.
                let sums = g.loop(g.i64(0), visibleBlocks, carried: [g.vzero]) { b, c in
                    let e = g.vexp(g.fsub(g.loadV(P, g.mul(b, lanes)), m))
                    g.storeV(e, P, g.mul(b, lanes))
                    g.storeV(dots(dys, Vt, b), dP, g.mul(b, lanes))
                    return [g.fadd(c[0], e)]
                }
                let inverse = g.splat(g.fdiv(g.f32(1), g.hsum(sums[0])))
                // Pass 3: p = e / Σe, D = Σ p·dp.
                let dsum = g.loop(g.i64(0), visibleBlocks, carried: [g.vzero]) { b, c in
                    let p = g.fmul(g.loadV(P, g.mul(b, lanes)), inverse)
                    g.storeV(p, P, g.mul(b, lanes))
                    return [g.fma(p, g.loadV(dP, g.mul(b, lanes)), c[0])]
                }
                let dv = g.splat(g.hsum(dsum[0]))
                // Pass 4: ds = p·(dp − D) in place of dp (masked lanes have p = 0).
                g.loop(g.i64(0), visibleBlocks) { b in
                    let off = g.mul(b, lanes)
                    g.storeV(g.fmul(g.loadV(P, off), g.fsub(g.loadV(dP, off), dv)), dP, off)
                }
                // Pass 5, per key: dq_i += ds_j·k_j, dk_j += scale·ds_j·q_i, dv_j += p_j·dY_i.
                let q = load(Q, i), dy = load(dY, i)
                let dq = g.loop(g.i64(0), visible, carried: [LLVMValueRef](repeating: g.vzero, count: vectors)) { j, acc in
                    let ds = g.loadF(dP, j)
                    let k = load(K, j)
                    let dsv = g.splat(ds), scaled = g.splat(g.fmul(ds, scale)), pv = g.splat(g.loadF(P, j))
                    addInto(dK, j, q.map { g.fmul(scaled, $0) })
                    addInto(dV, j, dy.map { g.fmul(pv, $0) })
                    return (0..<vectors).map { g.fma(dsv, k[$0], acc[$0]) }
                }
                addInto(dQ, i, dq.map { g.fmul(scaleV, $0) })
            }
        }

        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let ctx = g.makeContext((0..<7).map { g.argPtr(args, $0) } + [T])
                g.parallelFor(perHead, ctx, g.i64(spec.heads))
            }
        }
        return symbol
    }
}
