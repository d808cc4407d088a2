import TFIR

/// `add(x, fused_pattention(h))` → a residual epilogue: the kernel adds its output into x's rows
/// (in place when x has no later reader; the memory planner decides). Legal when the fused op has
/// one site, no residual or rotary epilogue yet, and the add is its only reader.
public struct ResidualEpilogue: Pass {
    public init() {}
    public var name: String { "residual-epilogue" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        var index = UseIndex(g)
        for i in g.instructions.indices {
            guard g.instructions[i].op == .add else { continue }
            let operands = g.instructions[i].operands
            // Prefer the operand that is a fusable Pattention; the other one is the residual stream.
            for (slot, value) in operands.enumerated() {
                guard let source = index.producer[value], case .fusedPattention(var f) = g.instructions[source].op,
                      f.sites.count == 1, !f.residual, f.rotary[0] == nil, index.uses(of: value, in: g) == 1 else { continue }
                let residual = operands[1 - slot]
                if residual == value { continue }
                f.residual = true
                guard FusedCapabilities.decide(.fusedPattention(f)).kernel != nil else { continue }
                g.instructions[source].op = .fusedPattention(f)
                g.instructions[source].operands.append(residual)
                index.addReader(source, of: residual)
                index.replaceUses(of: g.instructions[i].result, with: value, in: &g)
                break
            }
        }
        g.restoreTopologicalOrder()
        return try DeadCodeElimination().run(g)
    }
}
