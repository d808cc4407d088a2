import CLLVM

/// The int8 form of a fused Pattention kernel (`--weights-format int8`): for `X[T, d_in]` and
/// each site, `out = Θ(X·Kᵀ)·V` with both products in int8 (`Int8GemmKernelSpec`):
/// 1. X's rows (LayerNormed first, when the kernel has the prologue) are quantised in groups of 32
///    (blocks of 16 rows in parallel);
/// 2. scores `S = Xq·Kqᵀ`, each depth group scaled back by its activation and key scales;
/// 3. Θ (the row norm and GELU, or softmax) in fp32, exactly as the fp32 kernel;
/// 4. `Θ(S)` quantised in groups of 32 parameter tokens (each row right after its Θ);
/// 5. `out = Aq·Vq`, each group scaled back likewise, stored or added (residual), then rotary
///    (blocks of 16 rows in parallel).
/// Every stage finishes for all rows before the next (threads split the weight panels: this is
/// the decode-time shape, bound by weight bytes), so a residual output may alias X. Each stage
/// is one dispatch for all sites (q, k and v share theirs).
///
/// ABI as `PattentionKernelSpec`: `args = [X, K₀, V₀, Y₀, K₁, V₁, Y₁, ...]`, the weights in
/// the stored int8 form of `keyLayout(i)` / `valueLayout(i)` (`PanelLayout.packStored`).
public struct Int8PattentionKernelSpec: Hashable, Sendable, CustomStringConvertible {
    public var dIn: Int
    public var ldx: Int
    public var layerNormEps: Float?
    public var sites: [PattentionSite]
    /// `vpdpbusd` (AVX512_VNNI) instead of the multiply-add pairs.
    public var vnni: Bool
    /// Panel width (`Int8GemmKernelSpec.panelWidth`, the same on every ISA).
    public var nr: Int

    public init(dIn: Int, layerNormEps: Float? = nil, sites: [PattentionSite], ldx: Int? = nil, vnni: Bool = false, for vector: VectorTarget) {
        precondition(dIn > 0 && !sites.isEmpty && (ldx ?? dIn) >= dIn)
        precondition(!vnni || vector.isa == .avx512, "vpdpbusd kernels are 512-bit")
        self.dIn = dIn
        self.ldx = ldx ?? dIn
        self.layerNormEps = layerNormEps
        self.sites = sites
        self.vnni = vnni
        nr = Int8GemmKernelSpec.panelWidth
    }

    public func keyLayout(_ site: Int) -> PanelLayout { PanelLayout(k: dIn, n: sites[site].tokens, nr: nr, format: .int8) }
    public func valueLayout(_ site: Int) -> PanelLayout { PanelLayout(k: sites[site].tokens, n: sites[site].dOut, nr: nr, format: .int8) }

    /// Row stride of a site's fp32 score rows.
    func scoreStride(_ site: Int) -> Int { roundUp(sites[site].tokens, 16) }

    public var description: String {
        var s = "pattention-int8 d_in=\(dIn)" + (ldx != dIn ? " ldx=\(ldx)" : "")
        if let eps = layerNormEps { s += " layernorm(eps=\(eps))" }
        return s + " " + sites.map(\.description).joined(separator: " ") + (vnni ? " vpdpbusd" : " pairs") + " nr=\(nr)"
    }

    public var symbol: String { "tfc_pattention_i8_" + stableHash(description) }
}

extension IRGen {
    /// `void ln(const float *X, i64 rows, float *Y)`: non-parametric LayerNorm of `k` columns,
    /// X's row stride `ldx`, Y's `k`.
    func layerNormRows(k: Int, ldx: Int, eps: Float) -> IRFunction {
        define("tfc.lnrows.k\(k).x\(ldx).e\(eps.bitPattern)", voidT, [pf32, i64, pf32], attributes: ["nounwind"]) { fn in
            let X = self.param(fn, 0), rows = self.param(fn, 1), Y = self.param(fn, 2)
            let full = k / self.width * self.width, tail = k - full
            self.loop(0, rows) { r in
                let x = self.gep(X, self.mul(r, ldx)), y = self.gep(Y, self.mul(r, k))
                let (mean, rstd) = self.rowMoments(x, k: k, eps: eps)
                self.loop(0, self.i64(full), step: self.width) { c in
                    self.storeV(self.fmul(self.fsub(self.loadV(x, c), mean), rstd), y, c)
                }
                if tail > 0 {
                    let c = self.i64(full), m = self.laneMask(tail)
                    self.maskedStoreV(self.fmul(self.fsub(self.maskedLoadV(x, c, m), mean), rstd), y, c, m)
                }
            }
            self.retVoid()
        }
    }
}

