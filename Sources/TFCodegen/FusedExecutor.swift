import Foundation
import TFIR
import TFPasses
import TFRuntime

/// The fused backend: runs the fusion passes, emits the whole model as one program of
/// explicitly vectorised kernels (`ModelProgram`), JIT-compiles it (or loads it from the
/// compiled-code cache), packs the weights once into the kernels' panel layouts, and runs
/// forward passes that continue from its KV caches. Its table follows the program's
/// `ProgramLayout`, as a compiled program's does: the weights block filled in memory, and one
/// arena (activations, scratch, KV caches) reserved for the whole context but taking memory only
/// as rows and positions are first written.
public final class FusedExecutor: ModelExecutor {
    public let graph: Graph
    public let fusedGraph: Graph
    public internal(set) var position = 0
    /// Seconds to emit, optimise and generate code (or load it from the cache).
    public let compileSeconds: Double
    /// Whether the compiled code came from the disk cache.
    public let cacheHit: Bool
    /// One line per kernel call, with its schedule.
    public let schedule: [String]
    public let plan: MemoryPlan
    /// The vector target the kernels run on.
    public var vector: VectorTarget { jit.target.vector }
    /// How the packed weights and the embedding are stored.
    public let weightFormat: WeightFormat
    /// How the KV caches store keys and values.
    public let kvFormat: KVCacheFormat

    let jit: KernelJIT
    let forwardAll: KernelEntryPoint
    let forwardLast: KernelEntryPoint
    let table: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let slots: [ModelProgram.Slot]
    /// Where every slot points (the description a compiled program's host reads too).
    public let layout: ProgramLayout
    /// `forward`'s kernel calls and their kinds (`profiledForward`).
    let calls: [KernelCall]
    public let callKinds: [String]
    /// The layout's weights block (raw float32 entries are read where `weights` keeps them).
    let weightsBlock: ZeroPages
    /// The layout's arena.
    let arena: ZeroPages
    let tokens: UnsafeMutablePointer<Int32>
    /// One row: where `forwardLast` writes (`forward` points the slot at its returned array).
    let logits: AlignedBuffer
    let logitsSlot: Int?

    /// Looks up a parameter's float32 data by checkpoint name (already validated).
    public typealias WeightLookup = (String) -> UnsafeBufferPointer<Float>

