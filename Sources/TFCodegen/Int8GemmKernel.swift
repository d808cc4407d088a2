import CLLVM

/// An int8 GEMM `C[T, n] (+)= Σ_groups (aScale ⊙ Aq) · (Bq ⊙ groupScale)` with int32
/// accumulation inside each depth group of 32 (`Int8Quantization.groupDepth`): `Aq` is row-major
/// int8 `[T, paddedK]` (activations quantised in groups, depth padded with zero codes to a
/// multiple of 4), `Bq` in `Int8PanelLayout` panels. After each group the int32 sums become fp32,
/// scaled by the row's group scale times the columns' group scales, and are added into fp32
/// accumulators (ggml's Q8_0 dot product, per register tile).
///
/// Dot products of 4-byte depth quads, by ISA:
/// - AVX2 (and AVX-512 without VNNI, with a compare and select for the sign): `vpsignb` moves the sign of each activation onto the weight, `vpmaddubsw` multiplies
///   `|a|` (as u8) by it and adds pairs into i16 (≤ 2·127·127, never saturates since codes are
///   in ±127), `vpmaddwd` with ones adds the pairs into the i32 accumulators.
/// - AVX512_VNNI (`vnni`): `vpdpbusd` takes u8 × s8 without saturation; the weights are offset
///   by +128 to u8 as they are loaded (one xor per weight vector, shared by the tile's rows), and
///   `128 · Σ a` of the row's group (`aSums`, from the quantiser) is subtracted per group.
///
/// Kernel arguments: 0 Aq (i8), 1 aScale (float[T · groups]), 2 aSums (i32[T · groups]),
/// 3 B (the stored `Int8PanelLayout` panels, codes and scales), 4 C (float, leading dimension `ldc`).
public struct Int8GemmKernelSpec: Hashable, Sendable {
    public let k: Int
    public let n: Int
    public let ldc: Int
    public let mr: Int
    public let nr: Int
    public let accumulate: Bool
    /// Emit `vpdpbusd` (needs AVX512_VNNI and the AVX-512 target) instead of the AVX2 pairs.
    public let vnni: Bool

    public init(k: Int, n: Int, ldc: Int? = nil, accumulate: Bool = false, vnni: Bool = false, for vector: VectorTarget) {
        precondition(!vnni || vector.isa == .avx512, "vpdpbusd kernels are 512-bit")
        self.k = k
        self.n = n
        self.ldc = ldc ?? n
        self.accumulate = accumulate
        self.vnni = vnni
        // 32 columns on every ISA, so the AVX-512 and AVX2 programs of one build read one weights
        // file. A tile holds int32 group sums and fp32 totals: on AVX-512 two zmm per row and 4 rows
        // (16 accumulators of 32 registers); on AVX2 four ymm per row and 1 row (8 of 16, beside
        // the weight vectors and the sign temporaries).
        nr = Self.panelWidth
        mr = vector.lanes == 16 ? 4 : 1
    }

    /// The int8 panel width, the same for every ISA.
    public static let panelWidth = 32

    /// Parallel tasks the panels are split into (a few per thread, so 2 threads balance).
    static let columnTasks = 16

    /// How far ahead in the panel the first row tile prefetches (≈ one depth group): the tile
    /// streams the panel from memory, and with two threads the hardware prefetcher alone kept
    /// too few lines in flight (Zen 3, 2 threads, logits decode: 1.25 ms against 1.64 ms
    /// without; 512 and 2048 bytes ahead were slower). Later tiles find the panel in cache.
    static let prefetchBytes = 1024

    public var layout: Int8PanelLayout { Int8PanelLayout(k: k, n: n, nr: nr) }
    public var lda: Int { layout.paddedK }
    /// Depth groups (the row length of the activation scales and sums).
    public var groups: Int { layout.groups }
    public var symbol: String { "tfc_i8gemm_g\(Int8Quantization.groupDepth)_k\(k)_n\(n)_c\(ldc)\(accumulate ? "_acc" : "")\(vnni ? "_vnni" : "")" }
}

