import TFIR
import TFPasses

/// A whole model as one generated program: every kernel the fused graph needs, emitted once per
/// distinct shape, and two exported entry points that call them in order,
/// `forward` (logits for every row) and `forward_last` (logits for the last row only, for
/// decoding). Both take the kernel ABI `(void *const *table, int64 T, int64 p0)`; `table` holds
/// one pointer per `Slot` (weights in their packed layouts, activation buffers, KV caches, the
/// token ids, the logits), filled by the host (`FusedExecutor`, or a compiled executable's main).
public struct ModelProgram {
    /// What a table entry points at.
    public enum Slot: Hashable, Sendable {
        /// A parameter tensor as stored (embedding rows, LayerNorm weight/bias).
        case raw(String)
        /// A parameter tensor as stored but each float rounded to bf16 (16-bit, same row-major
        /// order): the embedding table when the weights are bf16.
        case rawBF16(String)
        /// A parameter packed into GEMM panels: keys transposed (`Kᵀ`), values as they are.
        case packed(String, PanelLayout, transposed: Bool)
        /// Activation buffer `index` of the memory plan, advanced by `columnOffset` floats.
        case buffer(Int, columnOffset: Int)
        /// A buffer the program needs beyond the memory plan (stride fix-ups), `[context, columns]`.
        case scratch(Int, columns: Int)
        /// An attention's key or value cache, `floats` float-sized (4-byte) units whatever its
        /// element format (`AttentionKernelSpec.cacheFloats`); zeroed.
        case keyCache(Int, floats: Int)
        case valueCache(Int, floats: Int)
        /// Token ids, int32 `[context]`.
        case tokens
        /// Logits, `[context, vocab]`.
        case logits
    }

    public let graph: Graph
    public let plan: MemoryPlan
    /// The vector target the kernels were emitted for.
    public let vector: VectorTarget
    /// How packed weights are stored, and the micro-kernel that reads them.
    public let weightFormat: WeightFormat
    public let microKernel: MicroKernelKind
    /// How the attention kernels' KV caches store keys and values.
    public let kvFormat: KVCacheFormat
    /// One line per distinct GEMM shape: the register tile the cost model chose for `vector`
    /// and why (`--emit plan`).
    public private(set) var tileChoices: [String] = []
    public private(set) var slots: [Slot] = []
    private var slotIndex: [Slot: Int] = [:]
    /// One line per kernel call: what runs and with which schedule (`--emit plan`).
    public private(set) var schedule: [String] = []
    /// The calls of `forward`, in order, and for each the kind of op it computes, e.g.
    /// "pattention query/key/value", "attention", "copy" (`bench model --profile` times them one by one).
    public private(set) var calls: [KernelCall] = []
    public private(set) var callKinds: [String] = []
    /// Whether `forward_last` computes (and writes) the logits of the last row only.
    public let lastRowLogitsOnly: Bool
    public static let forwardSymbol = "tfc_model_forward"
    public static let forwardLastSymbol = "tfc_model_forward_last"

