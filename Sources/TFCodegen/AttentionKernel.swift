import CLLVM

/// Fused multi-head attention over a KV cache (flash-attention style online softmax).
///
/// For T new rows at absolute positions `p0 ..< p0 + T`: the rows' keys and values are
/// appended to the cache, then for each row and head
/// `out = softmax_{j ≤ p}(q·k_j · scale) · v_j` with `scale = 1/sqrt(head_dim)`, where `p` is the
/// row's own position (causal) or the last one, `p0 + T - 1` (non-causal: every row sees every key
/// in the cache, its own call's included).
/// Decoding one token costs O(context · D). Heads × query-row groups are the parallel axis.
///
/// Cache layout (per layer; zero-initialise it once, positions ≥ p0 + T are never read), with
/// `B = keyBlock`, the vector width of the target (8 for AVX2, 16 for AVX-512):
/// - keys:   `[heads][ctxB / B][head_dim][B]` elements — blocks of B positions transposed so
///   B scores come out of `head_dim` FMAs (`ctxB` = context rounded up to B);
/// - values: `[heads][ctxB][head_dim]` elements.
/// Elements are fp32, or bf16 with `kvFormat == .bf16` (rounded as appended, widened as read:
/// `KVCacheFormat`). Both caches hold `cacheBytes` bytes (`cacheFloats` float-sized units).
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
    /// Each row sees keys up to its own position (true) or all keys in the cache (false).
    public var causal: Bool
    /// Positions per transposed key block of the cache: the lanes of the target the kernel is
    /// emitted for (`KernelModule.addAttention` checks).
    public var keyBlock: Int
    /// How cached keys and values are stored.
    public var kvFormat: KVCacheFormat

    public init(heads: Int, headDim: Int, context: Int, ldInput: Int? = nil, ldOutput: Int? = nil, scale: Float? = nil, queryRows: Int = 4,
                causal: Bool = true, kvFormat: KVCacheFormat = .f32, for vector: VectorTarget = .avx2) {
        precondition(heads > 0 && headDim > 0 && context > 0 && queryRows > 0)
        precondition((ldInput ?? heads * headDim) >= heads * headDim && (ldOutput ?? heads * headDim) >= heads * headDim)
        self.heads = heads
        self.headDim = headDim
        self.context = context
        self.ldInput = ldInput ?? heads * headDim
        self.ldOutput = ldOutput ?? heads * headDim
        self.scale = scale ?? Float(1 / Double(headDim).squareRoot())
        self.queryRows = queryRows
        self.causal = causal
        self.keyBlock = vector.lanes
        self.kvFormat = kvFormat
    }

    public var dModel: Int { heads * headDim }
    var contextPadded: Int { roundUp(context, keyBlock) }
    /// Elements in each of the key and value caches.
    public var cacheElements: Int { heads * contextPadded * headDim }
    /// Bytes of each of the key and value caches.
    public var cacheBytes: Int { cacheElements * kvFormat.bytes }
    /// Each cache's size in float-sized (4-byte) units, what buffers are allocated in (a bf16
    /// cache takes half as many as it has elements).
    public var cacheFloats: Int { (cacheBytes + 3) / 4 }

    public var description: String {
        "attention heads=\(heads) head_dim=\(headDim) context=\(context) ld=\(ldInput)/\(ldOutput) scale=\(scale) rows=\(queryRows)\(causal ? "" : " non-causal")\(keyBlock == 8 ? "" : " keys/\(keyBlock)")\(kvFormat == .f32 ? "" : " kv \(kvFormat)")"
    }
    public var symbol: String { "tfc_attention_" + stableHash(description) }

    /// Where the key of (head, position, dim) lives in the key cache (an element index).
    public func keyIndex(head: Int, position: Int, dim: Int) -> Int {
        head * contextPadded * headDim + (position / keyBlock) * headDim * keyBlock + dim * keyBlock + position % keyBlock
    }
    /// Where the value of (head, position, dim) lives in the value cache (an element index).
    public func valueIndex(head: Int, position: Int, dim: Int) -> Int {
        (head * contextPadded + position) * headDim + dim
    }
}