extension IRGen {
    /// `void ukr(i8 *A, float *aScale, i32 *aSums, i8 *Bpanel, float *C, i64 nValid)` for a
    /// `rows x nr` tile over the whole depth (`aScale`/`aSums` at the tile's first row);
    /// `prefetch`: the tile that streams the panel from memory (`Int8GemmKernelSpec.prefetchBytes`).
    func int8MicroKernel(_ s: Int8GemmKernelSpec, rows: Int, prefetch: Bool) -> IRFunction {
        let nv = s.nr / width
        let quads = s.layout.quads
        let quadsPerGroup = Int8Quantization.groupDepth / 4
        let fullGroups = quads / quadsPerGroup, tailQuads = quads % quadsPerGroup
        let groups = s.groups, groupBytes = s.layout.groupBytes
        precondition(groups == fullGroups + (tailQuads > 0 ? 1 : 0))
        let vbytes = LLVMVectorType(i8, UInt32(4 * width))!
        let vi16 = LLVMVectorType(i16, UInt32(2 * width))!
        let pi32 = LLVMPointerType(i32, 0)!
        let pvbytes = LLVMPointerType(vbytes, 0)!
        let name = "tfc.i8ukr.m\(rows).n\(s.nr).k\(s.k).c\(s.ldc)\(s.accumulate ? ".acc" : "")\(s.vnni ? ".vnni" : "")\(prefetch ? ".pf" : "")"
        let f = define(name, voidT, [pi8, pf32, pi32, pi8, pf32, i64], attributes: ["nounwind"]) { fn in
            let A = self.param(fn, 0), aScale = self.param(fn, 1), aSums = self.param(fn, 2), B = self.param(fn, 3)
            let C = self.param(fn, 4), nValid = self.param(fn, 5)
            let vzeroI = self.null(self.vi32)

            /// The 4 activation codes of row i at quad g, as one i32 broadcast to every lane.
            func quadBroadcast(_ i: Int, _ g: LLVMValueRef) -> LLVMValueRef {
                let p = self.bitcast(self.gep(A, self.add(self.mul(g, 4), i * s.lda)), pi32)
                let v = LLVMBuildInsertElement(self.builder, LLVMGetUndef(self.vi32), self.load(p, align: 1), self.i32(0), "")!
                let splat = LLVMBuildShuffleVector(self.builder, v, LLVMGetUndef(self.vi32), vzeroI, "")!
                return self.bitcast(splat, vbytes)
            }
            // Each ISA's intrinsics, declared once per kernel.
            let dp = s.vnni ? self.declare("llvm.x86.avx512.vpdpbusd.512", self.vi32, [self.vi32, self.vi32, self.vi32]) : nil
            // AVX-512 has no vpsignb: there the sign moves by a compare and select (AVX512BW).
            let wide = self.width == 16
            let sign: ((LLVMValueRef, LLVMValueRef) -> LLVMValueRef)? = s.vnni ? nil : wide ? { x, a in
                let negative = self.icmp(LLVMIntSLT, a, self.null(vbytes))
                return self.select(negative, LLVMBuildNeg(self.builder, x, "")!, x)
            } : { x, a in self.call(self.declare("llvm.x86.avx2.psign.b", vbytes, [vbytes, vbytes]), [x, a]) }
            let maddubs = s.vnni ? nil : self.declare(wide ? "llvm.x86.avx512.pmaddubs.w.512" : "llvm.x86.avx2.pmadd.ub.sw", vi16, [vbytes, vbytes])
            let maddwd = s.vnni ? nil : self.declare(wide ? "llvm.x86.avx512.pmaddw.d.512" : "llvm.x86.avx2.pmadd.wd", self.vi32, [vi16, vi16])
            let ones = self.constI16Splat(1, vi16, i16)
            let offsetToU8 = self.bitcast(self.constI16Splat(0x8080, vi16, i16), vbytes)

            /// Int32 sums of group `group`'s `count` quads (codes from byte `base` of the panel) for
            /// every accumulator of the tile.
            func groupSums(_ group: LLVMValueRef, base: LLVMValueRef, count: Int) -> [LLVMValueRef] {
                let zero = [LLVMValueRef](repeating: vzeroI, count: rows * nv)
                return self.loop(self.i64(0), self.i64(count), step: 1, carried: zero) { q, acc in
                    var acc = acc
                    let g = self.add(self.mul(group, quadsPerGroup), q)      // the quad's index in the depth
                    let bOff = self.add(base, self.mul(q, s.nr * 4))
                    if prefetch {
                        for line in stride(from: 0, to: s.nr * 4, by: 64) { self.prefetchRead(B, self.add(bOff, line + Int8GemmKernelSpec.prefetchBytes)) }
                    }
                    var b = (0..<nv).map { v in self.load(self.bitcast(self.gep(B, self.add(bOff, v * 4 * self.width)), pvbytes), align: 1) }
                    if dp != nil { b = b.map { LLVMBuildXor(self.builder, $0, offsetToU8, "")! } }
                    for i in 0..<rows {
                        let a = quadBroadcast(i, g)
                        if let dp {
                            for v in 0..<nv {
                                acc[i * nv + v] = self.call(dp, [acc[i * nv + v], self.bitcast(b[v], self.vi32), self.bitcast(a, self.vi32)])
                            }
                        } else if let sign, let maddubs, let maddwd {
                            let absA = sign(a, a)
                            for v in 0..<nv {
                                let pairs = self.call(maddubs, [absA, sign(b[v], a)])
                                acc[i * nv + v] = self.add(acc[i * nv + v], self.call(maddwd, [pairs, ones]))
                            }
                        }
                    }
                    return acc
                }
            }
            /// Group `group`'s sums into the fp32 totals: `float(sum − 128·Σa) · aScale · groupScale`.
            func addGroup(_ group: LLVMValueRef, count: Int, _ totals: [LLVMValueRef]) -> [LLVMValueRef] {
                let base = self.mul(group, groupBytes)
                let sums = groupSums(group, base: base, count: count)
                // The group's scales (bf16) follow its codes in the panel.
                let scales = self.bitcast(self.gep(B, self.add(base, count * s.nr * 4)), self.pi16)
                let ws = (0..<nv).map { self.loadBF16Vector(scales, self.i64($0 * self.width)) }
                var totals = totals
                for i in 0..<rows {
                    let slot = self.add(group, i * groups)
                    let aS = self.broadcastLoad(aScale, slot)
                    let correction: LLVMValueRef? = s.vnni ? LLVMBuildShl(self.builder, self.splat(self.load(self.gep(aSums, slot))), self.vsplatI32(7), "")! : nil
                    for v in 0..<nv {
                        var sum = sums[i * nv + v]
                        if let correction { sum = self.sub(sum, correction) }
                        totals[i * nv + v] = self.fma(self.sitofp(sum, self.vf), self.fmul(ws[v], aS), totals[i * nv + v])
                    }
                }
                return totals
            }
            var totals = [LLVMValueRef](repeating: self.null(self.vf), count: rows * nv)
            totals = self.loop(self.i64(0), self.i64(fullGroups), step: 1, carried: totals) { group, t in addGroup(group, count: quadsPerGroup, t) }
            if tailQuads > 0 { totals = addGroup(self.i64(fullGroups), count: tailQuads, totals) }
            // Store or accumulate; the last panel masks its columns.
            let masks = (0..<nv).map { self.laneMask(self.sub(nValid, self.i64($0 * self.width))) }
            for v in 0..<nv {
                for i in 0..<rows {
                    let off = self.i64(i * s.ldc + v * self.width)
                    let out = s.accumulate ? self.fadd(self.maskedLoadV(C, off, masks[v]), totals[i * nv + v]) : totals[i * nv + v]
                    self.maskedStoreV(out, C, off, masks[v])
                }
            }
            self.retVoid()
        }
        return f
    }

