import TFIR
import TFAutodiff
import TFNaive
import TFCodegen
import TFRuntime
import TFPasses
import Foundation

/// The fused backend's gradient: runs a `GradGraph` with generated kernels, compiled once for the
/// graph's shapes. The forward pass runs the unfused graph op by op with the fused backend's
/// forward kernels (embedding gather, LayerNorm, one-site Pattention, attention as the attention
/// backward kernel's training-forward mode, add, logits GEMM; rotary as a host loop), keeping exactly the values the pass marked saved. The backward runs the
/// generated `PattentionBackwardSpec` (scores recomputed per block of rows),
/// `AttentionBackwardSpec` (flash-style, probabilities recomputed per row), and for the logits
/// head a GEMM (`dx = dy·E`) and a `TransposedGemmSpec` (`dE += dyᵀ·x`).
///
/// The loss and its seed (`addCrossEntropy`), the LayerNorm backward (`addLayerNormBackward`) and
/// AdamW (`addAdamW`) are generated kernels too; the remaining small backwards — embedding
/// scatter-add, rotary, add — are O(T·d) host loops with the oracle's arithmetic: not worth a
/// kernel next to the products. The rotary forward is a host loop too (`FusedRotary`: cached
/// cos/sin tables instead of the kernel's per-row `cos`, `sin` calls, with the kernel's bits). A batch of windows runs as one stack of rows. Weights are
/// packed into the kernels' panel layouts on first use; `adamW` (the trainer's update) packs a
/// tensor again as it updates it, `weightsChanged()` drops them all.
public final class FusedGradient: GradientBackend {
    public let grad: GradGraph
    let weights: WeightLookup
    let threads: Int
    /// The vector target every kernel (and its weight panels) is emitted for.
    public let vector: VectorTarget
    let jit: KernelJIT
    /// Seconds to emit and JIT-compile the kernels (or load them from the compiled-code cache).
    public let compileSeconds: Double
    /// Whether the compiled kernels came from the disk cache.
    public private(set) var cacheHit = false
    private var entries: [String: KernelEntryPoint] = [:]
    /// Per instruction: the symbols of its forward and backward kernels.
    private var forwardKernel: [ValueID: String] = [:]
    /// Per Pattention instruction: the training forward that keeps S and A (`scoresSaved`); per
    /// attention instruction the forward that keeps P (`savesProbabilities`).
    private var savingForwardKernel: [ValueID: String] = [:]
    private var backwardKernels: [ValueID: [String]] = [:]
    private let crossEntropyKernel: String
    /// A weight packed into a kernel's panel layout.
    private struct Pack {
        let source: UnsafePointer<Float>
        let layout: PanelLayout
        let transposed: Bool
        let buffer: AlignedBuffer
        func refresh() { transposed ? layout.packTransposed(source, into: buffer.pointer) : layout.pack(source, into: buffer.pointer) }
    }
    /// Packed weights by (tensor, layout). `adamW` packs a tensor's layouts again into the same
    /// buffers right after updating it, while the tensor is still in cache (100 mid steps took
    /// 2–5% less CPU time in `perf stat` than packing afresh at the next step's first use);
    /// `weightsChanged()` drops them all.
    private var packs: [String: Pack] = [:]
    private var scratchBuffers: [String: AlignedBuffer] = [:]
    /// Every weight's gradient, kept across steps and zeroed at the start of each (the kernels
    /// add into them): `runForUpdate` hands them to the update in place instead of copying them out.
    private var gradientBuffers: [String: AlignedBuffer] = [:]
    /// The kept gradient buffers `adamW` has zeroed since the last step began (it reads each
    /// once, with the kernel variant that leaves it 0): the next step skips zeroing them.
    private var zeroedGradients: Set<UnsafeMutablePointer<Float>> = []
    /// With `timesKernels`, the seconds spent in each kernel (by a readable name, summed over
    /// calls: `tfc bench train --profile`).
    public var timesKernels = false
    /// The clock `timesKernels` reads.
    public var kernelClock = StepClock.wall
    public private(set) var kernelSeconds: [String: Double] = [:]
    private var kernelNames: [String: String] = [:]
    /// The most bytes a step's kept Pattention scores and activations may take (S and A,
    /// `[rows, roundUp(n, 16)]` floats each, for every site): within it the forward keeps them and
    /// the backward skips its first product and Θ; a larger step recomputes them per row block.
    public let savedScoresBudget: Int

