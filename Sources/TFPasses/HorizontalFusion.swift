import TFIR

/// Fused Pattentions that read the same input with the same prologue and have no residual
/// epilogue (query, key, value) → one kernel that packs each block of input rows once and runs all
/// their score GEMMs over it. The result holds the sites' outputs side by side; each original
/// value becomes a zero-copy `columns` view of it.
public struct HorizontalFusion: Pass {
    public init() {}
    public var name: String { "horizontal-fusion" }

    struct GroupKey: Hashable {
        var input: ValueID
        var prologue: String
    }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        var groups: [GroupKey: [Int]] = [:]
        var order: [GroupKey] = []
        for (i, inst) in g.instructions.enumerated() {
            guard case .fusedPattention(let f) = inst.op, !f.residual else { continue }
            let key = GroupKey(input: inst.operands[0], prologue: f.prologue.map { "\($0)" } ?? "none")
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        var next = g.nextValueID.raw
        // For the first member of each group: the combined op and every member's view;
        // the other members are dropped (their views already stand in for them).
        var replacement: [Int: [Instruction]] = [:]
        var dropped = Set<Int>()
        for key in order {
            guard let members = groups[key], members.count > 1 else { continue }
            var sites: [PattentionOp] = [], rotary: [RotaryOp?] = []
            var prologue: LayerNormOp? = nil
            for index in members {
                guard case .fusedPattention(let f) = g.instructions[index].op else { continue }
                sites += f.sites
                rotary += f.rotary
                prologue = f.prologue
            }
            let fused = FusedPattentionOp(prologue: prologue, sites: sites, rotary: rotary, residual: false)
            guard FusedCapabilities.decide(.fusedPattention(fused)).kernel != nil else { continue }
            let first = g.instructions[members[0]]
            let combined = Instruction(result: ValueID(next), op: .fusedPattention(fused), operands: [key.input],
                                       type: .activations(fused.outFeatures), location: first.location)
            next += 1
            var emitted = [combined]
            var column = 0
            for index in members {
                let original = g.instructions[index]
                let width = original.type.columns!
                // The view takes over the original's id, so its readers need no change.
                emitted.append(Instruction(result: original.result, op: .columns(start: column, count: width),
                                           operands: [combined.result], type: original.type, location: original.location))
                column += width
            }
            replacement[members[0]] = emitted
            dropped.formUnion(members.dropFirst())
        }
        if replacement.isEmpty { return g }
        var rebuilt: [Instruction] = []
        for (i, inst) in g.instructions.enumerated() where !dropped.contains(i) {
            rebuilt += replacement[i] ?? [inst]
        }
        g.instructions = rebuilt
        g.restoreTopologicalOrder()
        return g
    }
}