    func constI16Splat(_ v: Int, _ vt: LLVMTypeRef, _ t: LLVMTypeRef) -> LLVMValueRef {
        var elems: [LLVMValueRef?] = (0..<Int(LLVMGetVectorSize(vt))).map { _ in LLVMConstInt(t, UInt64(v), 1) }
        return elems.withUnsafeMutableBufferPointer { LLVMConstVector($0.baseAddress, UInt32($0.count))! }
    }
}

extension IRGen {
    /// Panels `[p0, p1)` of the int8 GEMM over all `T` rows, row tiles inside each panel (so a
    /// panel streams from memory once): `void f(i64 Aq, i64 aScale, i64 aSums, i64 B, i64 C,
    /// i64 T, i64 p0, i64 p1)`, pointers passed as integers (task contexts).
    func int8GemmPanels(_ spec: Int8GemmKernelSpec) -> IRFunction {
        let streaming = (1...spec.mr).map { int8MicroKernel(spec, rows: $0, prefetch: true) }
        let cached = (1...spec.mr).map { int8MicroKernel(spec, rows: $0, prefetch: false) }
        let layout = spec.layout
        let pi32 = LLVMPointerType(i32, 0)!
        return define("tfc.i8panels.k\(spec.k).n\(spec.n).c\(spec.ldc)\(spec.accumulate ? ".acc" : "")\(spec.vnni ? ".vnni" : "")", voidT,
                      [i64, i64, i64, i64, i64, i64, i64, i64], attributes: ["nounwind"]) { fn in
            let A = self.intToPtr(self.param(fn, 0), self.pi8), aScale = self.intToPtr(self.param(fn, 1), self.pf32)
            let aSums = self.intToPtr(self.param(fn, 2), pi32), B = self.intToPtr(self.param(fn, 3), self.pi8)
            let C = self.intToPtr(self.param(fn, 4), self.pf32)
            let T = self.param(fn, 5)
            self.loop(self.param(fn, 6), self.param(fn, 7)) { p in
                let col0 = self.mul(p, spec.nr)
                let nValid = self.smin(self.i64(spec.nr), self.sub(self.i64(spec.n), col0))
                let Bp = self.gep(B, self.mul(p, layout.panelBytes))
                let tiles = self.ceilDiv(T, spec.mr)
                // The first tile streams the panel (and prefetches); the rest find it in cache.
                self.loop(0, tiles) { t in
                    let r0 = self.mul(t, spec.mr)
                    let rows = self.smin(self.i64(spec.mr), self.sub(T, r0))
                    let argsFor = [self.gep(A, self.mul(r0, spec.lda)), self.gep(aScale, self.mul(r0, spec.groups)), self.gep(aSums, self.mul(r0, spec.groups)),
                                   Bp, self.gep(C, self.add(self.mul(r0, spec.ldc), col0)), nValid]
                    func callTile(_ kernels: [IRFunction]) -> [LLVMValueRef] {
                        self.switchOn(rows, cases: (1...spec.mr).map { r -> (Int, () -> Void) in (r, { _ = self.call(kernels[r - 1], argsFor) }) })
                        return []
                    }
                    self.ifElse(self.icmp(LLVMIntEQ, t, self.i64(0)), then: { callTile(streaming) }, otherwise: { callTile(cached) })
                }
            }
            self.retVoid()
        }
    }
}