    /// - Throws: a `CodegenError` when LLVM fails, or a `FusedCapabilityError` for an op the fused
    ///   backend does not lower (never computed differently).
    /// - Parameter vector: the kernels' vector target (the caller checks that the CPU runs it).
    ///   AVX2 unless given (the command line passes the CPU's best: docs/training.md).
    ///   Results differ between targets by float32 rounding only.
    /// - Parameter cache: where the compiled kernels are kept between runs; nil compiles every time.
    /// - Parameter notes: receives one-line notes (a damaged cache entry that was rebuilt).
    public init(grad: GradGraph, weights: @escaping WeightLookup, threads: Int, vector: VectorTarget = .avx2,
                cache: CompiledCodeCache? = CompiledCodeCache(), savedScoresBudget: Int = FusedGradient.defaultSavedScoresBudget,
                notes: (String) -> Void = { _ in }) throws {
        self.grad = grad; self.weights = weights; self.threads = threads; self.vector = vector
        self.savedScoresBudget = savedScoresBudget
        let start = Date()
        _ = try FusedCapabilities.kernels(of: grad.forward)
        let module = try KernelModule(name: "tfc_training", target: .host(vector))
        let config = grad.forward.config
        for inst in grad.forward.instructions {
            let v = inst.result
            switch inst.op {
            case .tokens:
                break
            case .embedding:
                forwardKernel[v] = module.addEmbedding(d: config.hidden, ldy: config.hidden)
            case .layerNorm(let ln):
                let d = inst.type.columns!
                forwardKernel[v] = module.addLayerNorm(LayerNormKernelSpec(d: d, eps: Float(ln.eps), affine: ln.affine != nil, ldx: d, ldy: d))
                backwardKernels[v] = [module.addLayerNormBackward(d: d, eps: Float(ln.eps), affine: ln.affine != nil)]
            case .add:
                let d = inst.type.columns!
                forwardKernel[v] = module.addAdd(d: d, lda: d, ldb: d, ldy: d)
            case .rotary:
                break  // host loops over cached cos/sin tables (`FusedRotary`)
            case .pattention(let p):
                forwardKernel[v] = module.addPattention(Self.forwardSpec(p, vector))
                savingForwardKernel[v] = module.addPattentionTrainingForward(Self.backwardSpec(p, vector, saved: true))
                backwardKernels[v] = [module.addPattentionBackward(Self.backwardSpec(p, vector)),
                                      module.addPattentionBackward(Self.backwardSpec(p, vector, saved: true))]
                let shape = "d_in=\(p.inFeatures) n=\(p.tokens) d_out=\(p.outFeatures)"
                kernelNames[forwardKernel[v]!] = "pattention \(shape)"
                kernelNames[savingForwardKernel[v]!] = "pattention \(shape) (keeps S, A)"
                kernelNames[backwardKernels[v]![0]] = "pattention backward \(shape)"
                kernelNames[backwardKernels[v]![1]] = "pattention backward \(shape) (kept S, A)"
            case .attention(let a):
                // The forward is the backward kernel's training-forward mode (its score tiles and
                // softmax rows, then O += P·v; no KV cache); within the saved-scores budget it keeps
                // P for the backward, which then skips the score product and the exponentials.
                func spec(forward: Bool, saved: Bool) -> AttentionBackwardSpec {
                    AttentionBackwardSpec(heads: a.heads, headDim: a.headDim, causal: a.causal, forward: forward, savesProbabilities: saved)
                }
                forwardKernel[v] = module.addAttentionBackward(spec(forward: true, saved: false))
                savingForwardKernel[v] = module.addAttentionBackward(spec(forward: true, saved: true))
                backwardKernels[v] = [module.addAttentionBackward(spec(forward: false, saved: false)), module.addAttentionBackward(spec(forward: false, saved: true))]
                kernelNames[savingForwardKernel[v]!] = "attention (keeps P)"
                kernelNames[backwardKernels[v]![1]] = "attention backward (kept P)"
                kernelNames[forwardKernel[v]!] = "attention"
                kernelNames[backwardKernels[v]![0]] = "attention backward"
            case .logits:
                forwardKernel[v] = module.addGemm(Self.logitsSpec(config, vector))
                backwardKernels[v] = [module.addGemm(Self.logitsInputSpec(config, vector)),
                                      module.addTransposedGemm(TransposedGemmSpec(m: config.vocab, n: config.hidden)),
                                      module.addGemm(Self.logitsInputSpec(config, vector, accumulate: false))]
                kernelNames[forwardKernel[v]!] = "logits"
                kernelNames[backwardKernels[v]![0]] = "logits backward (dx)"
                kernelNames[backwardKernels[v]![1]] = "logits backward (dE)"
                kernelNames[backwardKernels[v]![2]] = "logits backward (dx)"
            case .columns, .fusedPattention:
                throw GradientBackendError("error: the fused backend cannot differentiate \(inst.op.name) (%\(v)): training runs on the unfused graph")
            }
        }
        module.addAdamW()
        module.addAdamW(zeroingGradient: true)
        crossEntropyKernel = module.addCrossEntropy(vocab: config.vocab)
        kernelNames[AdamWKernel.symbol] = "AdamW"
        kernelNames[AdamWKernel.zeroingSymbol] = "AdamW"
        kernelNames[crossEntropyKernel] = "cross-entropy"
        for symbols in backwardKernels.values where kernelNames[symbols[0]] == nil { kernelNames[symbols[0]] = "layernorm backward" }
        for inst in grad.forward.instructions where kernelNames[forwardKernel[inst.result] ?? ""] == nil {
            if let symbol = forwardKernel[inst.result] { kernelNames[symbol] = inst.op.name }
        }
        // Compiled once per model shape and target, then loaded from the compiled-code cache: the
        // key is the module's unoptimised IR itself (so any change of spec, shapes or generator
        // makes a new entry), with tfc's codegen version, LLVM's version and the target.
        jit = try KernelJIT(target: module.target)
        let key = ["tfc training \(tfcCodegenVersion)", "llvm \(TargetHost.llvmVersion)", jit.target.description, try module.llvmIR()]
            .joined(separator: "\n")
        let (object, hit) = try CompiledCodeCache.object(for: key, in: cache, notes: notes) { try module.objectFile() }
        cacheHit = hit
        try jit.addObject(object, name: "tfc_training", symbols: module.kernelNames)
        for symbol in Set(forwardKernel.values).union(savingForwardKernel.values).union(backwardKernels.values.joined())
            .union([AdamWKernel.symbol, AdamWKernel.zeroingSymbol, crossEntropyKernel]) { entries[symbol] = try jit.kernel(symbol) }
        compileSeconds = Date().timeIntervalSince(start)
    }

