import TFBench
import TFCodegen
import TFIR
import TFPasses

/// Where the fused backend plugs into `tfc bench`: the fused kernels (TFCodegen, JIT-compiled)
/// for `tfc bench kernels`, and the whole-model `FusedExecutor` for `tfc bench model`.
enum BenchFusedSide {
    /// `tfc bench kernels`: an object that compiles one fused kernel per case (see
    /// `FusedKernelProvider` in TFBench for exactly what each case's op, inputs and output mean).
    /// Called once per run, after the thread count is set.
    static func kernelProvider(graph: Graph, threads: Int, vector: VectorTarget) throws -> FusedKernelProvider? {
        try FusedKernels(context: graph.config.context, vector: vector)
    }

    /// `tfc bench model`: a factory making the fused `ModelExecutor` for `graph` (the unfused,
    /// lowered graph: the executor runs the passes) over `weights`. The bench times the factory
    /// call as the compile time. The compiled-code cache is not used (`cache: nil`), so that time
    /// is always a real compile — passes, code generation, optimisation, JIT and weight packing —
    /// never a load from the disk cache.
    static func modelFactory(graph: Graph, weights: BenchWeights, threads: Int, vector: VectorTarget,
                             weightFormat: WeightFormat = .f32, kvFormat: KVCacheFormat = .f32) -> ExecutorFactory? {
        let lookup = weights.lookup
        return { try FusedExecutor(graph: graph, weights: lookup, threads: threads, cache: nil, target: .host(vector), weightFormat: weightFormat,
                                   kvFormat: kvFormat) }
    }
}

/// The fused side of `tfc bench kernels`: each case's op compiled by one `KernelJIT` to the
/// kernel spec `ModelProgram` would use for it (cases sharing a spec, e.g. prefill and decode,
/// share the compiled kernel), weights packed into the kernel's panel layouts and the naive KV
/// cache copied into the attention kernel's layout, all in `prepare`, untimed. The returned
/// closure is exactly one kernel call on the workload's own input and output buffers. A case's
/// `weightFormat` picks the micro-kernel (`MicroKernelTable`, as `ModelProgram` does) and the
/// kernel: bf16 panels for the f32 kernels' bf16 micro-kernels, `Int8PattentionKernelSpec` and
/// `Int8LogitsKernelSpec` for int8.
final class FusedKernels: FusedKernelProvider {
    let jit: KernelJIT
    /// The model's context: the attention kernel's cache layout depends on it.
    let context: Int
    /// What the kernels are emitted for (schedules and the cache layout follow it).
    let vector: VectorTarget

    init(context: Int, vector: VectorTarget) throws {
        jit = try KernelJIT(target: .host(vector))
        self.context = context
        self.vector = vector
    }

    func prepare(_ w: KernelWorkload) throws -> (() -> Void)? {
        // The capability table decides; a case it refuses shows as n/a.
        guard FusedCapabilities.decide(w.kernel.op).kernel != nil else { return nil }
        // The micro-kernel the model program would pick for the case's weight format on this CPU.
        let micro = try MicroKernelTable.lookup(weights: w.kernel.weightFormat, isa: vector.isa, has: jit.target.has).kernel
        switch w.kernel.op {
        case .fusedPattention(let f): return try pattention(f, w, micro)
        case .attention(let a) where micro == .f32FMA: return try attention(a, w)
        case .layerNorm(let ln) where micro == .f32FMA: return try layerNorm(ln, w)
        case .logits(let table): return try logits(table, w, micro)
        default: return nil
        }
    }

    /// A weight packed into `layout` in its stored form (f32 or bf16 panels, int8 codes and scales).
    private func packed(_ layout: PanelLayout, _ weight: UnsafeBufferPointer<Float>, transposed: Bool) -> AlignedBuffer {
        let buffer = AlignedBuffer(count: (layout.storedBytes + 3) / 4, zeroed: false)
        layout.packStored(weight.baseAddress!, transposed: transposed, into: buffer.raw)
        return buffer
    }