extension KernelModule {
    /// Adds the int8 GEMM kernel and returns its symbol: panels are split into up to
    /// `columnTasks` parallel tasks (each streams its own weight panels: decode is bound by
    /// weight bytes), row tiles run inside a task.
    public func addInt8Gemm(_ spec: Int8GemmKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        let g = gen
        precondition(spec.nr % g.width == 0)
        // LLVM cannot select vpdpbusd without the feature (it would abort): callers pick `vnni` from the CPU.
        precondition(!spec.vnni || (vector.isa == .avx512 && target.has("avx512vnni")), "vpdpbusd needs an AVX-512 module with +avx512vnni")
        let layout = spec.layout
        let perTask = max(1, (layout.panels + Int8GemmKernelSpec.columnTasks - 1) / Int8GemmKernelSpec.columnTasks)
        let tasks = (layout.panels + perTask - 1) / perTask
        let panels = g.int8GemmPanels(spec)
        // ctx: 0 Aq, 1 aScale, 2 aSums, 3 B, 4 C, 5 T
        let task = g.task(symbol + ".cols") { ctx, i in
            let p0 = g.mul(i, perTask)
            let p1 = g.smin(g.i64(layout.panels), g.add(p0, perTask))
            g.call(panels, (0..<6).map { g.contextInt(ctx, $0) } + [p0, p1])
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let ctx = g.makeContext((0..<5).map { g.argPtr(args, $0) } + [T])
                g.parallelFor(task, ctx, g.i64(tasks))
            }
        }
        return symbol
    }
}
