import CLLVM

/// Register tiling of the attention kernel's inner loops.
enum AttentionTiling {
    /// Key blocks (of `keyBlock` = vector-width keys) per softmax step over fully visible keys
    /// (one max/rescale per 16 keys on AVX2, 32 on AVX-512).
    static let fullBlocks = 2
    static func maxBlockKeys(keyBlock: Int) -> Int { keyBlock * fullBlocks }
    /// How many super-blocks ahead a one-row (decode) body prefetches its keys and values: the
    /// row streams the cache from memory, and the hardware prefetcher alone keeps too few lines
    /// in flight behind the score chains. 0 turns prefetching off.
    static let prefetchSuperBlocks = 2
}

/// Per-task values the attention row bodies share.
struct AttentionIO {
    var Q, Out, kHead, vHead, qBuf, oBuf, pBuf: LLVMValueRef
    var p0, t0, h, rowsHere, lastPos: LLVMValueRef
}

extension IRGen {
    /// One query-row group of `rows` rows (`rows` ≥ the group's valid rows, `io.rowsHere`):
    /// loads the scaled queries, runs the online softmax over keys `0 ... lastPos` (first the
    /// 16-key super-blocks visible to every row, unmasked; then the super-blocks crossing the
    /// diagonal, masked) and writes `O / l` for the valid rows. Super-blocks are aligned to 16
    /// keys and each row's arithmetic is independent of `rows` and of its group, so a row gives
    /// bit-identical results whether it is prefilled in a group or decoded alone. Non-causal, every
    /// row's last key is `lastPos`, the call's last position.
    func emitAttentionRows(_ spec: AttentionKernelSpec, rows rr: Int, io: AttentionIO) {
        let Dh = spec.headDim, ld = spec.ldInput, ldo = spec.ldOutput
        let w = width
        let B = spec.keyBlock  // == w
        /// Accumulators a register tile may keep (half the registers: 8 of AVX2's 16).
        let tileRegisters = vector.registers / 2
        let nv = (Dh + w - 1) / w
        let dhPad = nv * w
        let pStride = AttentionTiling.maxBlockKeys(keyBlock: B)
        let tailMask = laneMask(Dh - (nv - 1) * w)
        let kv = spec.kvFormat
        let (Q, Out, qBuf, oBuf, pBuf) = (io.Q, io.Out, io.qBuf, io.oBuf, io.pBuf)
        let (kHead, vHead, t0, h, rowsHere, lastPos) = (io.kHead, io.vHead, io.t0, io.h, io.rowsHere, io.lastPos)

        var pos: [LLVMValueRef] = []
        for r in 0..<rr {
            // The last key row r sees (non-causal: every row sees up to lastPos).
            pos.append(spec.causal ? smin(add(io.p0, add(t0, i64(r))), lastPos) : lastPos)
            let src = add(mul(add(t0, i64(r)), ld), mul(h, Dh))
            if r == 0 {
                // Row 0 is always valid.
                loop(0, i64(Dh)) { d in storeF(fmul(loadF(Q, add(src, d)), f32(spec.scale)), qBuf, add(i64(r * Dh), d)) }
            } else {
                loop(0, i64(Dh)) { d in storeF(f32(0), qBuf, add(i64(r * Dh), d)) }
                ifThen(icmp(LLVMIntSLT, i64(r), rowsHere)) {
                    loop(0, i64(Dh)) { d in storeF(fmul(loadF(Q, add(src, d)), f32(spec.scale)), qBuf, add(i64(r * Dh), d)) }
                }
            }
            for v in 0..<nv { storeV(vzero, oBuf, r * dhPad + v * w) }
        }
        let iota = constVector((0..<w).map { i32($0) })
        // Elements between a cache element and the one prefetched for it (decode only: prefill's
        // rows reuse each loaded key and value, so memory is not their limit).
        let prefetchAhead = rr == 1 ? AttentionTiling.prefetchSuperBlocks * AttentionTiling.fullBlocks * B * Dh : 0

        /// Processes `kbCount` B-key blocks starting at block `kb0`; carried = m (rr scalars) + l (rr vectors).
        func processBlock(_ kb0: LLVMValueRef, _ kbCount: Int, masked: Bool, _ carried: [LLVMValueRef]) -> [LLVMValueRef] {
            var m = Array(carried[0..<rr]), l = Array(carried[rr..<2 * rr])
            // Scores: one accumulator per (row, block), dims summed in order, so a row's
            // arithmetic never depends on its group (a decoded row matches its prefill twin).
            func scores(_ k: Int) -> [LLVMValueRef] {
                let kBlock = gep(kHead, mul(add(kb0, i64(k)), Dh * B))
                return loop(i64(0), i64(Dh), carried: [LLVMValueRef](repeating: vzero, count: rr)) { d, acc in
                    let keys = loadCacheVector(kBlock, mul(d, B), kv)
                    return (0..<rr).map { r in fma(broadcastLoad(qBuf, add(d, r * Dh)), keys, acc[r]) }
                }
            }
            var acc: [[LLVMValueRef]] = []  // [k][r]
            if masked {
                acc.append(scores(0))
                for k in 1..<kbCount {
                    // Blocks wholly past lastPos may lie outside the cache: never read them.
                    let inRange = icmp(LLVMIntSLE, mul(add(kb0, i64(k)), B), lastPos)
                    acc.append(ifElse(inRange, then: { scores(k) },
                                      otherwise: { [LLVMValueRef](repeating: self.vsplat(-Float.infinity), count: rr) }))
                }
            } else if rr * kbCount <= tileRegisters {
                // Both blocks in one pass (rr·kbCount accumulators).
                let kBlocks = (0..<kbCount).map { k in gep(kHead, mul(add(kb0, i64(k)), Dh * B)) }
                let all = loop(i64(0), i64(Dh), carried: [LLVMValueRef](repeating: vzero, count: rr * kbCount)) { d, a in
                    let keys = kBlocks.map { loadCacheVector($0, mul(d, B), kv) }
                    if prefetchAhead > 0 { for kBlock in kBlocks { prefetchRead(kBlock, add(mul(d, B), i64(prefetchAhead))) } }
                    var out = a
                    for r in 0..<rr {
                        let q = broadcastLoad(qBuf, add(d, r * Dh))
                        for k in 0..<kbCount { out[k * rr + r] = fma(q, keys[k], a[k * rr + r]) }
                    }
                    return out
                }
                for k in 0..<kbCount { acc.append(Array(all[k * rr ..< (k + 1) * rr])) }
            } else {
                for k in 0..<kbCount { acc.append(scores(k)) }
            }
            var s: [[LLVMValueRef]] = []
            var visible: [[LLVMValueRef]] = []
            for r in 0..<rr {
                var row: [LLVMValueRef] = [], vis: [LLVMValueRef] = []
                for k in 0..<kbCount {
                    var x = acc[k][r]
                    if masked {
                        let keyIdx = LLVMBuildAdd(builder, iota, splat(trunc32(mul(add(kb0, i64(k)), B))), "")!
                        let vi = icmp(LLVMIntSLE, keyIdx, splat(trunc32(pos[r])))
                        x = select(vi, x, vsplat(-Float.infinity))
                        vis.append(vi)
                    }
                    row.append(x)
                }
                s.append(row)
                visible.append(vis)
            }
            // New maxima and the rescale factors exp(m_old - m_new), w rows per vexp.
            var mNew: [LLVMValueRef] = []
            for r in 0..<rr {
                var mx = s[r][0]
                for k in 1..<kbCount { mx = fmax(mx, s[r][k]) }
                mNew.append(fmax(m[r], hmax(mx)))
            }
            var corr: [LLVMValueRef] = []
            for c0 in stride(from: 0, to: rr, by: w) {
                var diff = vzero
                for r in c0..<min(c0 + w, rr) {
                    diff = LLVMBuildInsertElement(builder, diff, fsub(m[r], mNew[r]), i32(r - c0), "")!
                }
                let e = vexp(diff)
                for r in c0..<min(c0 + w, rr) { corr.append(extract(e, r - c0)) }
            }
            for r in 0..<rr {
                let mv = splat(mNew[r])
                var sum: LLVMValueRef? = nil
                for k in 0..<kbCount {
                    var p = vexp(fsub(s[r][k], mv))
                    if masked { p = select(visible[r][k], p, vzero) }
                    storeV(p, pBuf, r * pStride + k * w)
                    sum = sum.map { fadd($0, p) } ?? p
                }
                l[r] = fma(l[r], splat(corr[r]), sum!)
                m[r] = mNew[r]
            }
            // O = O·corr + P·V over the block's keys (keys past lastPos are never read).
            let vBlock = gep(vHead, mul(kb0, B * Dh))
            let cv = max(1, min(nv, tileRegisters / rr))
            let corrV = corr.map { splat($0) }
            let keysHere = smin(i64(B * kbCount), sub(add(lastPos, i64(1)), mul(kb0, B)))
            for v0 in stride(from: 0, to: nv, by: cv) {
                let chunks = Array(v0..<min(v0 + cv, nv))
                var o: [LLVMValueRef] = []
                for r in 0..<rr { for c in chunks { o.append(fmul(loadV(oBuf, r * dhPad + c * w), corrV[r])) } }
                // A runtime key loop (not unrolled, p read from memory) keeps the accumulators in
                // registers; keys past lastPos are never read.
                o = loop(i64(0), keysHere, carried: o) { j, acc in
                    var out = acc
                    let vRow = gep(vBlock, mul(j, Dh))
                    if prefetchAhead > 0 { for c in chunks { prefetchRead(vRow, i64(c * w + prefetchAhead)) } }
                    let vv = chunks.map { c -> LLVMValueRef in
                        (c == nv - 1 && Dh % w != 0) ? maskedLoadCacheVector(vRow, i64(c * w), tailMask, kv) : loadCacheVector(vRow, i64(c * w), kv)
                    }
                    for r in 0..<rr {
                        let p = broadcastLoad(pBuf, add(j, r * pStride))
                        for ci in chunks.indices { out[r * chunks.count + ci] = fma(p, vv[ci], acc[r * chunks.count + ci]) }
                    }
                    return out
                }
                for r in 0..<rr { for (ci, c) in chunks.enumerated() { storeV(o[r * chunks.count + ci], oBuf, r * dhPad + c * w) } }
            }
            return m + l
        }

        let fb = AttentionTiling.fullBlocks
        let initial = [LLVMValueRef](repeating: f32(-Float.infinity), count: rr) + [LLVMValueRef](repeating: vzero, count: rr)
        // Super-blocks whose keys every row sees: keys < fullSB·B·fb ≤ pos[0] + 1.
        let fullSB = sdiv(add(pos[0], i64(1)), i64(B * fb))
        let afterFull = loop(i64(0), fullSB, carried: initial) { sb, carried in
            processBlock(mul(sb, fb), fb, masked: false, carried)
        }
        let superBlocks = add(sdiv(lastPos, i64(B * fb)), i64(1))
        let stats = loop(fullSB, superBlocks, carried: afterFull) { sb, carried in
            processBlock(mul(sb, fb), fb, masked: true, carried)
        }
        // Out = O / l for the valid rows.
        for r in 0..<rr {
            let emit = {
                let inv = self.splat(self.fdiv(self.f32(1), self.hsum(stats[rr + r])))
                let dst = self.add(self.mul(self.add(t0, self.i64(r)), ldo), self.mul(h, Dh))
                for v in 0..<nv {
                    let val = self.fmul(self.loadV(oBuf, r * dhPad + v * w), inv)
                    if v == nv - 1 && Dh % w != 0 {
                        self.maskedStoreV(val, Out, self.add(dst, self.i64(v * w)), tailMask)
                    } else {
                        self.storeV(val, Out, self.add(dst, self.i64(v * w)))
                    }
                }
            }
            if r == 0 { emit() } else { ifThen(icmp(LLVMIntSLT, i64(r), rowsHere), emit) }
        }
    }
}

extension IRGen {
    /// Prefetches (for reading, into all cache levels) the line holding element `offset` of `p`.
    /// The address may lie past the end of `p`'s buffer (a prefetch never faults), so the GEP is
    /// not `inbounds`.
    func prefetchRead(_ p: LLVMValueRef, _ offset: LLVMValueRef) {
        let f = declare("llvm.prefetch.p0i8", voidT, [pi8, i32, i32, i32])
        var idx: [LLVMValueRef?] = [offset]
        let elem = LLVMGetElementType(LLVMTypeOf(p))!
        let addr = idx.withUnsafeMutableBufferPointer { LLVMBuildGEP2(builder, elem, p, $0.baseAddress, 1, "")! }
        call(f, [bitcast(addr, pi8), i32(0), i32(3), i32(1)])
    }
}
