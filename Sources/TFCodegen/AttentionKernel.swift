import CLLVM

/// Fused causal multi-head attention over a KV cache (flash-attention style online softmax).
///
/// For T new rows at absolute positions `p0 ..< p0 + T`: the rows' keys and values are
/// appended to the cache, then for each row and head
/// `out = softmax_{j ≤ p}(q·k_j · scale) · v_j` with `scale = 1/sqrt(head_dim)`.
/// Decoding one token costs O(context · D). Heads × query-row groups are the parallel axis.
///
/// Cache layout (per layer; zero-initialise it once, positions ≥ p0 + T are never read):
/// - keys:   `[heads][ctx8 / 8][head_dim][8]` floats — blocks of 8 positions transposed so
///   8 scores come out of `head_dim` FMAs (`ctx8` = context rounded up to 8);
/// - values: `[heads][ctx8][head_dim]` floats.
/// Both hold `cacheFloats` floats.
///
/// ABI: `args = [Q, Knew, Vnew, Out, Kcache, Vcache]`, Q/Knew/Vnew `[T, ldInput]` and Out
/// `[T, ldOutput]` row-major with head h in columns `h·head_dim ..< (h+1)·head_dim`; `T` rows; `p0` the
/// position of row 0. If `p0 < 0` or `p0 + T > context` the kernel does nothing.
public struct AttentionKernelSpec: Hashable, Sendable, CustomStringConvertible {
    public var heads: Int
    public var headDim: Int
    public var context: Int
    /// Row stride of Q, Knew and Vnew (default heads·head_dim; e.g. 3·D when they are
    /// column slices of one `[T, 3D]` qkv buffer).
    public var ldInput: Int
    /// Row stride of Out (default heads·head_dim).
    public var ldOutput: Int
    public var scale: Float
    /// Query rows processed together (they share each key/value load).
    public var queryRows: Int

    public init(heads: Int, headDim: Int, context: Int, ldInput: Int? = nil, ldOutput: Int? = nil, scale: Float? = nil, queryRows: Int = 4) {
        precondition(heads > 0 && headDim > 0 && context > 0 && queryRows > 0)
        precondition((ldInput ?? heads * headDim) >= heads * headDim && (ldOutput ?? heads * headDim) >= heads * headDim)
        self.heads = heads
        self.headDim = headDim
        self.context = context
        self.ldInput = ldInput ?? heads * headDim
        self.ldOutput = ldOutput ?? heads * headDim
        self.scale = scale ?? Float(1 / Double(headDim).squareRoot())
        self.queryRows = queryRows
    }

    public var dModel: Int { heads * headDim }
    var contextPadded: Int { roundUp(context, 8) }
    /// Floats in each of the key and value caches.
    public var cacheFloats: Int { heads * contextPadded * headDim }

    public var description: String {
        "attention heads=\(heads) head_dim=\(headDim) context=\(context) ld=\(ldInput)/\(ldOutput) scale=\(scale) rows=\(queryRows)"
    }
    public var symbol: String { "tfc_attention_" + stableHash(description) }

    /// Where the key of (head, position, dim) lives in the key cache.
    public func keyIndex(head: Int, position: Int, dim: Int) -> Int {
        head * contextPadded * headDim + (position / 8) * headDim * 8 + dim * 8 + position % 8
    }
    /// Where the value of (head, position, dim) lives in the value cache.
    public func valueIndex(head: Int, position: Int, dim: Int) -> Int {
        (head * contextPadded + position) * headDim + dim
    }
}

extension AttentionKernelSpec {
    /// Copies `rows` keys and values (row-major `[rows, ld]`, head h in columns
    /// `h·head_dim ..< (h+1)·head_dim`) into the caches at positions `position ..< position + rows`
    /// — e.g. to import a KV cache kept in another layout. The kernel itself appends new rows.
    public func storeCache(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, rows: Int, ld: Int? = nil, position: Int,
                           keyCache: UnsafeMutablePointer<Float>, valueCache: UnsafeMutablePointer<Float>) {
        precondition(position >= 0 && position + rows <= context, "cache positions out of range")
        let ld = ld ?? dModel
        for t in 0..<rows {
            for h in 0..<heads {
                for d in 0..<headDim {
                    keyCache[keyIndex(head: h, position: position + t, dim: d)] = keys[t * ld + h * headDim + d]
                    valueCache[valueIndex(head: h, position: position + t, dim: d)] = values[t * ld + h * headDim + d]
                }
            }
        }
    }

    /// The inverse of `storeCache`: positions `position ..< position + rows` as `[rows, ld]` rows.
    public func loadCache(keyCache: UnsafePointer<Float>, valueCache: UnsafePointer<Float>, rows: Int, position: Int, ld: Int? = nil,
                          keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        precondition(position >= 0 && position + rows <= context, "cache positions out of range")
        let ld = ld ?? dModel
        for t in 0..<rows {
            for h in 0..<heads {
                for d in 0..<headDim {
                    keys[t * ld + h * headDim + d] = keyCache[keyIndex(head: h, position: position + t, dim: d)]
                    values[t * ld + h * headDim + d] = valueCache[valueIndex(head: h, position: position + t, dim: d)]
                }
            }
        }
    }
}

