import CLLVM

/// Blocked, flash-style backward of multi-head attention over positions `0 ..< T` (training):
/// from the saved q, k, v and dY it adds dq, dk and dv, never forming the `[T, T]` probabilities
/// of a whole head. Per head, the head's q (scaled), dY and k are copied into zero-padded rows and
/// k, v transposed into blocks of L positions (L = the target's lanes, as in the KV cache); then
/// per block of query rows (`AttentionBackwardTiling.queryBlock`), per register tile of rows:
/// the scores `S = q·kᵀ·scale` and `dP = dY·vᵀ` over the visible keys as register tiles, per row
/// the softmax `P` (recomputed: the forward saves no logsumexp; each row's maximum taken from the
/// score tiles in registers, then two passes: `E = exp(S − max)` with `Σ E` and `Σ E·dP`, then
/// `P = E / Σ E` and `dS = P·(dP − D)` with `D = Σ P·dP = Σ E·dP / Σ E`), then
/// `dq += scale·dS·k` for the tile's rows; after the block's rows,
/// `dv += Pᵀ·dY` and `dk += dSᵀ·q·scale` per tile of keys over the block's rows. Causal blocks
/// skip the keys past their last row. Heads are the parallel axis (each head writes only its own
/// columns).
///
/// ABI: `args = [Q, K, V, dY, dQ (+=), dK (+=), dV (+=)]`, each `[T, heads·head_dim]` row-major
/// with head h in columns `h·head_dim ..< (h+1)·head_dim`; `T` rows. `p0`'s bits 1, 2, 4 make
/// the kernel write dQ (the forward: O), dK, dV instead of adding into them (every element of
/// rows `< T` of the head's columns is written: the caller need not zero a fresh output).
///
/// With `forward` the same kernel is the training forward (positions `0 ..< T`, no KV cache): the
/// score tiles and softmax rows as above, then `O += P·v` in place of the dq product, and none of
/// the gradient products. ABI: `args = [Q, K, V, O (+=)]`.
///
/// With `savesProbabilities` the forward also writes P (per head `Tk × Tk` floats, positions padded
/// to whole score tiles: `probabilityFloats`) to one more argument, and the backward reads it there
/// instead of recomputing it: no score product, no exponentials, one pass for D = Σ P·dP.
/// ABI: one more argument after the others, `P`.
public struct AttentionBackwardSpec: Hashable, Sendable, CustomStringConvertible {
    public var heads: Int
    public var headDim: Int
    public var causal: Bool
    public var scale: Float
    /// The training forward `O += softmax(q·kᵀ·scale)·v` instead of the backward.
    public var forward: Bool
    /// The forward writes P for the backward, which reads it instead of recomputing it.
    public var savesProbabilities: Bool

    public init(heads: Int, headDim: Int, causal: Bool, forward: Bool = false, savesProbabilities: Bool = false) {
        precondition(heads > 0 && headDim > 0)
        self.heads = heads; self.headDim = headDim; self.causal = causal; self.forward = forward
        self.savesProbabilities = savesProbabilities
        scale = Float(1 / Double(headDim).squareRoot())
    }

    /// Floats of the saved P of `T` positions (all heads), with the kernels of `vector`.
    public func probabilityFloats(rows T: Int, for vector: VectorTarget) -> Int {
        let unit = AttentionBackwardTiling(vector).keyTile, padded = (T + unit - 1) / unit * unit
        return heads * padded * padded
    }

    var width: Int { heads * headDim }
    public var description: String {
        "attention_\(forward ? "training_forward" : "backward") heads=\(heads) head_dim=\(headDim) scale=\(scale)\(causal ? "" : " non-causal") blocked\(savesProbabilities ? " saved_p" : "")"
    }
    public var symbol: String { "tfc_attention_bwd_" + stableHash(description) }
}

extension KernelModule {
    /// Emits an attention backward kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addAttentionBackward(_ spec: AttentionBackwardSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        let tiling = AttentionBackwardTiling(vector)
        let L = g.width, U = tiling.keyTile, mr = tiling.rows, kr = tiling.keyRows, QB = tiling.queryBlock, nb = tiling.scoreVectors
        let Dh = spec.headDim, ld = spec.width
        let nv = (Dh + L - 1) / L, DP = nv * L
        let tail = Dh % L
        let tailMask = tail > 0 ? g.laneMask(tail) : nil
        let rowChunks = tiling.chunks(vectors: nv, rows: mr), keyChunks = tiling.chunks(vectors: nv, rows: kr)

