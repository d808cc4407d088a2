import TFIR

/// Small editing operations the rewrites are built from.
extension Graph {
    /// Makes every reader of `old` (and the output) read `new` instead.
    mutating func replaceUses(of old: ValueID, with new: ValueID) {
        for i in instructions.indices {
            instructions[i].operands = instructions[i].operands.map { $0 == old ? new : $0 }
        }
        if output == old { output = new }
    }

    /// The instructions that read `value`, by index.
    func users(of value: ValueID) -> [Int] {
        instructions.indices.filter { instructions[$0].operands.contains(value) }
    }

    func index(of value: ValueID) -> Int? {
        instructions.firstIndex { $0.result == value }
    }

    /// Reorders instructions so each comes after its operands, keeping the original order where
    /// it is already valid (rewrites may place a fused op before an input it now reads).
    mutating func restoreTopologicalOrder() {
        var placed = Set<ValueID>()
        var pending = instructions
        var ordered: [Instruction] = []
        while !pending.isEmpty {
            let ready = pending.firstIndex { $0.operands.allSatisfy(placed.contains) } ?? 0
            let inst = pending.remove(at: ready)
            placed.insert(inst.result)
            ordered.append(inst)
        }
        instructions = ordered
    }
}

/// Removes instructions whose value nobody reads.
public struct DeadCodeElimination: Pass {
    public init() {}
    public var name: String { "dead-code-elimination" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        var live: Set<ValueID> = [g.output]
        for inst in g.instructions.reversed() where live.contains(inst.result) {
            live.formUnion(inst.operands)
        }
        // The token input always stays: it is the graph's signature.
        g.instructions.removeAll { !live.contains($0.result) && $0.op != .tokens }
        return g
    }
}