    /// Pointer to a workload buffer, for a kernel's argument list.
    private func raw(_ b: UnsafeMutableBufferPointer<Float>, offset: Int = 0) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(b.baseAddress! + offset)
    }
    private func raw(_ b: UnsafeBufferPointer<Float>) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(mutating: b.baseAddress!)
    }

    /// One site or several side by side (`[rows, Σ d_out]`, as the naive side lays them out), with
    /// the LayerNorm prologue and rotary epilogues at positions `position ..<`. A residual op adds
    /// into its output: the closure first copies the residual (operand 1) there, as the model
    /// program does when the output is not the residual stream itself.
    private func pattention(_ f: FusedPattentionOp, _ w: KernelWorkload, _ micro: MicroKernelKind) throws -> (() -> Void)? {
        let outWidth = f.outFeatures
        var sites: [PattentionSite] = []
        for (site, rotary) in zip(f.sites, f.rotary) {
            let activation = PattentionActivation(site.norm)
            let rope = rotary.map { RotaryEmbedding(heads: $0.heads, headDim: $0.headDim, rotaryDims: $0.rotaryDims, base: $0.base) }
            sites.append(PattentionSite(tokens: site.tokens, dOut: site.outFeatures, activation: activation,
                                        tau: site.norm == .softmax ? nil : Float(site.tau), residual: f.residual, rotary: rope,
                                        ldy: outWidth))
        }
        let dIn = f.sites[0].inFeatures, eps = f.prologue.map { Float($0.eps) }
        let kernel: CompiledKernel, keyLayout: (Int) -> PanelLayout, valueLayout: (Int) -> PanelLayout
        if micro.weights == .int8 {
            let spec = Int8PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, vnni: micro == .int8VNNI, for: vector)
            kernel = try jit.compile(symbol: spec.symbol) { $0.addInt8Pattention(spec) }
            (keyLayout, valueLayout) = (spec.keyLayout, spec.valueLayout)
        } else {
            let spec = PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, microKernel: micro, for: vector)
            kernel = try jit.pattention(spec)
            (keyLayout, valueLayout) = (spec.keyLayout, spec.valueLayout)
        }
        var packed: [AlignedBuffer] = []
        var args: [UnsafeMutableRawPointer?] = [raw(w.inputs[0])]
        var column = 0
        for (i, site) in f.sites.enumerated() {
            let keys = self.packed(keyLayout(i), w.weight(site.keyName), transposed: true)
            let values = self.packed(valueLayout(i), w.weight(site.valueName), transposed: false)
            packed += [keys, values]
            args += [keys.raw, values.raw, raw(w.output, offset: column)]
            column += site.outFeatures
        }
        let rows = w.kernel.rows, position = w.kernel.position
        let jit = self.jit
        if f.residual {
            let residual = w.inputs[1].baseAddress!, output = w.output.baseAddress!
            return {
                _ = (jit, packed)
                output.update(from: residual, count: rows * outWidth)
                kernel(args, rows: rows, position: position)
            }
        }
        return {
            _ = (jit, packed)
            kernel(args, rows: rows, position: position)
        }
    }

    /// Attention (causal or not, as the op says): the naive cache's rows before `position` are
    /// copied into the kernel's cache layout once; each run appends the new k, v rows at
    /// `position ..<` (the same rows every run, so runs are repeatable) and attends to all.
    private func attention(_ a: AttentionOp, _ w: KernelWorkload) throws -> (() -> Void)? {
        let rows = w.kernel.rows, position = w.kernel.position
        guard position + rows <= context else { return nil }
        let spec = AttentionKernelSpec(heads: a.heads, headDim: a.headDim, context: context,
                                       causal: FusedCapabilities.decide(.attention(a)) == .kernel(.causalAttention), for: vector)
        let kernel = try jit.attention(spec)
        let keys = AlignedBuffer(count: spec.cacheFloats, zeroed: true)
        let values = AlignedBuffer(count: spec.cacheFloats, zeroed: true)
        if position > 0 {
            spec.storeCache(keys: w.keyCache!.baseAddress!, values: w.valueCache!.baseAddress!, rows: position, position: 0,
                            keyCache: keys.pointer, valueCache: values.pointer)
        }
        let args: [UnsafeMutableRawPointer?] = [raw(w.inputs[0]), raw(w.inputs[1]), raw(w.inputs[2]), raw(w.output), keys.raw, values.raw]
        let jit = self.jit
        return {
            _ = (jit, keys, values)
            kernel(args, rows: rows, position: position)
        }
    }

    private func layerNorm(_ ln: LayerNormOp, _ w: KernelWorkload) throws -> (() -> Void)? {
        let spec = LayerNormKernelSpec(d: w.kernel.inputWidths[0], eps: Float(ln.eps), affine: ln.affine != nil)
        let kernel = try jit.layerNorm(spec)
        var args: [UnsafeMutableRawPointer?] = [raw(w.inputs[0]), raw(w.output)]
        if let affine = ln.affine { args += [raw(w.weight(affine.weight)), raw(w.weight(affine.bias))] }
        let rows = w.kernel.rows
        let jit = self.jit
        return {
            _ = jit
            kernel(args, rows: rows)
        }
    }

    /// x · tableᵀ with the table packed once into the GEMM's panels (as the model program does).
    private func logits(_ table: String, _ w: KernelWorkload, _ micro: MicroKernelKind) throws -> (() -> Void)? {
        let k = w.kernel.inputWidths[0], n = w.kernel.outputWidth
        let kernel: CompiledKernel, layout: PanelLayout
        if micro.weights == .int8 {
            let spec = Int8LogitsKernelSpec(k: k, n: n, vnni: micro == .int8VNNI, for: vector)
            kernel = try jit.compile(symbol: spec.symbol) { $0.addInt8Logits(spec) }
            layout = spec.tableLayout
        } else {
            let spec = GemmKernelSpec(k: k, n: n, microKernel: micro, for: vector)
            kernel = try jit.gemm(spec)
            layout = spec.weightLayout
        }
        let packed = self.packed(layout, w.weight(table), transposed: true)
        let args: [UnsafeMutableRawPointer?] = [raw(w.inputs[0]), packed.raw, raw(w.output)]
        let rows = w.kernel.rows
        let jit = self.jit
        return {
            _ = (jit, packed)
            kernel(args, rows: rows)
        }
    }
}