extension AttentionKernelSpec {
    /// Copies `rows` keys and values (row-major `[rows, ld]`, head h in columns
    /// `h·head_dim ..< (h+1)·head_dim`) into the caches at positions `position ..< position + rows`
    /// — e.g. to import a KV cache kept in another layout. The kernel itself appends new rows.
    /// fp32 caches only.
    public func storeCache(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, rows: Int, ld: Int? = nil, position: Int,
                           keyCache: UnsafeMutablePointer<Float>, valueCache: UnsafeMutablePointer<Float>) {
        precondition(position >= 0 && position + rows <= context, "cache positions out of range")
        precondition(kvFormat == .f32, "storeCache/loadCache copy fp32 caches")
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
        precondition(kvFormat == .f32, "storeCache/loadCache copy fp32 caches")
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
    /// Emits an attention kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addAttention(_ spec: AttentionKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        precondition(spec.keyBlock == g.width, "attention spec for \(spec.keyBlock)-position key blocks emitted for \(vector.name)")
        let H = spec.heads, Dh = spec.headDim, R = spec.queryRows, ld = spec.ldInput, B = spec.keyBlock, kv = spec.kvFormat
        let dhPad = roundUp(Dh, g.width)
        let headK = spec.contextPadded * Dh, headV = spec.contextPadded * Dh

        // ctx: 0 Q, 1 Knew, 2 Vnew, 3 Out, 4 Kc, 5 Vc, 6 T, 7 p0, 8 groups
        let append = g.task(symbol + ".append") { ctx, h in
            let Kn = g.contextPtr(ctx, 1), Vn = g.contextPtr(ctx, 2)
            let Kc = g.cachePointer(g.contextPtr(ctx, 4), kv), Vc = g.cachePointer(g.contextPtr(ctx, 5), kv)
            let T = g.contextInt(ctx, 6), p0 = g.contextInt(ctx, 7)
            let kHead = g.gep(Kc, g.mul(h, headK)), vHead = g.gep(Vc, g.mul(h, headV))
            g.loop(0, T) { t in
                let pos = g.add(p0, t)
                let src = g.mul(t, ld)
                let colBase = g.add(src, g.mul(h, Dh))
                let kBlock = g.gep(kHead, g.add(g.mul(g.sdiv(pos, g.i64(B)), Dh * B), LLVMBuildSRem(g.builder, pos, g.i64(B), "")!))
                let vRow = g.gep(vHead, g.mul(pos, Dh))
                g.loop(0, g.i64(Dh)) { d in
                    g.storeCacheElement(g.loadF(Kn, g.add(colBase, d)), kBlock, g.mul(d, B), kv)
                    g.storeCacheElement(g.loadF(Vn, g.add(colBase, d)), vRow, d, kv)
                }
            }
        }

        let attend = g.task(symbol + ".attend") { ctx, index in
            let Q = g.contextPtr(ctx, 0), Out = g.contextPtr(ctx, 3)
            let Kc = g.cachePointer(g.contextPtr(ctx, 4), kv), Vc = g.cachePointer(g.contextPtr(ctx, 5), kv)
            let T = g.contextInt(ctx, 6), p0 = g.contextInt(ctx, 7), groups = g.contextInt(ctx, 8)
            // Heaviest groups (latest rows, most keys) first.
            let group = g.sub(g.sub(groups, g.i64(1)), g.sdiv(index, g.i64(H)))
            let h = LLVMBuildSRem(g.builder, index, g.i64(H), "")!
            let t0 = g.mul(group, R)
            let rowsHere = g.smin(g.i64(R), g.sub(T, t0))
            // The last key any row of the group sees: its last row's position, or the call's last.
            let lastPos = spec.causal ? g.add(p0, g.add(t0, g.sub(rowsHere, g.i64(1)))) : g.add(p0, g.sub(T, g.i64(1)))
            let kHead = g.gep(Kc, g.mul(h, headK)), vHead = g.gep(Vc, g.mul(h, headV))
            // Scaled queries (rows past T are zero), the output accumulators, per-block probabilities.
            let qBuf = g.alloca(g.f32, count: R * Dh)
            let oBuf = g.alloca(g.f32, count: R * dhPad)
            let pBuf = g.alloca(g.f32, count: R * AttentionTiling.maxBlockKeys(keyBlock: B))
            let io = AttentionIO(Q: Q, Out: Out, kHead: kHead, vHead: vHead, qBuf: qBuf, oBuf: oBuf, pBuf: pBuf,
                                 p0: p0, t0: t0, h: h, rowsHere: rowsHere, lastPos: lastPos)
            if R > 1 {
                // A lone row (decode, or a remainder group) gets a one-row body: no wasted work.
                g.ifElse(g.icmp(LLVMIntEQ, rowsHere, g.i64(1)), then: {
                    g.emitAttentionRows(spec, rows: 1, io: io); return []
                }, otherwise: {
                    g.emitAttentionRows(spec, rows: R, io: io); return []
                })
            } else {
                g.emitAttentionRows(spec, rows: 1, io: io)
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

