import CLLVM

/// The int8 logits head and embedding lookup (`--weights-format int8`), both reading one stored
/// int8 table: the embedding `E[vocab, d]` packed as `B = Eᵀ` (`PanelLayout.packStored`,
/// transposed), one scale per vocabulary row and group of 32 features.
///
/// Logits: `C[T, vocab] = quant(X)[T, d] · Bq`, X's rows quantised in groups, threads splitting the
/// vocabulary panels. ABI `args = [X, table, C]`, X `[T, ldx]`, C `[T, ldc]`.
public struct Int8LogitsKernelSpec: Hashable, Sendable, CustomStringConvertible {
    public var gemm: Int8GemmKernelSpec
    public var ldx: Int

    public init(k: Int, n: Int, ldx: Int? = nil, ldc: Int? = nil, vnni: Bool = false, for vector: VectorTarget) {
        gemm = Int8GemmKernelSpec(k: k, n: n, ldc: ldc, vnni: vnni, for: vector)
        self.ldx = ldx ?? k
    }

    /// The table's layout (shared with `Int8EmbeddingKernel`: the table is stored once).
    public var tableLayout: PanelLayout { gemm.layout.geometry }
    public var description: String { "logits-int8 k=\(gemm.k) n=\(gemm.n) ldx=\(ldx) ldc=\(gemm.ldc)\(gemm.vnni ? " vpdpbusd" : " pairs")" }
    public var symbol: String { "tfc_logits_i8_" + stableHash(description) }
}

extension KernelModule {
    @discardableResult
    public func addInt8Logits(_ spec: Int8LogitsKernelSpec) -> String {
        let symbol = spec.symbol
        if hasKernel(symbol) { return symbol }
        precondition(!spec.gemm.vnni || target.has("avx512vnni"), "vpdpbusd needs a module with +avx512vnni")
        let g = gen
        let quant = Int8ActivationQuantizerSpec(k: spec.gemm.k, ldx: spec.ldx)
        let quantize = g.int8QuantizeRows(quant)
        let panels = g.int8GemmPanels(spec.gemm)
        let layout = spec.gemm.layout
        let per = max(1, (layout.panels + Int8GemmKernelSpec.columnTasks - 1) / Int8GemmKernelSpec.columnTasks)
        let tasks = (layout.panels + per - 1) / per
        // ctx: 0 Aq, 1 aScale, 2 aSums, 3 table, 4 C, 5 T
        let task = g.task(symbol + ".cols") { ctx, i in
            let p0 = g.mul(i, per)
            g.call(panels, (0..<6).map { g.contextInt(ctx, $0) } + [p0, g.smin(g.i64(layout.panels), g.add(p0, per))])
        }
        defineKernel(symbol) { args, T, _ in
            g.ifThen(g.icmp(LLVMIntSGT, T, g.i64(0))) {
                let codesFloats = g.mul(g.ceilDiv(g.mul(T, quant.lda), 64), 16)
                let groupFloats = g.mul(g.ceilDiv(g.mul(T, 4 * quant.groups), 64), 16)
                let scratch = g.threadScratch(floats: g.add(codesFloats, g.mul(groupFloats, 2)))
                let Aq = scratch, aScale = g.gep(scratch, codesFloats), aSums = g.gep(aScale, groupFloats)
                g.call(quantize, [g.argPtr(args, 0), T, g.bitcast(Aq, g.pi8), aScale, g.bitcast(aSums, LLVMPointerType(g.i32, 0)!)])
                let table = g.ptrToInt(g.argPtr(args, 1))
                let ctx = g.makeContext([g.ptrToInt(Aq), g.ptrToInt(aScale), g.ptrToInt(aSums), table, g.ptrToInt(g.argPtr(args, 2)), T])
                g.parallelFor(task, ctx, g.i64(tasks))
            }
        }
        return symbol
    }

    /// The embedding lookup from the int8 logits table: row t of `Y[T, ldy]` is token
    /// `tokens[t]`'s codes times their group scales (`Int8PanelLayout.Packed.dequantizedColumn`).
    /// ABI `args = [tokens (int32), table, Y]`.
    @discardableResult
    public func addInt8Embedding(table: PanelLayout, ldy: Int) -> String {
        let layout = Int8PanelLayout(table)
        let symbol = "tfc_embedding_i8_k\(layout.k)_n\(layout.n)_r\(layout.nr)_y\(ldy)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        defineKernel(symbol) { args, T, _ in
            let tokens = g.bitcast(g.argPtr(args, 0), LLVMPointerType(g.i32, 0)!)
            let codes = g.bitcast(g.argPtr(args, 1), g.pi8)
            let Y = g.argPtr(args, 2)
            g.loop(0, T) { t in
                let j = g.sext64(g.load(g.gep(tokens, t)))
                // Column j: panel j / nr, lane j % nr (`Int8PanelLayout.offset` and `scaleOffset`:
                // a lane's codes are 4-byte words, its scales 2-byte ones).
                let panel = g.sdiv(j, g.i64(layout.nr)), lane = LLVMBuildSRem(g.builder, j, g.i64(layout.nr), "")!
                let panelStart = g.gep(codes, g.mul(panel, layout.panelBytes))
                let column = g.gep(panelStart, g.mul(lane, 4)), scaleLane = g.gep(panelStart, g.mul(lane, Int8PanelLayout.scaleBytes))
                let y = g.gep(Y, g.mul(t, ldy))
                for group in 0..<layout.groups {
                    let quads = layout.quads(inGroup: group), base = group * layout.groupBytes
                    let scale = g.loadBF16Scalar(g.bitcast(g.gep(scaleLane, base + quads * layout.nr * 4), g.pi16))
                    let k0 = group * Int8Quantization.groupDepth, k1 = min(layout.k, k0 + Int8Quantization.groupDepth)
                    g.loop(0, g.i64(k1 - k0)) { i in
                        let offset = g.add(g.mul(g.sdiv(i, g.i64(4)), layout.nr * 4), LLVMBuildAnd(g.builder, i, g.i64(3), "")!)
                        let code = LLVMBuildSIToFP(g.builder, g.load(g.gep(column, g.add(offset, base)), align: 1), g.f32, "")!
                        g.storeF(g.fmul(code, scale), y, g.add(i, k0))
                    }
                }
            }
        }
        return symbol
    }
}