    /// Emits the model's kernels and programs into `module`. `scheduleOverride` (`key=value`
    /// pairs, e.g. `"mr=4 nr=24 kc=128"`) is applied on top of the schedule chosen for every GEMM,
    /// for experiments; it is part of `schedule`, and so of the compiled-code cache key.
    /// Kernels, schedules and the KV-cache layout follow `module.vector`.
    /// `weightFormat` is how the Pattention panels, the logits head and the embedding are stored;
    /// the micro-kernel table picks the kernel for it from the target's features. `kvFormat` is
    /// the KV caches' element format (the caches are the program's, so it is fixed here).
    public init(fused graph: Graph, into module: KernelModule, scheduleOverride: String? = nil, weightFormat: WeightFormat = .f32,
                kvFormat: KVCacheFormat = .f32) throws {
        self.graph = graph
        self.vector = module.vector
        let vector = module.vector
        self.plan = MemoryPlan(graph)
        var all: [KernelCall] = []
        var last: [KernelCall] = []
        var scratchCount = 0
        let config = graph.config
        let context = config.context
        let uses = graph.useCounts()
        // Values computed only for the logits can be computed for the last row alone when decoding.
        let lastRowOnly: Set<ValueID> = {
            guard let logits = graph.instruction(producing: graph.output),
                  let input = logits.operands.first, uses[input] == 1,
                  let producer = graph.instruction(producing: input), case .layerNorm = producer.op else { return [] }
            return [graph.output, input]
        }()
        lastRowLogitsOnly = !lastRowOnly.isEmpty

        let ukernel = try MicroKernelTable.lookup(weights: weightFormat, isa: vector.isa, has: module.target.has).kernel
        self.microKernel = ukernel
        self.weightFormat = weightFormat
        self.kvFormat = kvFormat
        /// The schedule for a GEMM of depth `k` into `n` columns: the chosen one, then the override.
        func gemmSchedule(k: Int, n: Int) throws -> GemmSchedule {
            let chosen = GemmSchedule.choose(k: k, n: n, for: vector)
            let line = "k=\(k) n=\(n): \(GemmTileCost.best(n: n, for: vector)) -> \(chosen), micro-kernel \(ukernel.name)"
            if !tileChoices.contains(line) { tileChoices.append(line) }
            guard let scheduleOverride else { return chosen }
            return try GemmSchedule(parsing: scheduleOverride, base: chosen, for: vector)
        }

        /// The logits GEMM (fp32 and bf16 heads): its panels are the tied bf16 embedding's too.
        func logitsSpec(ldx: Int) throws -> GemmKernelSpec {
            GemmKernelSpec(k: config.hidden, n: config.vocab, ldx: ldx, ldc: config.vocab,
                           schedule: try gemmSchedule(k: config.hidden, n: config.vocab), microKernel: ukernel, for: vector)
        }
        /// The table the logits head reads, when there is one.
        let tiedHead: String? = graph.instructions.lazy.compactMap { inst -> String? in
            if case .logits(let table) = inst.op { return table } else { return nil }
        }.first

        /// The int8 kernels' fixed tile (whole depth, groups of 32), for `--emit plan`.
        func int8Tile(k: Int, n: Int, nr: Int) {
            let line = "k=\(k) n=\(n): int8 \(Int8GemmKernelSpec(k: k, n: n, for: vector).mr)x\(nr) groups of \(Int8Quantization.groupDepth), micro-kernel \(ukernel.name)"
            if !tileChoices.contains(line) { tileChoices.append(line) }
        }

        func slot(_ s: Slot) -> Int {
            if let i = slotIndex[s] { return i }
            slots.append(s)
            slotIndex[s] = slots.count - 1
            return slots.count - 1
        }
        func location(_ v: ValueID) -> (slot: Int, stride: Int) {
            let l = plan.locations[v]!
            return (slot(.buffer(l.buffer, columnOffset: l.columnOffset)), plan.bufferColumns[l.buffer])
        }
        var kind = ""  // the kind of the instruction being emitted, for `callKinds`
        func emit(_ symbol: String, _ args: [Int], describe: String, lastRowStrides: [Int?]? = nil, value: ValueID) {
            all.append(KernelCall(symbol, args: args.map { KernelCall.Arg($0) }))
            callKinds.append(symbol.hasPrefix("tfc_copy") ? "copy" : kind)
            if lastRowOnly.contains(value), let strides = lastRowStrides {
                last.append(KernelCall(symbol, args: zip(args, strides).map { KernelCall.Arg($0, lastRowStride: $1) }, rows: .one, lastRowPosition: true))
            } else {
                last.append(KernelCall(symbol, args: args.map { KernelCall.Arg($0) }))
            }
            schedule.append(describe)
        }
        /// A copy of `v` with row stride `stride` when it has another one (a scratch buffer).
        func withStride(_ v: ValueID, columns: Int, stride: Int) -> Int {
            let (s, have) = location(v)
            if have == stride { return s }
            let scratch = slot(.scratch(scratchCount, columns: stride))
            scratchCount += 1
            emit(module.addCopy(d: columns, ldx: have, ldy: stride), [s, scratch], describe: "copy \(v) to row stride \(stride)", value: v)
            return scratch
        }

        // The capability table decides what lowers; an op it refuses stops here, located.
        let kernels = try FusedCapabilities.kernels(of: graph)
        for (inst, kernel) in zip(graph.instructions, kernels) {
            let v = inst.result
            kind = Self.kind(of: inst.op)
            switch inst.op {
            case .tokens, .columns:
                continue  // token ids come from the caller; a view is a pointer offset
            case .embedding(let table) where ukernel.weights == .int8:
                // Rows dequantised from the int8 logits table (stored once when the head is tied).
                let out = location(v)
                let layout = Int8LogitsKernelSpec(k: config.hidden, n: config.vocab, for: vector).tableLayout
                let k = module.addInt8Embedding(table: layout, ldy: out.stride)
                emit(k, [slot(.tokens), slot(.packed(table, layout, transposed: true)), out.slot], describe: "\(v) embedding gather int8 d=\(config.hidden)", value: v)
            case .embedding(let table) where ukernel.weights == .bf16 && tiedHead == table:
                // Rows widened from the bf16 logits panels: the tied table is stored once.
                let out = location(v)
                let layout = try logitsSpec(ldx: config.hidden).weightLayout
                let k = module.addBF16PanelEmbedding(table: layout, ldy: out.stride)
                emit(k, [slot(.tokens), slot(.packed(table, layout, transposed: true)), out.slot],
                     describe: "\(v) embedding gather d=\(config.hidden) bf16 (from the logits panels)", value: v)
            case .embedding(let table):
                // The embedding is stored in the weight format too (a bf16 table is widened as rows
                // are gathered). It may be the logits head's table as well: that one is another slot.
                let out = location(v)
                let bf16 = ukernel.weights == .bf16
                let k = module.addEmbedding(d: config.hidden, ldy: out.stride, bf16Table: bf16)
                emit(k, [slot(.tokens), slot(bf16 ? .rawBF16(table) : .raw(table)), out.slot],
                     describe: "\(v) embedding gather d=\(config.hidden)\(bf16 ? " bf16" : "")", value: v)
            case .layerNorm(let ln):
                let x = location(inst.operands[0]), y = location(v)
                let spec = LayerNormKernelSpec(d: inst.type.columns!, eps: Float(ln.eps), affine: ln.affine != nil, ldx: x.stride, ldy: y.stride)
                let k = module.addLayerNorm(spec)
                var args = [x.slot, y.slot]
                if let affine = ln.affine { args += [slot(.raw(affine.weight)), slot(.raw(affine.bias))] }
                emit(k, args, describe: "\(v) \(spec)", lastRowStrides: [x.stride, y.stride, nil, nil], value: v)
            case .add:
                let a = location(inst.operands[0]), b = location(inst.operands[1]), y = location(v)
                let k = module.addAdd(d: inst.type.columns!, lda: a.stride, ldb: b.stride, ldy: y.stride)
                emit(k, [a.slot, b.slot, y.slot], describe: "\(v) add d=\(inst.type.columns!)", value: v)
            case .rotary(let r):
                let x = location(inst.operands[0]), y = location(v)
                let rotary = RotaryEmbedding(heads: r.heads, headDim: r.headDim, rotaryDims: r.rotaryDims, base: r.base)
                let k = module.addRotary(rotary, ldx: x.stride, ldy: y.stride)
                emit(k, [x.slot, y.slot], describe: "\(v) \(rotary)", value: v)
            case .pattention(let p):
                // Not expected after the fusion passes; run it as a one-site fused kernel.
                try emitPattention(FusedPattentionOp(prologue: nil, sites: [p], rotary: [nil], residual: false), inst)
            case .fusedPattention(let f):
                try emitPattention(f, inst)
            case .attention(let a):
                let width = a.heads * a.headDim
                let q = location(inst.operands[0]).stride
                let stride = q
                let qs = withStride(inst.operands[0], columns: width, stride: stride)
                let ks = withStride(inst.operands[1], columns: width, stride: stride)
                let vs = withStride(inst.operands[2], columns: width, stride: stride)
                let out = location(v)
                let spec = AttentionKernelSpec(heads: a.heads, headDim: a.headDim, context: context, ldInput: stride, ldOutput: out.stride,
                                               causal: kernel == .causalAttention, kvFormat: kvFormat, for: vector)
                let k = module.addAttention(spec)
                emit(k, [qs, ks, vs, out.slot, slot(.keyCache(a.cacheSlot, floats: spec.cacheFloats)), slot(.valueCache(a.cacheSlot, floats: spec.cacheFloats))],
                     describe: "\(v) \(spec)", value: v)
            case .logits(let table) where ukernel.weights == .int8:
                let x = location(inst.operands[0])
                let spec = Int8LogitsKernelSpec(k: config.hidden, n: config.vocab, ldx: x.stride, ldc: config.vocab, vnni: ukernel == .int8VNNI, for: vector)
                int8Tile(k: config.hidden, n: config.vocab, nr: spec.gemm.nr)
                let k = module.addInt8Logits(spec)
                emit(k, [x.slot, slot(.packed(table, spec.tableLayout, transposed: true)), slot(.logits)],
                     describe: "\(v) \(spec)", lastRowStrides: [x.stride, nil, nil], value: v)
            case .logits(let table):
                let x = location(inst.operands[0])
                let spec = try logitsSpec(ldx: x.stride)
                let k = module.addGemm(spec)
                emit(k, [x.slot, slot(.packed(table, spec.weightLayout, transposed: true)), slot(.logits)],
                     describe: "\(v) logits \(spec)", lastRowStrides: [x.stride, nil, nil], value: v)
            }
        }

        func emitPattention(_ f: FusedPattentionOp, _ inst: Instruction) throws {
            let v = inst.result
            let x = location(inst.operands[0]), y = location(v)
            if f.residual && !plan.inPlace.contains(v) {
                // The kernel adds into its output: start the output as a copy of the residual.
                let r = location(inst.operands[1])
                emit(module.addCopy(d: f.outFeatures, ldx: r.stride, ldy: y.stride), [r.slot, y.slot], describe: "\(v) copy of the residual", value: v)
            }
            var sites: [PattentionSite] = []
            for (site, rotary) in zip(f.sites, f.rotary) {
                let activation = PattentionActivation(site.norm)
                let rope = rotary.map { RotaryEmbedding(heads: $0.heads, headDim: $0.headDim, rotaryDims: $0.rotaryDims, base: $0.base) }
                sites.append(PattentionSite(tokens: site.tokens, dOut: site.outFeatures, activation: activation,
                                            tau: site.norm == .softmax ? nil : Float(site.tau), residual: f.residual, rotary: rope, ldy: y.stride))
            }
            let dIn = f.sites[0].inFeatures, eps = f.prologue.map { Float($0.eps) }
            let symbol: String, described: String
            let keyLayout: (Int) -> PanelLayout, valueLayout: (Int) -> PanelLayout
            if ukernel.weights == .int8 {
                let spec = Int8PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, ldx: x.stride, vnni: ukernel == .int8VNNI, for: vector)
                for i in sites.indices {
                    int8Tile(k: dIn, n: sites[i].tokens, nr: spec.nr)
                    int8Tile(k: sites[i].tokens, n: sites[i].dOut, nr: spec.nr)
                }
                (symbol, described, keyLayout, valueLayout) = (module.addInt8Pattention(spec), spec.description, spec.keyLayout, spec.valueLayout)
            } else {
                let maxTokens = sites.map(\.tokens).max()!
                let spec = PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, schedule: try gemmSchedule(k: dIn, n: maxTokens),
                                                valueSchedule: try gemmSchedule(k: maxTokens, n: sites.map(\.dOut).max()!), ldx: x.stride,
                                                microKernel: ukernel, for: vector)
                (symbol, described, keyLayout, valueLayout) = (module.addPattention(spec), spec.description, spec.keyLayout, spec.valueLayout)
            }
            var args = [x.slot]
            let base = plan.locations[v]!
            var column = base.columnOffset
            for (i, site) in f.sites.enumerated() {
                args += [slot(.packed(site.keyName, keyLayout(i), transposed: true)),
                         slot(.packed(site.valueName, valueLayout(i), transposed: false)),
                         slot(.buffer(base.buffer, columnOffset: column))]
                column += site.outFeatures
            }
            emit(symbol, args, describe: "\(v) \(f.sites.map { $0.prefix }.joined(separator: " + ")): \(described)", value: v)
        }

        calls = all
        _ = module.addProgram(Self.forwardSymbol, calls: all)
        _ = module.addProgram(Self.forwardLastSymbol, calls: last)
    }

    /// A call's kind, the same for every layer: the op, and a Pattention's sites by their last name.
    static func kind(of op: Op) -> String {
        func sites(_ s: [PattentionOp]) -> String { s.map { $0.site.split(separator: ".").last.map(String.init) ?? $0.site }.joined(separator: "/") }
        switch op {
        case .embedding: return "embedding"
        case .layerNorm: return "layernorm"
        case .add: return "add"
        case .rotary: return "rotary"
        case .pattention(let p): return "pattention " + sites([p])
        case .fusedPattention(let f): return "pattention " + sites(f.sites)
        case .attention: return "attention"
        case .logits: return "logits"
        default: return "\(op)"
        }
    }
}
