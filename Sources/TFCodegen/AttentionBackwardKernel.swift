import CLLVM

/// Flash-style backward of multi-head attention over positions `0 ..< T` (training): from the
/// saved q, k, v and dY it adds dq, dk and dv, never forming the `[T, T]` probabilities. Per head
/// and query row i: one pass over the visible keys computes the row's logsumexp (online max and
/// sum), a second recomputes `p_j = exp(q·k_j·scale − lse)` and `dp_j = dY_i·v_j` (one row of
/// each in scratch) and `D = Σ p·dp`, a third adds `ds_j = p_j·(dp_j − D)` into
/// `dq_i += scale·ds_j·k_j`, `dk_j += scale·ds_j·q_i`, `dv_j += p_j·dY_i`. Heads are the
/// parallel axis (each head writes only its own columns).
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

        // ctx: 0 Q, 1 K, 2 V, 3 dY, 4 dQ, 5 dK, 6 dV, 7 T
        let perHead = g.task(symbol + ".head") { ctx, h in
            let ptr = (0..<7).map { g.gep(g.contextPtr(ctx, $0), g.mul(h, Dh)) }
            let (Q, K, V, dY, dQ, dK, dV) = (ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6])
            let T = g.contextInt(ctx, 7)
            let P = g.threadScratch(floats: g.mul(T, 2)), dP = g.gep(P, T)
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
            func dot(_ a: [LLVMValueRef], _ b: [LLVMValueRef]) -> LLVMValueRef {
                var acc = g.fmul(a[0], b[0])
                for v in 1..<vectors { acc = g.fma(a[v], b[v], acc) }
                return g.hsum(acc)
            }
            let scale = g.f32(spec.scale)
            g.loop(0, T) { i in
                let visible = spec.causal ? g.add(i, g.i64(1)) : T
                let q = load(Q, i), dy = load(dY, i)
                // Pass 1: the row's logsumexp.
                let ml = g.loop(g.i64(0), visible, carried: [g.f32(-Float.infinity), g.f32(0)]) { j, c in
                    let s = g.fmul(dot(q, load(K, j)), scale)
                    let m = g.fmax(c[0], s)
                    return [m, g.fadd(g.fmul(c[1], g.unary("exp", g.fsub(c[0], m))), g.unary("exp", g.fsub(s, m)))]
                }
                let lse = g.fadd(ml[0], g.unary("log", ml[1]))
                // Pass 2: p_j, dp_j and D = Σ p·dp.
                let d = g.loop(g.i64(0), visible, carried: [g.f32(0)]) { j, c in
                    let p = g.unary("exp", g.fsub(g.fmul(dot(q, load(K, j)), scale), lse))
                    let dp = dot(dy, load(V, j))
                    g.storeF(p, P, j)
                    g.storeF(dp, dP, j)
                    return [g.fma(p, dp, c[0])]
                }
                // Pass 3: the three gradients.
                let dq = g.loop(g.i64(0), visible, carried: [LLVMValueRef](repeating: g.vzero, count: vectors)) { j, acc in
                    let p = g.loadF(P, j)
                    let ds = g.fmul(p, g.fsub(g.loadF(dP, j), d[0]))
                    let k = load(K, j)
                    let dsv = g.splat(ds), scaled = g.splat(g.fmul(ds, scale)), pv = g.splat(p)
                    addInto(dK, j, q.map { g.fmul(scaled, $0) })
                    addInto(dV, j, dy.map { g.fmul(pv, $0) })
                    return (0..<vectors).map { g.fma(dsv, k[$0], acc[$0]) }
                }
                let sv = g.splat(scale)
                addInto(dQ, i, dq.map { g.fmul(sv, $0) })
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
