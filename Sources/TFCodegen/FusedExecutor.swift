import Foundation
import TFIR
import TFPasses
import TFRuntime

/// The fused backend: runs the fusion passes, emits the whole model as one program of
/// explicitly vectorised kernels (`ModelProgram`), JIT-compiles it (or loads it from the
/// compiled-code cache), packs the weights once into the kernels' panel layouts, and runs
/// forward passes that continue from its KV caches. Activation buffers hold as many rows as the
/// longest call so far (grown when a longer one comes, never sized by the context up front); the
/// KV caches are reserved for the whole context but take memory only as positions are written.
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
    /// `forward`'s kernel calls and their kinds (`profiledForward`).
    let calls: [KernelCall]
    public let callKinds: [String]
    /// Keeps packed weights alive.
    var buffers: [AlignedBuffer] = []
    /// The KV caches.
    var caches: [ZeroPages] = []
    /// Activation and scratch buffers, `[rowCapacity, columns]` each, by slot.
    var rowBuffers: [AlignedBuffer] = []
    /// Rows the activation buffers hold now.
    var rowCapacity = 0
    let tokens: UnsafeMutablePointer<Int32>
    var logits: AlignedBuffer
    var logitsRows: Int
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

        // The program's table: one pointer per slot.
        let config = graph.config
        table = .allocate(capacity: max(1, slots.count))
        tokens = .allocate(capacity: config.context)
        logitsRows = 1
        logits = AlignedBuffer(count: config.vocab, zeroed: true)
        var logitsSlot: Int? = nil
        for (i, slot) in slots.enumerated() {
            switch slot {
            case .raw(let name):
                table[i] = UnsafeMutableRawPointer(mutating: weights(name).baseAddress!)
            case .rawBF16(let name):
                let source = weights(name)
                let rounded = AlignedBuffer(count: (source.count + 1) / 2, zeroed: false)  // counts floats: two bf16 each
                BF16.round(source, into: rounded.raw.assumingMemoryBound(to: UInt16.self))
                buffers.append(rounded)
                table[i] = rounded.raw
            case .packed(let name, let layout, let transposed):
                let packed = AlignedBuffer(count: (layout.storedBytes + 3) / 4, zeroed: false)
                layout.packStored(weights(name).baseAddress!, transposed: transposed, into: packed.raw)
                buffers.append(packed)
                table[i] = packed.raw
            case .buffer, .scratch:
                break  // sized by the first call (`reserveRows`)
            case .keyCache(let index, let floats), .valueCache(let index, let floats):
                let b = try ZeroPages(count: floats, what: "the KV cache of attention \(index) (context \(config.context))")
                caches.append(b)
                table[i] = b.raw
            case .tokens:
                table[i] = UnsafeMutableRawPointer(tokens)
            case .logits:
                logitsSlot = i
                table[i] = logits.raw
            }
        }
        self.logitsSlot = logitsSlot
    }

    /// Makes the activation and scratch buffers hold at least `rows` rows (rounded up to 16, and
    /// at least doubling, so a growing prompt reallocates rarely). Their contents do not outlive a
    /// call, so nothing is copied.
    private func reserveRows(_ rows: Int) {
        guard rows > rowCapacity else { return }
        let rounded = (max(rows, min(2 * rowCapacity, graph.config.context)) + 15) / 16 * 16
        var activation: [Int: AlignedBuffer] = [:]
        rowBuffers = []
        for (i, slot) in slots.enumerated() {
            switch slot {
            case .buffer(let index, let offset):
                if activation[index] == nil {
                    activation[index] = AlignedBuffer(count: rounded * plan.bufferColumns[index], zeroed: true)
                }
                table[i] = UnsafeMutableRawPointer(activation[index]!.pointer + offset)
            case .scratch(_, let columns):
                let b = AlignedBuffer(count: rounded * columns, zeroed: true)
                rowBuffers.append(b)
                table[i] = b.raw
            default: break
            }
        }
        rowBuffers += activation.values
        rowCapacity = rounded
    }

    deinit {
        table.deallocate()
        tokens.deallocate()
    }

    public func reset() { position = 0 }

    func prepare(_ ids: [Int32], logitRows: Int) {
        precondition(!ids.isEmpty && position + ids.count <= graph.config.context, "tokens were validated by the caller")
        reserveRows(ids.count)
        for (i, t) in ids.enumerated() { tokens[i] = t }
        if logitRows > logitsRows, let logitsSlot {
            logits = AlignedBuffer(count: logitRows * graph.config.vocab, zeroed: false)
            logitsRows = logitRows
            table[logitsSlot] = logits.raw
        }
    }

    /// Logits for every new row, `[T, vocab]`. The program writes them straight into the
    /// returned array (a prompt's are 100 MB and more: no copy, and the fresh pages fault in as
    /// huge ones).
    public func forward(_ ids: [Int32]) -> Matrix {
        prepare(ids, logitRows: 1)
        let count = ids.count * graph.config.vocab
        let data = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            if let logitsSlot {
                HugePages.advise(UnsafeMutableRawPointer(out.baseAddress!), bytes: count * 4)
                table[logitsSlot] = UnsafeMutableRawPointer(out.baseAddress!)
            } else {
                out.initialize(repeating: 0)
            }
            forwardAll(UnsafePointer(table), Int64(ids.count), Int64(position))
            if let logitsSlot { table[logitsSlot] = logits.raw }
            initialized = count
        }
        position += ids.count
        return Matrix(rows: ids.count, columns: graph.config.vocab, data: data)
    }

    /// Logits of the last new row only (prefill for generation, and every decoding step).
    public func forwardLast(_ ids: [Int32]) -> [Float] {
        prepare(ids, logitRows: 1)
        forwardLast(UnsafePointer(table), Int64(ids.count), Int64(position))
        position += ids.count
        return Array(UnsafeBufferPointer(start: logits.pointer, count: graph.config.vocab))
    }
}

/// Part of the compiled-code cache key: bump when generated code changes meaning.
public let tfcCodegenVersion = "0.1.4"
