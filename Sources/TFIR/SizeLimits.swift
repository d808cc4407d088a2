import Foundation
import TFSpec

/// The largest model tfc accepts, checked while a spec is lowered so that every refusal points at
/// the spec. The fixed bounds keep every size the compiler, the weight files and the runtime
/// compute inside an `Int` (a product of two dimensions, a sum of tensor sizes); the machine bound
/// refuses a model whose weights, KV cache and activations at `context` could not fit in this
/// machine's memory, before anything is allocated. See README "Limits".
public enum SizeLimits {
    /// Layers in a model. The IR, compile time and the compiled code grow linearly with it.
    public static let maximumLayers = 4096
    /// Any one dimension: vocab, hidden, heads, context, a site's tokens or width (token ids and
    /// positions are int32 in the runtime).
    public static let maximumDimension = Int(Int32.max)
    /// Elements of one parameter tensor: 2³⁴ floats, 64 GiB as float32.
    public static let maximumTensorElements = 1 << 34

    /// This machine's physical memory in bytes.
    public static var machineMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }
}

/// What a model needs in memory to run a prompt of `context` tokens, in bytes (as Double: the
/// products can exceed an Int before they are refused).
public struct MemoryNeed: Equatable, Sendable {
    public var weights: Double
    /// Keys and values of every attention op, `[context, width]` each.
    public var keyValueCache: Double
    /// The widest single activation at `context` rows (the logits, usually): a lower bound.
    public var activations: Double
    public var total: Double { weights + keyValueCache + activations }

    public init(_ graph: Graph) {
        let bytes = Double(MemoryLayout<Float>.size)
        let context = Double(graph.config.context)
        weights = graph.parameters.reduce(0) { $0 + Double($1.elementCount) } * bytes
        var cache = 0.0, widest = 0
        for inst in graph.instructions {
            if case .attention(let a) = inst.op { cache += 2 * context * Double(a.heads * a.headDim) * bytes }
            widest = max(widest, inst.type.columns ?? 0)
        }
        keyValueCache = cache
        activations = context * Double(widest) * bytes
    }
}

/// 9.6e12 → "8.7 TiB".
public func formatByteCount(_ bytes: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var value = bytes, unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(Int(bytes)) B" : String(format: "%.1f %@", value, units[unit])
}

extension Graph {
    /// Refuses a parameter tensor above `maximumTensorElements` (at the op that reads it, else at
    /// the model), then a model whose weights do not fit in `memory` bytes (at the model) or whose
    /// weights, KV cache and activations at `context` do not (at the `context` field).
    func checkSizes(memory: Int, context contextAt: SourceLocation, model modelAt: SourceLocation,
                    error: (String, SourceLocation) -> Diagnostic) throws {
        var firstUse: [String: SourceLocation] = [:]
        for inst in instructions {
            guard let location = inst.location else { continue }
            switch inst.op {
            case .pattention(let p): firstUse[p.keyName] = firstUse[p.keyName] ?? location; firstUse[p.valueName] = firstUse[p.valueName] ?? location
            default: break
            }
        }
        for p in parameters where p.shape.reduce(1.0, { $0 * Double($1) }) > Double(SizeLimits.maximumTensorElements) {
            let elements = p.shape.reduce(1.0) { $0 * Double($1) }
            throw error("parameter '\(p.name)' \(p.shape) has \(String(format: "%.3g", elements)) elements, more than the limit of \(SizeLimits.maximumTensorElements) (\(formatByteCount(Double(SizeLimits.maximumTensorElements) * 4)) as float32) for one tensor",
                        firstUse[p.name] ?? modelAt)
        }
        let need = MemoryNeed(self)
        let have = formatByteCount(Double(memory))
        if need.weights > Double(memory) {
            throw error("the model needs \(formatByteCount(need.weights)) of weights (\(parameterCount) parameters as float32); this machine has \(have) of memory",
                        modelAt)
        }
        if need.total > Double(memory) {
            throw error("at context \(config.context) the model needs \(formatByteCount(need.total)) of memory (weights \(formatByteCount(need.weights)), KV cache \(formatByteCount(need.keyValueCache)), activations \(formatByteCount(need.activations))); this machine has \(have); lower 'context'",
                        contextAt)
        }
    }
}
