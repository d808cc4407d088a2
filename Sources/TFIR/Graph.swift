import TFSpec

/// An SSA value: the result of the instruction with the same id.
public struct ValueID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: Int
    public init(_ raw: Int) { self.raw = raw }
    public var description: String { "%\(raw)" }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.raw < b.raw }
}

/// One operation producing one value.
public struct Instruction: Equatable, Sendable {
    public var result: ValueID
    public var op: Op
    public var operands: [ValueID]
    public var type: TensorType
    /// The spec text this came from, so verifier errors point back at a line.
    public var location: SourceLocation?

    public init(result: ValueID, op: Op, operands: [ValueID], type: TensorType, location: SourceLocation?) {
        self.result = result; self.op = op; self.operands = operands; self.type = type; self.location = location
    }
}

/// A whole model as a straight-line SSA program (layers unrolled), in a valid execution order.
/// The single input is the token-id vector; the single output is the logits.
public struct Graph: Equatable, Sendable {
    public var config: ModelConfig
    public var instructions: [Instruction]
    public var output: ValueID
    /// Name of the spec file the graph was lowered from.
    public var source: String

    public init(config: ModelConfig, instructions: [Instruction], output: ValueID, source: String) {
        self.config = config; self.instructions = instructions; self.output = output; self.source = source
    }

    /// A fresh id above every id in use.
    public var nextValueID: ValueID { ValueID((instructions.map(\.result.raw).max() ?? -1) + 1) }

    public func instruction(producing value: ValueID) -> Instruction? {
        instructions.first { $0.result == value }
    }

    /// How many instructions read each value (the output counts as one use).
    public func useCounts() -> [ValueID: Int] {
        var uses: [ValueID: Int] = [output: 1]
        for inst in instructions { for operand in inst.operands { uses[operand, default: 0] += 1 } }
        return uses
    }

    /// Every Pattention site instance, fused or not, in program order.
    public var pattentionSites: [PattentionOp] {
        instructions.flatMap { inst -> [PattentionOp] in
            switch inst.op {
            case .pattention(let p): return [p]
            case .fusedPattention(let f): return f.sites
            default: return []
            }
        }
    }

    /// Number of KV caches the graph needs.
    public var cacheSlots: Int {
        instructions.reduce(0) { count, inst in
            if case .attention(let a) = inst.op { return max(count, a.cacheSlot + 1) }
            return count
        }
    }
}