        // ctx: 0 Q, 1 K, 2 V, 3 dY, 4 dQ, 5 dK, 6 dV, 7 T, 8 p0, 9 P (forward: O in 3 to 6)
        let forward = spec.forward, readsP = spec.savesProbabilities && !forward
        let perHead = g.task(symbol + ".head") { ctx, h in
            let ptr = (0..<7).map { g.gep(g.contextPtr(ctx, $0), g.mul(h, Dh)) }
            let (Q, K, V, dY, dQ, dK, dV) = (ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], ptr[6])
            let T = g.contextInt(ctx, 7), p0 = g.contextInt(ctx, 8)
            /// Whether output `bit` is written rather than added into.
            func writes(_ bit: Int) -> LLVMValueRef { g.icmp(LLVMIntNE, LLVMBuildAnd(g.builder, p0, g.i64(bit), "")!, g.i64(0)) }
            let writesDQ = writes(1), writesDK = writes(2), writesDV = writes(4)
            let Tk = g.mul(g.ceilDiv(T, U), U)  // positions padded to whole score tiles
            let rowsKept = g.smin(g.i64(QB), Tk)
            // Scratch: k and v transposed (`[Tk/L][head_dim][L]`), q·scale, dY and k as rows of
            // DP floats, then one query block's P and dS (`rowsKept × Tk` each).
            let scratch = g.threadScratch(floats: g.mul(Tk, g.add(g.mul(rowsKept, 2), 2 * Dh + 3 * DP)))
            let Kt = scratch, Vt = g.gep(Kt, g.mul(Tk, Dh)), Qs = g.gep(Vt, g.mul(Tk, Dh))
            let Yp = g.gep(Qs, g.mul(Tk, DP)), Kr = g.gep(Yp, g.mul(Tk, DP))
            let P = g.gep(Kr, g.mul(Tk, DP)), dS = g.gep(P, g.mul(rowsKept, Tk))
            let scaleV = g.vsplat(spec.scale)
            let savedP = spec.savesProbabilities ? g.gep(g.contextPtr(ctx, 9), g.mul(h, g.mul(Tk, Tk))) : nil

            /// Where position t's dim d lives in a transposed block array.
            func transposed(_ t: LLVMValueRef, _ d: LLVMValueRef) -> LLVMValueRef {
                g.add(g.mul(g.sdiv(t, g.i64(L)), Dh * L), g.add(g.mul(d, L), LLVMBuildSRem(g.builder, t, g.i64(L), "")!))
            }
            /// Vector c of the head's floats of row `row` of `m` (tail lanes zero).
            func loadRow(_ m: LLVMValueRef, _ row: LLVMValueRef, _ c: Int) -> LLVMValueRef {
                let off = g.add(g.mul(row, ld), c * L)
                return c == nv - 1 && tailMask != nil ? g.maskedLoadV(m, off, tailMask!) : g.loadV(m, off)
            }
            g.loop(0, T) { t in
                for c in 0..<nv {
                    let dst = g.add(g.mul(t, DP), c * L)
                    g.storeV(g.fmul(loadRow(Q, t, c), scaleV), Qs, dst)
                    if !forward { g.storeV(loadRow(dY, t, c), Yp, dst) }
                    g.storeV(loadRow(forward ? V : K, t, c), Kr, dst)  // the forward's O = P·v reads v's rows there
                }
                g.loop(0, g.i64(Dh)) { d in
                    let src = g.add(g.mul(t, ld), d), at = transposed(t, d)
                    if !readsP { g.storeF(g.loadF(K, src), Kt, at) }
                    if !forward { g.storeF(g.loadF(V, src), Vt, at) }
                }
            }
            g.loop(T, Tk) { t in  // padding positions read as zero
                for c in 0..<nv {
                    let dst = g.add(g.mul(t, DP), c * L)
                    for m in [Qs, Yp, Kr] { g.storeV(g.vzero, m, dst) }
                }
                g.loop(0, g.i64(Dh)) { d in
                    let at = transposed(t, d)
                    g.storeF(g.f32(0), Kt, at)
                    g.storeF(g.f32(0), Vt, at)
                }
            }