extension KernelModule {
    /// Emits a causal attention kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addAttention(_ spec: AttentionKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let H = spec.heads, Dh = spec.headDim, R = spec.queryRows, ld = spec.ldInput, ldo = spec.ldOutput
        let w = g.width
        let nv = (Dh + w - 1) / w
        let dhPad = nv * w
        let headK = spec.contextPadded * Dh, headV = spec.contextPadded * Dh
        let tailMask = g.laneMask(Dh - (nv - 1) * w)

        // ctx: 0 Q, 1 Knew, 2 Vnew, 3 Out, 4 Kc, 5 Vc, 6 T, 7 p0, 8 groups
        let append = g.task(symbol + ".append") { ctx, h in
            let Kn = g.contextPtr(ctx, 1), Vn = g.contextPtr(ctx, 2), Kc = g.contextPtr(ctx, 4), Vc = g.contextPtr(ctx, 5)
            let T = g.contextInt(ctx, 6), p0 = g.contextInt(ctx, 7)
            let kHead = g.gep(Kc, g.mul(h, headK)), vHead = g.gep(Vc, g.mul(h, headV))
            g.loop(0, T) { t in
                let pos = g.add(p0, t)
                let src = g.mul(t, ld)
                let colBase = g.add(src, g.mul(h, Dh))
                let kBlock = g.gep(kHead, g.add(g.mul(g.sdiv(pos, g.i64(8)), Dh * 8), LLVMBuildSRem(g.builder, pos, g.i64(8), "")!))
                let vRow = g.gep(vHead, g.mul(pos, Dh))
                g.loop(0, g.i64(Dh)) { d in
                    g.storeF(g.loadF(Kn, g.add(colBase, d)), kBlock, g.mul(d, 8))
                    g.storeF(g.loadF(Vn, g.add(colBase, d)), vRow, d)
                }
            }
        }

