import TFIR

/// `rotary(fused_pattention(x))` → the rotary as that site's epilogue: the rotation is applied to
/// each output row as it leaves the kernel. Legal when the fused op has one site, no rotary yet,
/// no residual epilogue, and the rotary is its only reader.
public struct RotaryEpilogue: Pass {
    public init() {}
    public var name: String { "rotary-epilogue" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        let uses = g.useCounts()
        var index = UseIndex(g)
        for i in g.instructions.indices {
            guard case .rotary(let r) = g.instructions[i].op,
                  let source = index.producer[g.instructions[i].operands[0]],
                  case .fusedPattention(var f) = g.instructions[source].op,
                  f.sites.count == 1, f.rotary[0] == nil, !f.residual,
                  uses[g.instructions[source].result] == 1 else { continue }
            f.rotary[0] = r
            guard FusedCapabilities.decide(.fusedPattention(f)).kernel != nil else { continue }
            g.instructions[source].op = .fusedPattention(f)
            index.replaceUses(of: g.instructions[i].result, with: g.instructions[source].result, in: &g)
        }
        return try DeadCodeElimination().run(g)
    }
}