            /// Adds tile rows `acc` (times `scale` if given) into rows `first ..< first + acc.count` of
            /// `m` (vectors `chunk` of the head's columns), skipping rows ≥ T; stores them instead
            /// where `write` holds.
            func addRows(_ m: LLVMValueRef, first: LLVMValueRef, _ acc: [[LLVMValueRef]], _ chunk: Range<Int>, scale: LLVMValueRef?,
                         write: LLVMValueRef) {
                func rows(adding: Bool) {
                    for r in acc.indices {
                        let row = g.add(first, r)
                        g.ifThen(g.icmp(LLVMIntSLT, row, T)) {
                            for (ci, c) in chunk.enumerated() {
                                let off = g.add(g.mul(row, ld), c * L)
                                let x = scale.map { g.fmul($0, acc[r][ci]) } ?? acc[r][ci]
                                if c == nv - 1, let mask = tailMask {
                                    g.maskedStoreV(adding ? g.fadd(g.maskedLoadV(m, off, mask), x) : x, m, off, mask)
                                } else {
                                    g.storeV(adding ? g.fadd(g.loadV(m, off), x) : x, m, off)
                                }
                            }
                        }
                    }
                }
                _ = g.ifElse(write, then: { rows(adding: false); return [] }, otherwise: { rows(adding: true); return [] })
            }