    static func site(_ p: PattentionOp) -> PattentionSite {
        PattentionSite(tokens: p.tokens, dOut: p.outFeatures, activation: PattentionActivation(p.norm), tau: p.norm == .softmax ? nil : Float(p.tau))
    }
    static func forwardSpec(_ p: PattentionOp, _ vector: VectorTarget) -> PattentionKernelSpec {
        PattentionKernelSpec(dIn: p.inFeatures, layerNormEps: nil, sites: [site(p)], schedule: GemmSchedule.choose(k: p.inFeatures, n: p.tokens, for: vector),
                             valueSchedule: GemmSchedule.choose(k: p.tokens, n: p.outFeatures, for: vector), ldx: p.inFeatures)
    }
    static func backwardSpec(_ p: PattentionOp, _ vector: VectorTarget, saved: Bool = false) -> PattentionBackwardSpec {
        PattentionBackwardSpec(dIn: p.inFeatures, tokens: p.tokens, dOut: p.outFeatures, activation: PattentionActivation(p.norm), tau: Float(p.tau),
                               vector: vector, scoresSaved: saved)
    }

    /// The default of `savedScoresBudget`: 512 MiB.
    public static let defaultSavedScoresBudget = 512 << 20

    /// Whether a step of `windows` windows of `t` rows keeps every Pattention site's S and A and
    /// every attention's P for its backward.
    func keepsScores(windows: Int, t: Int) -> Bool {
        let floats = grad.forward.instructions.reduce(0) { sum, inst in
            switch inst.op {
            case .pattention(let p): return sum + 2 * windows * t * Self.backwardSpec(p, vector).ld
            case .attention(let a): return sum + windows * Self.probabilitySpec(a).probabilityFloats(rows: t, for: vector)
            default: return sum
            }
        }
        return floats * 4 <= savedScoresBudget
    }
    static func probabilitySpec(_ a: AttentionOp) -> AttentionBackwardSpec {
        AttentionBackwardSpec(heads: a.heads, headDim: a.headDim, causal: a.causal, savesProbabilities: true)
    }
    /// logits = x · Eᵀ.
    static func logitsSpec(_ c: ModelConfig, _ vector: VectorTarget) -> GemmKernelSpec { GemmKernelSpec(k: c.hidden, n: c.vocab, for: vector) }
    /// dx += dlogits · E (B = E `[vocab, hidden]`, packed as it is); without `accumulate`, dx = dlogits · E.
    static func logitsInputSpec(_ c: ModelConfig, _ vector: VectorTarget, accumulate: Bool = true) -> GemmKernelSpec {
        GemmKernelSpec(k: c.vocab, n: c.hidden, accumulate: accumulate, for: vector)
    }