extension KernelModule {
    /// Emits an int8 Pattention kernel (once per distinct spec) and returns its symbol.
    @discardableResult
    public func addInt8Pattention(_ spec: Int8PattentionKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        precondition(!spec.vnni || target.has("avx512vnni"), "vpdpbusd needs a module with +avx512vnni")
        let g = gen
        let m = spec.sites.count
        let ld = (0..<m).map(spec.scoreStride)
        let xQuant = Int8ActivationQuantizerSpec(k: spec.dIn, ldx: spec.layerNormEps == nil ? spec.ldx : spec.dIn)
        let layerNorm = spec.layerNormEps.map { g.layerNormRows(k: spec.dIn, ldx: spec.ldx, eps: $0) }
        let quantizeX = g.int8QuantizeRows(xQuant)
        let scoreGemms = (0..<m).map { Int8GemmKernelSpec(k: spec.dIn, n: spec.sites[$0].tokens, ldc: ld[$0], vnni: spec.vnni, for: vector) }
        let valueGemms = (0..<m).map { i in
            Int8GemmKernelSpec(k: spec.sites[i].tokens, n: spec.sites[i].dOut, ldc: spec.sites[i].ldy, accumulate: spec.sites[i].residual,
                               vnni: spec.vnni, for: vector)
        }
        let aQuant = (0..<m).map { Int8ActivationQuantizerSpec(k: spec.sites[$0].tokens, ldx: ld[$0]) }
        let quantizeA = aQuant.map { g.int8QuantizeRows($0) }
        let scorePanels = scoreGemms.map { g.int8GemmPanels($0) }
        let valuePanels = valueGemms.map { g.int8GemmPanels($0) }
        let act = (0..<m).map { g.pattentionActivation(spec.sites[$0], ld: ld[$0]) }
        let rope = (0..<m).map { i in spec.sites[i].rotary.map { g.rotaryEpilogue($0, ld: spec.sites[i].ldy) } }

        /// Splits a GEMM's panels into parallel tasks, a few per thread.
        func split(_ s: Int8GemmKernelSpec) -> (perTask: Int, tasks: Int) {
            let panels = s.layout.panels
            let per = max(1, (panels + Int8GemmKernelSpec.columnTasks - 1) / Int8GemmKernelSpec.columnTasks)
            return (per, (panels + per - 1) / per)
        }
        /// The stored int8 weight at `blob` (codes and scales), as the GEMM's argument.
        func parts(_ blob: LLVMValueRef, _ layout: Int8PanelLayout) -> [LLVMValueRef] { [g.ptrToInt(blob)] }
        // ctx: 0 args, 1 T, 2 Xq, 3 xScale, 4 xSums, then per site: 5+4i S, 6+4i Aq, 7+4i aScale, 8+4i aSums;
        // then 5+4m the LayerNormed X, 6+4m the position of row 0
        /// One parallel task over every site's panel tasks (site i's from `first[i]`), so the
        /// sites' products share one dispatch: decode's products are a few µs each.
        func gemmTask(_ name: String, _ specs: [Int8GemmKernelSpec], _ fs: [IRFunction],
                      _ body: @escaping (Int, LLVMValueRef, LLVMValueRef) -> [LLVMValueRef]) -> (task: IRFunction, count: Int) {
            let counts = specs.map { split($0).tasks }
            let first = counts.indices.map { counts[..<$0].reduce(0, +) }
            let task = g.task(name) { ctx, index in
                let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
                for i in 0..<m {
                    let mine = LLVMBuildAnd(g.builder, g.icmp(LLVMIntSGE, index, g.i64(first[i])),
                                            g.icmp(LLVMIntSLT, index, g.i64(first[i] + counts[i])), "")!
                    g.ifThen(mine) {
                        let per = split(specs[i]).perTask
                        let p0 = g.mul(g.sub(index, g.i64(first[i])), per)
                        let p1 = g.smin(g.i64(specs[i].layout.panels), g.add(p0, per))
                        g.call(fs[i], body(i, ctx, args) + [g.contextInt(ctx, 1), p0, p1])
                    }
                }
            }
            return (task, counts.reduce(0, +))
        }
        let scoreTask = gemmTask(symbol + ".scores", scoreGemms, scorePanels) { i, ctx, args in
            // A: Xq, its group scales and sums, B: K (codes, group scales), C: S
            [g.contextInt(ctx, 2), g.contextInt(ctx, 3), g.contextInt(ctx, 4)] + parts(g.argPtr(args, 1 + 3 * i), scoreGemms[i].layout)
                + [g.contextInt(ctx, 5 + 4 * i)]
        }
        let valueTask = gemmTask(symbol + ".values", valueGemms, valuePanels) { i, ctx, args in
            [g.contextInt(ctx, 6 + 4 * i), g.contextInt(ctx, 7 + 4 * i), g.contextInt(ctx, 8 + 4 * i)] + parts(g.argPtr(args, 2 + 3 * i), valueGemms[i].layout)
                + [g.ptrToInt(g.argPtr(args, 3 + 3 * i))]
        }
        // Θ of one (site, row) per task, then that row's quantisation for the value product.
        let pi32 = LLVMPointerType(g.i32, 0)!
        let actTask = g.task(symbol + ".act") { ctx, index in
            let T = g.contextInt(ctx, 1)
            let site = g.sdiv(index, T), row = LLVMBuildSRem(g.builder, index, T, "")!
            g.switchOn(site, cases: (0..<m).map { i in (i, {
                let scores = g.gep(g.contextPtr(ctx, 5 + 4 * i), g.mul(row, ld[i]))
                g.call(act[i], [scores, g.i64(1)])
                let codes = g.gep(g.intToPtr(g.contextInt(ctx, 6 + 4 * i), g.pi8), g.mul(row, aQuant[i].lda))
                let groupSlot = g.mul(row, aQuant[i].groups)
                g.call(quantizeA[i], [scores, g.i64(1), codes, g.gep(g.contextPtr(ctx, 7 + 4 * i), groupSlot),
                                      g.gep(g.intToPtr(g.contextInt(ctx, 8 + 4 * i), pi32), groupSlot)])
            }) })
        }

        // X's rows in blocks of `prepRows`: LayerNorm (when the kernel has it) and quantisation.
        let prepRows = 16
        let prepTask = g.task(symbol + ".prep") { ctx, index in
            let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
            let T = g.contextInt(ctx, 1)
            let r0 = g.mul(index, prepRows), rows = g.smin(g.i64(prepRows), g.sub(T, r0))
            var source = g.gep(g.argPtr(args, 0), g.mul(r0, spec.ldx))
            if let layerNorm {
                let normed = g.gep(g.contextPtr(ctx, 5 + 4 * m), g.mul(r0, spec.dIn))
                g.call(layerNorm, [source, rows, normed])
                source = normed
            }
            let slot = g.mul(r0, xQuant.groups)
            g.call(quantizeX, [source, rows, g.gep(g.intToPtr(g.contextInt(ctx, 2), g.pi8), g.mul(r0, xQuant.lda)),
                               g.gep(g.contextPtr(ctx, 3), slot), g.gep(g.intToPtr(g.contextInt(ctx, 4), pi32), slot)])
        }

        // Rotary on the output rows of the sites that have it, in blocks of `prepRows`.
        let rotarySites = (0..<m).filter { rope[$0] != nil }
        let ropeTask = g.task(symbol + ".rope") { ctx, index in
            let args = g.intToPtr(g.contextInt(ctx, 0), LLVMPointerType(g.pi8, 0))
            let T = g.contextInt(ctx, 1), p0 = g.contextInt(ctx, 6 + 4 * m)
            let blocks = g.ceilDiv(T, prepRows)
            let which = g.sdiv(index, blocks), block = LLVMBuildSRem(g.builder, index, blocks, "")!
            let r0 = g.mul(block, prepRows), rows = g.smin(g.i64(prepRows), g.sub(T, r0))
            g.switchOn(which, cases: rotarySites.enumerated().map { (k, i) in (k, {
                g.call(rope[i]!, [g.gep(g.argPtr(args, 3 + 3 * i), g.mul(r0, spec.sites[i].ldy)), rows, g.add(p0, r0)])
            }) })
        }

        defineKernel(symbol) { args, T, p0 in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                // Scratch (floats, each part rounded to 16 = 64 bytes): LayerNormed X, Xq, x group
                // scales and sums, then per site S, Aq, its group scales and sums.
                func floats(_ bytesPerRow: Int) -> LLVMValueRef { g.mul(g.ceilDiv(g.mul(T, bytesPerRow), 64), 16) }
                var sizes: [LLVMValueRef] = [floats(spec.dIn * 4), floats(xQuant.lda), floats(4 * xQuant.groups), floats(4 * xQuant.groups)]
                for i in 0..<m { sizes += [floats(ld[i] * 4), floats(aQuant[i].lda), floats(4 * aQuant[i].groups), floats(4 * aQuant[i].groups)] }
                var offsets: [LLVMValueRef] = []
                var total = g.i64(0)
                for size in sizes { offsets.append(total); total = g.add(total, size) }
                let scratch = g.threadScratch(floats: total)
                let at = offsets.map { g.gep(scratch, $0) }
                var context = [g.ptrToInt(args), T, g.ptrToInt(at[1]), g.ptrToInt(at[2]), g.ptrToInt(at[3])]
                for i in 0..<m { context += (0..<4).map { g.ptrToInt(at[4 + 4 * i + $0]) } }
                let ctx = g.makeContext(context + [g.ptrToInt(at[0]), p0])
                g.parallelFor(prepTask, ctx, g.ceilDiv(T, prepRows))
                g.parallelFor(scoreTask.task, ctx, g.i64(scoreTask.count))
                g.parallelFor(actTask, ctx, g.mul(T, g.i64(m)))
                g.parallelFor(valueTask.task, ctx, g.i64(valueTask.count))
                if !rotarySites.isEmpty { g.parallelFor(ropeTask, ctx, g.mul(g.ceilDiv(T, prepRows), g.i64(rotarySites.count))) }
            }
        }
        return symbol
    }
}