            let iota = g.constVector((0..<L).map { g.i32($0) })
            let negInf = g.vsplat(-Float.infinity)
            let lastKey = g.sub(T, g.i64(1))
            g.loop(g.i64(0), g.ceilDiv(Tk, QB)) { qb, _ in
                let qb0 = g.mul(qb, QB), qbEnd = g.smin(g.add(qb0, QB), Tk)
                let blockP = savedP.map { g.gep($0, g.mul(qb0, Tk)) } ?? P  // the saved P's rows of this block
                g.loop(g.i64(0), g.sdiv(g.sub(qbEnd, qb0), g.i64(mr))) { rt, _ in
                    let local = g.mul(rt, mr), i0 = g.add(qb0, local)
                    // Keys any row of the tile sees, padded to whole score tiles.
                    let keys = spec.causal ? g.mul(g.ceilDiv(g.add(i0, mr), U), U) : Tk
                    let pRows = g.gep(blockP, g.mul(local, Tk)), dsRows = g.gep(dS, g.mul(local, Tk))
                    let qRows = g.gep(Qs, g.mul(i0, DP)), yRows = g.gep(Yp, g.mul(i0, DP))
                    /// Whether the keys of the vector at `j` are visible to row `limit`'s query.
                    func visible(_ j: LLVMValueRef, _ limit: LLVMValueRef) -> LLVMValueRef {
                        g.icmp(LLVMIntSLE, LLVMBuildAdd(g.builder, iota, g.splat(g.trunc32(j)), "")!, g.splat(limit))
                    }
                    func limit(_ r: LLVMValueRef) -> LLVMValueRef { g.trunc32(spec.causal ? g.add(i0, r) : lastKey) }
                    // The score tiles, each row's running maximum over its visible keys taken
                    // while the tile is in registers (no separate pass over the row for it).
                    let maxima = g.loop(g.i64(0), keys, step: U, carried: [LLVMValueRef](repeating: negInf, count: mr)) { j, running in
                        var next = running
                        let products = [(qRows, Kt, pRows), (yRows, Vt, dsRows)]
                        for (index, (rows, kv, out)) in products.enumerated() where !(forward && index == 1) && !(readsP && index == 0) {
                            let blocks = (0..<nb).map { g.gep(kv, g.add(g.mul(j, Dh), $0 * Dh * L)) }
                            let tile = g.productTile(rows: mr, a: rows, aRow: g.i64(DP), aDepth: g.i64(1), b: blocks, bDepth: g.i64(L),
                                                     from: g.i64(0), to: g.i64(Dh))
                            for r in 0..<mr { for c in 0..<nb { g.storeV(tile[r][c], out, g.add(g.add(g.mul(Tk, r), j), c * L)) } }
                            guard index == 0 else { continue }
                            for r in 0..<mr {
                                for c in 0..<nb {
                                    next[r] = g.fmax(next[r], g.select(visible(g.add(j, c * L), limit(g.i64(r))), tile[r][c], negInf))
                                }
                            }
                        }
                        return next
                    }
                    let rowMax = g.alloca(g.f32, count: mr)
                    for r in 0..<mr { g.storeF(g.hmax(maxima[r]), rowMax, r) }
                    // Per row, two passes over the visible keys: E = exp(S − max) with Σ E and
                    // Σ E·dP, then P = E / Σ E and dS = P·(dP − D), D = Σ P·dP = Σ E·dP / Σ E
                    // (the others stay 0).
                    if readsP {  // P saved: D = Σ P·dP, then dS = P·(dP − D)
                        g.loop(0, g.i64(mr)) { r in
                            let p = g.gep(pRows, g.mul(r, Tk)), ds = g.gep(dsRows, g.mul(r, Tk))
                            let dot = g.loop(g.i64(0), keys, step: L, carried: [g.vzero]) { j, c in [g.fma(g.loadV(p, j), g.loadV(ds, j), c[0])] }
                            let D = g.splat(g.hsum(dot[0]))
                            g.loop(g.i64(0), keys, step: L) { j, _ in
                                g.storeV(g.fmul(g.loadV(p, j), g.fsub(g.loadV(ds, j), D)), ds, j)
                                return []
                            }
                        }
                    } else { g.loop(0, g.i64(mr)) { r in
                        let rowLimit = limit(r)
                        let p = g.gep(pRows, g.mul(r, Tk)), ds = g.gep(dsRows, g.mul(r, Tk))
                        let m = g.splat(g.loadF(rowMax, r))
                        let sums = g.loop(g.i64(0), keys, step: L, carried: forward ? [g.vzero] : [g.vzero, g.vzero]) { j, c in
                            let e = g.select(visible(j, rowLimit), g.vexp(g.fsub(g.loadV(p, j), m)), g.vzero)
                            g.storeV(e, p, j)
                            return forward ? [g.fadd(c[0], e)] : [g.fadd(c[0], e), g.fma(e, g.loadV(ds, j), c[1])]
                        }
                        let inverse = g.fdiv(g.f32(1), g.hsum(sums[0]))
                        let D = forward ? nil : g.splat(g.fmul(g.hsum(sums[1]), inverse)), inverseV = g.splat(inverse)
                        g.loop(g.i64(0), keys, step: L) { j, _ in
                            let pj = g.fmul(g.loadV(p, j), inverseV)
                            g.storeV(pj, p, j)
                            if let D { g.storeV(g.fmul(pj, g.fsub(g.loadV(ds, j), D)), ds, j) }
                            return []
                        }
                    } }
                    // dq += scale · dS·k (forward: O += P·v) over the keys the tile's rows see.
                    let seen = spec.causal ? g.add(i0, mr) : Tk
                    for chunk in rowChunks {
                        let tile = g.productTile(rows: mr, a: forward ? pRows : dsRows, aRow: Tk, aDepth: g.i64(1), b: chunk.map { g.gep(Kr, $0 * L) },
                                                 bDepth: g.i64(DP), from: g.i64(0), to: seen)
                        addRows(dQ, first: i0, tile, chunk, scale: forward ? nil : scaleV, write: writesDQ)
                    }
                    return []
                }
                // dv += Pᵀ·dY and dk += dSᵀ·(q·scale) per tile of keys, over the block's rows
                // (causal: from the tile's first key on; earlier rows do not see it).
                let keyEnd = spec.causal ? qbEnd : Tk
                if !forward { g.loop(g.i64(0), keyEnd, step: kr) { j0, _ in
                    let first = spec.causal ? g.sub(g.smax(qb0, j0), qb0) : g.i64(0)
                    // A key's first contribution comes from the first block that sees it: the one
                    // holding it (causal), else the first.
                    let firstSeen = spec.causal ? g.icmp(LLVMIntSGE, j0, qb0) : g.icmp(LLVMIntEQ, qb0, g.i64(0))
                    for (a, b, out, writesOut) in [(blockP, Yp, dV, writesDV), (dS, Qs, dK, writesDK)] {
                        let rows = g.gep(b, g.mul(qb0, DP))
                        for chunk in keyChunks {
                            let tile = g.productTile(rows: kr, a: g.gep(a, j0), aRow: g.i64(1), aDepth: Tk, b: chunk.map { g.gep(rows, $0 * L) },
                                                     bDepth: g.i64(DP), from: first, to: g.sub(qbEnd, qb0))
                            addRows(out, first: j0, tile, chunk, scale: nil, write: LLVMBuildAnd(g.builder, writesOut, firstSeen, "")!)
                        }
                    }
                    return []
                } }
                return []
            }
        }

        defineKernel(symbol) { args, T, p0 in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let saved = spec.savesProbabilities ? [g.argPtr(args, forward ? 4 : 7)] : []
                let ctx = g.makeContext((0..<7).map { g.argPtr(args, forward ? min($0, 3) : $0) } + [T, p0] + saved)
                g.parallelFor(perHead, ctx, g.i64(spec.heads))
            }
        }
        return symbol
    }
}