        let attend = g.task(symbol + ".attend") { ctx, index in
            let Q = g.contextPtr(ctx, 0), Out = g.contextPtr(ctx, 3), Kc = g.contextPtr(ctx, 4), Vc = g.contextPtr(ctx, 5)
            let T = g.contextInt(ctx, 6), p0 = g.contextInt(ctx, 7), groups = g.contextInt(ctx, 8)
            // Heaviest groups (latest rows, most keys) first.
            let group = g.sub(g.sub(groups, g.i64(1)), g.sdiv(index, g.i64(H)))
            let h = LLVMBuildSRem(g.builder, index, g.i64(H), "")!
            let t0 = g.mul(group, R)
            let rowsHere = g.smin(g.i64(R), g.sub(T, t0))
            let lastPos = g.add(p0, g.add(t0, g.sub(rowsHere, g.i64(1))))
            let kHead = g.gep(Kc, g.mul(h, headK)), vHead = g.gep(Vc, g.mul(h, headV))

            // Scaled queries (rows past T are zero), the output accumulators, per-block probabilities.
            let qBuf = g.alloca(g.f32, count: R * Dh)
            let oBuf = g.alloca(g.f32, count: R * dhPad)
            let pBuf = g.alloca(g.f32, count: R * w)
            var pos: [LLVMValueRef] = []
            for r in 0..<R {
                let valid = g.icmp(LLVMIntSLT, g.i64(r), rowsHere)
                pos.append(g.smin(g.add(p0, g.add(t0, g.i64(r))), lastPos))
                let src = g.add(g.mul(g.add(t0, g.i64(r)), ld), g.mul(h, Dh))
                g.loop(0, g.i64(Dh)) { d in
                    g.storeF(g.f32(0), qBuf, g.add(g.i64(r * Dh), d))
                }
                g.ifThen(valid) {
                    g.loop(0, g.i64(Dh)) { d in
                        g.storeF(g.fmul(g.loadF(Q, g.add(src, d)), g.f32(spec.scale)), qBuf, g.add(g.i64(r * Dh), d))
                    }
                }
                for v in 0..<nv { g.storeV(g.vzero, oBuf, r * dhPad + v * w) }
            }
            let iota = g.constVector((0..<w).map { g.i32($0) })
            let blocks = g.add(g.sdiv(lastPos, g.i64(8)), g.i64(1))
            let negInf = g.f32(-Float.infinity)
            let initial = [LLVMValueRef](repeating: negInf, count: R) + [LLVMValueRef](repeating: g.f32(0), count: R)
            let stats = g.loop(g.i64(0), blocks, carried: initial) { kb, carried in
                var m = Array(carried[0..<R]), l = Array(carried[R..<2 * R])
                // Scores for 8 keys: two accumulators per row (even/odd dims) for latency.
                let kBlock = g.gep(kHead, g.mul(kb, Dh * 8))
                let zeros = [LLVMValueRef](repeating: g.vzero, count: 2 * R)
                let halfDh = Dh / 2
                var acc = g.loop(g.i64(0), g.i64(halfDh), carried: zeros) { d, acc in
                    var a = acc
                    for e in 0..<2 {
                        let dd = g.add(g.mul(d, 2), e)
                        let kv = g.loadV(kBlock, g.mul(dd, 8))
                        for r in 0..<R { a[2 * r + e] = g.fma(g.broadcastLoad(qBuf, g.add(dd, r * Dh)), kv, a[2 * r + e]) }
                    }
                    return a
                }
                if Dh % 2 == 1 {
                    let dd = g.i64(Dh - 1)
                    let kv = g.loadV(kBlock, g.mul(dd, 8))
                    for r in 0..<R { acc[2 * r] = g.fma(g.broadcastLoad(qBuf, g.add(dd, r * Dh)), kv, acc[2 * r]) }
                }
                let keyIdx = LLVMBuildAdd(g.builder, iota, g.splat(g.trunc32(g.mul(kb, 8))), "")!
                var corr: [LLVMValueRef] = []
                for r in 0..<R {
                    let s0 = g.fadd(acc[2 * r], acc[2 * r + 1])
                    let visible = g.icmp(LLVMIntSLE, keyIdx, g.splat(g.trunc32(pos[r])))
                    let s = g.select(visible, s0, g.vsplat(-Float.infinity))
                    let mNew = g.fmax(m[r], g.hmax(s))
                    let c = g.extract(g.vexp(g.splat(g.fsub(m[r], mNew))), 0)
                    let p = g.select(visible, g.vexp(g.fsub(s, g.splat(mNew))), g.vzero)
                    g.storeV(p, pBuf, r * w)
                    l[r] = g.fadd(g.fmul(l[r], c), g.hsum(p))
                    m[r] = mNew
                    corr.append(g.splat(c))
                }
                // O = O·corr + P·V over the block's keys (keys past lastPos are never read).
                let vBlock = g.gep(vHead, g.mul(kb, 8 * Dh))
                let keysHere = g.smin(g.i64(8), g.sub(g.add(lastPos, g.i64(1)), g.mul(kb, 8)))
                for v in 0..<nv {
                    let isTail = v == nv - 1 && Dh % w != 0
                    var o = (0..<R).map { r in g.fmul(g.loadV(oBuf, r * dhPad + v * w), corr[r]) }
                    for lane in 0..<w {
                        let present = g.icmp(LLVMIntSLT, g.i64(lane), keysHere)
                        o = g.ifElse(present, then: {
                            let off = g.i64(lane * Dh + v * w)
                            let vv = isTail ? g.maskedLoadV(vBlock, off, tailMask) : g.loadV(vBlock, off)
                            return (0..<R).map { r in g.fma(g.broadcastLoad(pBuf, g.i64(r * w + lane)), vv, o[r]) }
                        }, otherwise: { o })
                    }
                    for r in 0..<R { g.storeV(o[r], oBuf, r * dhPad + v * w) }
                }
                return m + l
            }
            // Out = O / l for the valid rows.
            for r in 0..<R {
                let valid = g.icmp(LLVMIntSLT, g.i64(r), rowsHere)
                g.ifThen(valid) {
                    let inv = g.splat(g.fdiv(g.f32(1), stats[R + r]))
                    let dst = g.add(g.mul(g.add(t0, g.i64(r)), ldo), g.mul(h, Dh))
                    for v in 0..<nv {
                        let val = g.fmul(g.loadV(oBuf, r * dhPad + v * w), inv)
                        if v == nv - 1 && Dh % w != 0 {
                            g.maskedStoreV(val, Out, g.add(dst, g.i64(v * w)), tailMask)
                        } else {
                            g.storeV(val, Out, g.add(dst, g.i64(v * w)))
                        }
                    }
                }
            }
        }

        defineKernel(symbol) { args, T, p0 in
            let ok = LLVMBuildAnd(g.builder, g.icmp(LLVMIntSGT, T, g.i64(0)),
                                  LLVMBuildAnd(g.builder, g.icmp(LLVMIntSGE, p0, g.i64(0)),
                                               g.icmp(LLVMIntSLE, g.add(p0, T), g.i64(spec.context)), ""), "")!
            g.ifThen(ok) {
                let groups = g.ceilDiv(T, R)
                let ctx = g.makeContext((0..<6).map { g.argPtr(args, $0) } + [T, p0, groups])
                g.parallelFor(append, ctx, g.i64(H))
                g.parallelFor(attend, ctx, g.mul(groups, H))
            }
        }
        return symbol
    }
}