    private func call(_ symbol: String, _ args: [UnsafeMutableRawPointer?], rows: Int, p0: Int64 = 0) {
        let entry = entries[symbol]!
        timed(kernelNames[symbol] ?? symbol) { args.withUnsafeBufferPointer { entry($0.baseAddress, Int64(rows), p0) } }
    }

    /// `body`, its seconds added to `kernelSeconds[name]` with `timesKernels`.
    private func timed(_ name: String, _ body: () -> Void) {
        let start = timesKernels ? kernelClock.now() : 0
        body()
        if timesKernels { kernelSeconds[name, default: 0] += kernelClock.now() - start }
    }

    /// Weight `name` in `layout` (`packTransposed` of the `[n, k]` tensor, or `pack` of the `[k, n]` one).
    private func pack(_ name: String, _ layout: PanelLayout, transposed: Bool) -> AlignedBuffer {
        let key = "\(name) \(layout) \(transposed)"
        if let p = packs[key] { return p.buffer }
        let pack = Pack(source: weights(name).baseAddress!, layout: layout, transposed: transposed, buffer: AlignedBuffer(count: layout.count, zeroed: false))
        pack.refresh()
        packs[key] = pack
        return pack.buffer
    }

    /// The mean over windows of each window's mean next-token cross-entropy (the generated
    /// kernel's row losses, summed in double) and the logits' adjoint (scaled by 1 / windows).
    private func crossEntropy(_ logits: Tensor, _ windows: [[Int32]]) -> (loss: Double, seed: Tensor) {
        let seed = Tensor(rows: logits.rows, columns: logits.columns, zeroed: false)
        let t = windows[0].count
        var total = 0.0
        for (w, window) in windows.enumerated() {
            var losses = [Float](repeating: 0, count: t), ids = window
            ids.withUnsafeMutableBufferPointer { idp in losses.withUnsafeMutableBufferPointer { lp in
                call(crossEntropyKernel, [logits.at(row: w * t), UnsafeMutableRawPointer(idp.baseAddress!), seed.at(row: w * t),
                                          UnsafeMutableRawPointer(lp.baseAddress!)], rows: t)
            } }
            total += losses.reduce(0.0) { $0 + Double($1) } / Double(t - 1)
        }
        if windows.count > 1 {
            let inverse = 1 / Float(windows.count)
            for i in 0..<(seed.rows * seed.columns) { seed.storage.pointer[i] *= inverse }
        }
        return (total / Double(windows.count), seed)
    }

    /// A scratch buffer kept for the executor's lifetime (the Pattention backward's partial sums,
    /// the attention probabilities a forward keeps for its backward).
    private func scratch(_ key: String, floats: Int) -> AlignedBuffer {
        if let b = scratchBuffers[key] { return b }
        let b = AlignedBuffer(count: floats, zeroed: false)
        scratchBuffers[key] = b
        return b
    }

    /// The rotary embeddings' host loops and their tables, by rotation.
    private var rotaries: [String: FusedRotary] = [:]
    private func rotation(_ r: RotaryOp) -> FusedRotary {
        let key = "\(r.heads) \(r.headDim) \(r.rotaryDims) \(r.base)"
        if let known = rotaries[key] { return known }
        let made = FusedRotary(r)
        rotaries[key] = made
        return made
    }