    /// - Parameters:
    ///   - graph: the lowered (unfused) graph; the fusion passes run here.
    ///   - cache: where compiled code is kept between runs; nil compiles every time.
    ///   - notes: receives one-line notes (e.g. a damaged cache entry that was rebuilt).
    ///   - scheduleOverride: `key=value` pairs applied to every GEMM's schedule (see `ModelProgram`).
    ///   - target: the machine and vector target to emit for (default: the host's best; see
    ///     `VectorTarget.resolve` for a checked choice).
    ///   - weightFormat: how the packed weights and the embedding table are stored (they are
    ///     converted from the float32 `weights` once, here).
    ///   - kvFormat: how the KV caches store keys and values (bf16: rounded as appended).
    public init(graph: Graph, weights: WeightLookup, threads: Int, cache: CompiledCodeCache? = CompiledCodeCache(),
                scheduleOverride: String? = nil, target: TargetHost = .host, weightFormat: WeightFormat = .f32,
                kvFormat: KVCacheFormat = .f32, notes: (String) -> Void = { _ in }) throws {
        self.graph = graph
        tfc_set_num_threads(Int32(threads))
        let start = Date()
        fusedGraph = try PassPipeline.fusion.run(graph)
        let module = try KernelModule(name: "tfc_model", target: target)
        let program = try ModelProgram(fused: fusedGraph, into: module, scheduleOverride: scheduleOverride, weightFormat: weightFormat, kvFormat: kvFormat)
        slots = program.slots
        calls = program.calls
        callKinds = program.callKinds
        schedule = program.schedule
        plan = program.plan
        self.weightFormat = weightFormat
        self.kvFormat = kvFormat
        jit = try KernelJIT(target: target)
        // The key is the module's unoptimised IR itself, as for training: a tfc whose emission
        // changed (even without a version bump) never loads another build's code.
        let key = ["tfc \(tfcCodegenVersion)", "llvm \(TargetHost.llvmVersion)", jit.target.description,
                   "weights \(weightFormat)", "kv \(kvFormat)", try module.llvmIR()].joined(separator: "\n")
        let (object, hit) = try CompiledCodeCache.object(for: key, in: cache, notes: notes) { try module.objectFile() }
        try jit.addObject(object, name: "tfc_model", symbols: module.kernelNames)
        forwardAll = try jit.kernel(ModelProgram.forwardSymbol)
        forwardLast = try jit.kernel(ModelProgram.forwardLastSymbol)
        compileSeconds = Date().timeIntervalSince(start)
        cacheHit = hit

        // The program's table: one pointer per slot, where the layout places it.
        let config = graph.config
        layout = try ProgramLayout(program)
        weightsBlock = try ZeroPages(bytes: layout.weightsBytes, hugePages: true, what: "the packed weights")
        arena = try ZeroPages(bytes: layout.arenaBytes, what: "the activations and KV caches (context \(config.context))")
        for e in layout.entries where e.kind != .raw {
            try e.materialise(from: weights(e.name), into: weightsBlock.raw + e.offset)
        }
        table = .allocate(capacity: max(1, slots.count))
        tokens = .allocate(capacity: config.context)
        logits = AlignedBuffer(count: config.vocab, zeroed: true)
        var logitsSlot: Int? = nil
        for (i, placement) in layout.placements.enumerated() {
            switch placement {
            case .weight(let index):
                let e = layout.entries[index]
                // A raw float32 tensor is the caller's data as it is: no copy.
                table[i] = e.kind == .raw ? UnsafeMutableRawPointer(mutating: weights(e.name).baseAddress!) : weightsBlock.raw + e.offset
            case .arena(let offset, _):
                table[i] = arena.raw + offset
            case .tokens:
                table[i] = UnsafeMutableRawPointer(tokens)
            case .logits:
                logitsSlot = i
                table[i] = logits.raw
            }
        }
        self.logitsSlot = logitsSlot
    }

    deinit {
        table.deallocate()
        tokens.deallocate()
    }

    public func reset() { position = 0 }

    func prepare(_ ids: [Int32]) {
        precondition(!ids.isEmpty && position + ids.count <= graph.config.context, "tokens were validated by the caller")
        for (i, t) in ids.enumerated() { tokens[i] = t }
    }

    /// Runs `body` with the program's logits slot pointing into a fresh `[rows, vocab]` array,
    /// which it returns: the program writes every row's logits straight into it (a prompt's are
    /// 100 MB and more: no copy, and the fresh pages fault in as huge ones).
    func intoFreshLogits(rows: Int, _ body: () throws -> Void) rethrows -> Matrix {
        let count = rows * graph.config.vocab
        let data = try [Float](unsafeUninitializedCapacity: count) { out, initialized in
            if let logitsSlot {
                HugePages.advise(UnsafeMutableRawPointer(out.baseAddress!), bytes: count * 4)
                table[logitsSlot] = UnsafeMutableRawPointer(out.baseAddress!)
            } else {
                out.initialize(repeating: 0)
            }
            defer { if let logitsSlot { table[logitsSlot] = logits.raw } }
            try body()
            initialized = count
        }
        return Matrix(rows: rows, columns: graph.config.vocab, data: data)
    }

    /// Logits for every new row, `[T, vocab]`.
    public func forward(_ ids: [Int32]) -> Matrix {
        prepare(ids)
        let result = intoFreshLogits(rows: ids.count) { forwardAll(UnsafePointer(table), Int64(ids.count), Int64(position)) }
        position += ids.count
        return result
    }

    /// Logits of the last new row only (prefill for generation, and every decoding step).
    public func forwardLast(_ ids: [Int32]) -> [Float] {
        prepare(ids)
        forwardLast(UnsafePointer(table), Int64(ids.count), Int64(position))
        position += ids.count
        return Array(UnsafeBufferPointer(start: logits.pointer, count: graph.config.vocab))
    }
}

/// Part of the compiled-code cache key: bump when generated code changes meaning.
public let tfcCodegenVersion = "0.1.4"
