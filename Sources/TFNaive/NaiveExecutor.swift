import Foundation
import COpenBLAS
import TFIR

/// Finds a parameter tensor's float32 data by checkpoint name (already validated against the graph).
public typealias WeightLookup = (String) -> UnsafeBufferPointer<Float>

/// The oracle backend: runs the IR one op at a time, OpenBLAS `sgemm` for every matrix product and
/// plain loops for the rest. Fused ops are run by composing their unfused parts, so the same
/// executor checks the fusion passes. It keeps a KV cache per attention op, so a forward pass on
/// new tokens continues from the previous ones.
public final class NaiveExecutor: ModelExecutor {
    public let graph: Graph
    let weights: WeightLookup
    /// KV caches: per slot, keys and values `[rows, width]`, row-major, grown as tokens arrive
    /// (a 3-token prompt at a context of millions holds 3 rows, not millions).
    var keyCache: [[Float]]
    var valueCache: [[Float]]
    /// Width of each slot's cache rows.
    let cacheWidths: [Int]
    /// Positions already in the caches.
    public private(set) var position = 0
    /// Rounds every key and value as it is cached (nil: kept as computed). Tests set it to bf16
    /// rounding to get the reference of the fused backend's bf16 KV cache; no command does.
    public var keyValueRounding: ((Float) -> Float)? = nil

    public init(graph: Graph, weights: @escaping WeightLookup, threads: Int) {
        self.graph = graph
        self.weights = weights
        BLASThreadLimit.set(threads)
        var widths = [Int](repeating: 0, count: graph.cacheSlots)
        for inst in graph.instructions { if case .attention(let a) = inst.op { widths[a.cacheSlot] = a.heads * a.headDim } }
        cacheWidths = widths
        keyCache = widths.map { _ in [] }
        valueCache = keyCache
    }

    /// Forgets every cached token.
    public func reset() { position = 0 }

    /// Runs `tokens` at positions `position ..< position + tokens.count` and returns logits `[T, vocab]`.
    public func forward(_ tokens: [Int32]) -> Matrix {
        precondition(!tokens.isEmpty && position + tokens.count <= graph.config.context, "tokens were validated by the caller")
        let t = tokens.count
        var values: [ValueID: Matrix] = [:]
        var uses = graph.useCounts()
        for inst in graph.instructions {
            let inputs = inst.operands.map { values[$0]! }
            values[inst.result] = execute(inst, inputs, tokens: tokens, rows: t)
            // Free values as soon as their last reader has run.
            for operand in inst.operands {
                uses[operand, default: 0] -= 1
                if uses[operand] == 0 { values[operand] = nil }
            }
        }
        position += t
        return values[graph.output]!
    }

    func execute(_ inst: Instruction, _ inputs: [Matrix], tokens: [Int32], rows t: Int) -> Matrix {
        switch inst.op {
        case .tokens:
            return Matrix(rows: t, columns: 1, data: tokens.map(Float.init))
        case .embedding(let table):
            let w = weights(table), d = graph.config.hidden
            var out = Matrix(rows: t, columns: d)
            for (row, token) in tokens.enumerated() {
                for j in 0..<d { out.data[row * d + j] = w[Int(token) * d + j] }
            }
            return out
        case .layerNorm(let ln):
            return layerNorm(inputs[0], ln)
        case .pattention(let p):
            return pattention(inputs[0], p)
        case .rotary(let r):
            return rotary(inputs[0], r, firstPosition: position)
        case .attention(let a):
            return attention(q: inputs[0], k: inputs[1], v: inputs[2], a)
        case .add:
            var out = inputs[0]
            for i in out.data.indices { out.data[i] += inputs[1].data[i] }
            return out
        case .logits(let table):
            return matmulTransposed(inputs[0], weights(table), rows: graph.config.vocab)
        case .columns(let start, let count):
            var out = Matrix(rows: t, columns: count)
            for row in 0..<t {
                for j in 0..<count { out.data[row * count + j] = inputs[0].data[row * inputs[0].columns + start + j] }
            }
            return out
        case .fusedPattention(let f):
            let x = f.prologue.map { layerNorm(inputs[0], $0) } ?? inputs[0]
            var out = Matrix(rows: t, columns: f.outFeatures)
            var column = 0
            for (site, rot) in zip(f.sites, f.rotary) {
                var y = pattention(x, site)
                if let rot { y = rotary(y, rot, firstPosition: position) }
                for row in 0..<t {
                    for j in 0..<site.outFeatures { out.data[row * out.columns + column + j] = y.data[row * y.columns + j] }
                }
                column += site.outFeatures
            }
            if f.residual { for i in out.data.indices { out.data[i] += inputs[1].data[i] } }
            return out
        }
    }
}