    /// Drops the packed weights: call after changing the weights other than through `adamW`.
    public func weightsChanged() { packs = [:] }

    private func weight(_ name: String) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(mutating: weights(name).baseAddress!) }

    /// One AdamW step on one tensor with the generated kernel (the same bits as `AdamW.update`).
    /// A gradient in this backend's kept buffers (`runForUpdate`) is left 0, ready for the next step.
    public func adamW(_ w: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, scale: Double, m: UnsafeMutableBufferPointer<Float>,
                      v: UnsafeMutableBufferPointer<Float>, step: Int, lr: Double, decay: Bool, _ options: AdamWOptions) {
        precondition(gradient.count == w.count && m.count == w.count && v.count == w.count)
        let (c1, c2, shrink) = AdamW.corrections(step: step, lr: lr, decay: decay, options)
        let (stepSize, inverseRoot) = AdamW.stepFactors(lr: lr, correction1: c1, correction2: c2)
        var k = AdamWKernel.coefficients(scale: scale, beta1: options.beta1, beta2: options.beta2, stepSize: stepSize,
                                         inverseRootCorrection2: inverseRoot, shrink: shrink, epsilon: options.epsilon)
        let kept = UnsafeMutablePointer(mutating: gradient.baseAddress!)
        let zeroing = gradientBuffers.values.contains { $0.pointer == kept && $0.count == gradient.count }
        if zeroing { zeroedGradients.insert(kept) }
        k.withUnsafeMutableBufferPointer { kp in  // other gradients are only read
            call(zeroing ? AdamWKernel.zeroingSymbol : AdamWKernel.symbol, [UnsafeMutableRawPointer(w.baseAddress!), UnsafeMutableRawPointer(mutating: gradient.baseAddress!),
                                      UnsafeMutableRawPointer(m.baseAddress!), UnsafeMutableRawPointer(v.baseAddress!),
                                      UnsafeMutableRawPointer(kp.baseAddress!)], rows: w.count)
        }
        for pack in packs.values where pack.source == UnsafePointer(w.baseAddress!) { pack.refresh() }
    }

    /// The mean next-token cross-entropy alone.
    public func loss(_ tokens: [Int32]) -> Double {
        crossEntropy(forward([tokens], keepingScores: false).values[grad.forward.output]!, [tokens]).loss
    }

    /// Runs the forward graph on equally long windows stacked as rows (each from position 0);
    /// keeps the saved values (and the logits), frees the others. With `keepingScores`, every
    /// Pattention site also keeps its S and A for the backward (`scores`).
    private func forward(_ windows: [[Int32]], keepingScores: Bool)
        -> (values: [ValueID: Tensor], scores: [ValueID: (s: Tensor, a: Tensor)], probabilities: [ValueID: AlignedBuffer]) {
        let t = windows[0].count, rows = windows.count * t
        precondition(t >= 2 && t <= grad.forward.config.context && windows.allSatisfy { $0.count == t }, "windows were validated by the caller")
        tfc_set_num_threads(Int32(threads))
        let graph = grad.forward
        let keep = Set(grad.saved.map(\.value)).union([graph.output])
        var ids = Array(windows.joined())
        var values: [ValueID: Tensor] = [:]
        var scores: [ValueID: (s: Tensor, a: Tensor)] = [:]
        var probabilities: [ValueID: AlignedBuffer] = [:]
        var uses = graph.useCounts()
        for inst in graph.instructions {
            let v = inst.result
            guard case .f32 = inst.type.element, let columns = inst.type.columns else { continue }
            let x = inst.operands.compactMap { values[$0] }
            // A rotary turns its input in place, an add writes its sum over an operand (the second,
            // a Pattention output, first), when this is the operand's last use and nothing keeps it:
            // no fresh buffer for the result (element-wise, so each element is read before written).
            let candidates: [Int]
            switch inst.op {
            case .rotary: candidates = [0]
            case .add: candidates = [1, 0]
            default: candidates = []
            }
            let reused = candidates.first { i in
                let operand = inst.operands[i]
                return uses[operand] == 1 && !keep.contains(operand) && values[operand] != nil && x.count == inst.operands.count
            }
            let y = reused.map { x[$0] } ?? Tensor(rows: rows, columns: columns, zeroed: false)
            switch inst.op {
            case .embedding(let table):
                ids.withUnsafeMutableBufferPointer { call(forwardKernel[v]!, [UnsafeMutableRawPointer($0.baseAddress!), weight(table), y.raw], rows: rows) }
            case .layerNorm(let ln):
                var args = [x[0].raw, y.raw]
                if let affine = ln.affine { args += [weight(affine.weight), weight(affine.bias)] }
                call(forwardKernel[v]!, args, rows: rows)
            case .add:
                call(forwardKernel[v]!, [x[0].raw, x[1].raw, y.raw], rows: rows)
            case .rotary(let r):  // positions restart at 0 in every window
                timed("rotary (host)") { rotation(r).forward(x[0].storage.pointer, into: y.storage.pointer, rows: rows, width: columns, window: t) }
            case .pattention(let p) where keepingScores:
                let spec = Self.backwardSpec(p, vector, saved: true)
                let key = pack(p.keyName, spec.keyLayout, transposed: true)
                let value = spec.readsValueInPlace ? weight(p.valueName) : pack(p.valueName, spec.forwardValueLayout, transposed: false).raw
                let kept = (s: Tensor(rows: rows, columns: spec.ld, zeroed: false), a: Tensor(rows: rows, columns: spec.ld, zeroed: false))
                call(savingForwardKernel[v]!, [x[0].raw, key.raw, value, y.raw, kept.s.raw, kept.a.raw], rows: rows)
                scores[v] = kept
            case .pattention(let p):
                let spec = Self.forwardSpec(p, vector)
                let key = pack(p.keyName, spec.keyLayout(0), transposed: true)
                let value = pack(p.valueName, spec.valueLayout(0), transposed: false)
                call(forwardKernel[v]!, [x[0].raw, key.raw, value.raw, y.raw], rows: rows)
            case .attention(let a):  // each window attends within itself (positions from 0); the kernel writes y (p0 = 1)
                let perWindow = Self.probabilitySpec(a).probabilityFloats(rows: t, for: vector)
                // Kept across steps (a fresh buffer's page faults cost more than the kept P saves).
                let kept = keepingScores ? scratch("attention P %\(v) \(windows.count * perWindow)", floats: windows.count * perWindow) : nil
                for w in 0..<windows.count {
                    let args = [x[0].at(row: w * t), x[1].at(row: w * t), x[2].at(row: w * t), y.at(row: w * t)]
                    if let kept {
                        call(savingForwardKernel[v]!, args + [UnsafeMutableRawPointer(kept.pointer + w * perWindow)], rows: t, p0: 1)
                    } else {
                        call(forwardKernel[v]!, args, rows: t, p0: 1)
                    }
                }
                probabilities[v] = kept
            case .logits(let table):
                let e = pack(table, Self.logitsSpec(graph.config, vector).weightLayout, transposed: true)
                call(forwardKernel[v]!, [x[0].raw, e.raw, y.raw], rows: rows)
            case .tokens, .columns, .fusedPattention:
                preconditionFailure("refused by init")
            }
            values[v] = y
            for operand in inst.operands {
                uses[operand, default: 0] -= 1
                if uses[operand] == 0 && !keep.contains(operand) { values[operand] = nil }
            }
        }
        return (values, scores, probabilities)
    }

    /// `tokens` (at least 2, within the context) from position 0: the mean next-token
    /// cross-entropy and its gradient.
    public func run(_ tokens: [Int32]) -> GradientResult { run(batch: [tokens]) }

    /// Equally long windows as one stack of rows (the row-wise kernels see them all at once,
    /// attention, rotary and the loss go window by window): the mean of their losses and the
    /// gradient of that mean.
    public func run(batch windows: [[Int32]]) -> GradientResult {
        let (loss, gradients) = step(windows)
        return GradientResult(loss: loss, gradients: gradients.mapValues(\.array))
    }

    /// `run(batch:)` without copying the gradients out: they stay valid until the next run.
    public func runForUpdate(batch windows: [[Int32]]) -> (loss: Double, gradients: StepGradients) {
        let (loss, gradients) = step(windows)
        return (loss, .buffers(gradients))
    }

    private func step(_ windows: [[Int32]]) -> (loss: Double, gradients: [String: AlignedBuffer]) {
        let config = grad.forward.config, t = windows[0].count, rows = windows.count * t
        let (values, keptScores, keptProbabilities) = forward(windows, keepingScores: keepsScores(windows: windows.count, t: t))
        var scores = keptScores
        let tokens = Array(windows.joined())
        if gradientBuffers.isEmpty {
            for p in grad.parameters { gradientBuffers[p.name] = AlignedBuffer(count: p.elementCount, zeroed: false) }
        }
        let gradients = gradientBuffers
        for g in gradients.values where !zeroedGradients.contains(g.pointer) { g.pointer.update(repeating: 0, count: g.count) }
        zeroedGradients = []
        let (loss, seed) = crossEntropy(values[grad.loss.reads[0]]!, windows)
        var adjoints: [ValueID: Tensor] = [grad.loss.forward.result: seed]
        /// The adjoint of `value`, created zero on first use (kernels add into it).
        func adjoint(_ value: ValueID?, columns: Int) -> Tensor? {
            guard let value else { return nil }
            if let a = adjoints[value] { return a }
            let a = Tensor(rows: rows, columns: columns)
            adjoints[value] = a
            return a
        }
        /// The adjoint of `value` and whether it is new: then it is not zeroed, and the kernel
        /// writes its contribution instead of adding it (no memset, no read of zeros).
        func adjointOrFresh(_ value: ValueID, columns: Int) -> (tensor: Tensor, fresh: Bool) {
            if let a = adjoints[value] { return (a, false) }
            let a = Tensor(rows: rows, columns: columns, zeroed: false)
            adjoints[value] = a
            return (a, true)
        }
        for step in grad.steps {
            let inst = step.forward
            guard let dy = adjoints.removeValue(forKey: inst.result) else { continue }
            let read = step.reads.map { values[$0] }  // token ids (the embedding's read) are `tokens`
            switch inst.op {
            case .embedding(let table):  // scatter-add in place (the oracle's order of additions)
                let d = dy.columns, g = dy.storage.pointer, dTable = gradients[table]!.pointer
                for (row, token) in tokens.enumerated() {
                    let out = dTable + Int(token) * d, src = g + row * d
                    for j in 0..<d { out[j] += src[j] }
                }
            case .logits(let table):
                let (dx, fresh) = adjointOrFresh(step.operandAdjoints[0]!, columns: config.hidden)
                let e = pack(table, Self.logitsInputSpec(config, vector).weightLayout, transposed: false)
                let symbols = backwardKernels[inst.result]!
                call(symbols[fresh ? 2 : 0], [dy.raw, e.raw, dx.raw], rows: rows)
                call(symbols[1], [dy.raw, read[0]!.raw, gradients[table]!.raw], rows: rows)
            case .layerNorm(let ln):
                let dx = adjoint(step.operandAdjoints[0], columns: dy.columns) ?? Tensor(rows: rows, columns: dy.columns)
                var args = [read[0]!.raw, dy.raw, dx.raw]
                if let affine = ln.affine { args += [weight(affine.weight), gradients[affine.weight]!.raw, gradients[affine.bias]!.raw] }
                call(backwardKernels[inst.result]![0], args, rows: rows)
            case .pattention(let p):
                let kept = scores.removeValue(forKey: inst.result)
                let spec = Self.backwardSpec(p, vector, saved: kept != nil)
                let vt = pack(p.valueName, spec.valueTransposedLayout, transposed: true)
                let kp = spec.readsKeyInPlace ? weight(p.keyName) : pack(p.keyName, spec.keyPlainLayout, transposed: false).raw
                let (dx, fresh) = adjointOrFresh(step.operandAdjoints[0]!, columns: p.inFeatures)
                let partials = scratch(spec.description, floats: spec.partialFloats(threads: threads))
                // Recomputed S needs K's transposed panels in the second argument; saved S and A take its place and the end.
                let first = kept?.s.raw ?? pack(p.keyName, spec.keyLayout, transposed: true).raw
                call(backwardKernels[inst.result]![kept == nil ? 0 : 1], [read[0]!.raw, first, vt.raw, kp, dy.raw, dx.raw, gradients[p.keyName]!.raw,
                                                                         gradients[p.valueName]!.raw, partials.raw] + (kept.map { [$0.a.raw] } ?? []), rows: rows,
                     p0: fresh ? 1 : 0)
            case .rotary(let r):
                guard let operand = step.operandAdjoints[0] else { break }
                if let dx = adjoints[operand] {
                    timed("rotary backward (host)") { rotation(r).backward(dy.storage.pointer, into: dx.storage.pointer, rows: rows, width: dy.columns, window: t) }
                } else {  // the first contribution: dy turned back in place becomes the adjoint
                    timed("rotary backward (host)") { rotation(r).backwardInPlace(dy.storage.pointer, rows: rows, width: dy.columns, window: t) }
                    adjoints[operand] = dy
                }
            case .attention(let a):
                let width = a.heads * a.headDim
                // Fresh adjoints are written by the kernel (p0's bits 1, 2, 4 for dq, dk, dv), unless
                // two operands share one adjoint (the kernel's writes and adds would then interleave).
                let operands = step.operandAdjoints.prefix(3).compactMap { $0 }
                let distinct = Set(operands).count == operands.count
                var writes: Int64 = 0
                let d = (0..<3).map { i -> Tensor in
                    guard distinct else { return adjoint(step.operandAdjoints[i], columns: width) ?? Tensor(rows: rows, columns: width) }
                    guard let operand = step.operandAdjoints[i] else { writes |= 1 << i; return Tensor(rows: rows, columns: width, zeroed: false) }
                    let (tensor, fresh) = adjointOrFresh(operand, columns: width)
                    if fresh { writes |= 1 << i }
                    return tensor
                }
                let kept = keptProbabilities[inst.result], perWindow = Self.probabilitySpec(a).probabilityFloats(rows: t, for: vector)
                for w in 0..<windows.count {
                    let r = w * t
                    let args = [read[0]!.at(row: r), read[1]!.at(row: r), read[2]!.at(row: r), dy.at(row: r), d[0].at(row: r), d[1].at(row: r), d[2].at(row: r)]
                    if let kept {
                        call(backwardKernels[inst.result]![1], args + [UnsafeMutableRawPointer(kept.pointer + w * perWindow)], rows: t, p0: writes)
                    } else {
                        call(backwardKernels[inst.result]![0], args, rows: t, p0: writes)
                    }
                }
            case .add:  // dy itself becomes the first adjoint not yet made; the others add it in
                var moved = false
                for operand in step.operandAdjoints.prefix(2) {
                    guard let operand else { continue }
                    if let a = adjoints[operand] {
                        let out = a.storage.pointer, g = dy.storage.pointer
                        for i in 0..<(rows * dy.columns) { out[i] += g[i] }
                    } else if !moved {
                        adjoints[operand] = dy; moved = true
                    } else {
                        let a = Tensor(rows: rows, columns: dy.columns, zeroed: false)
                        a.storage.pointer.update(from: dy.storage.pointer, count: rows * dy.columns)
                        adjoints[operand] = a
                    }
                }
            case .tokens, .columns, .fusedPattention:
                preconditionFailure("refused by init")
            }
        }
        return (loss, gradients)
    }
}

/// A `[rows, columns]` float32 activation in an aligned buffer the kernels read and write.
final class Tensor {
    let rows: Int
    let columns: Int
    let storage: AlignedBuffer

    /// `zeroed: false` for a value a kernel writes in full (forward outputs).
    init(rows: Int, columns: Int, zeroed: Bool = true) {
        self.rows = rows; self.columns = columns
        storage = AlignedBuffer(count: max(1, rows * columns), zeroed: zeroed)
    }
    convenience init(_ m: Matrix) {
        self.init(rows: m.rows, columns: m.columns)
        m.data.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }
    var raw: UnsafeMutableRawPointer { storage.raw }
    /// Where row `row` starts.
    func at(row: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(storage.pointer + row * columns) }
    /// Rows `range` as a matrix.
    func matrix(rows range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, columns: columns,
               data: Array(UnsafeBufferPointer(start: storage.pointer + range.lowerBound * columns, count: range.count * columns)))
    }
    var matrix: Matrix { Matrix(rows: rows, columns: columns, data: Array(UnsafeBufferPointer(start: storage.pointer, count: rows * columns))) }
}
