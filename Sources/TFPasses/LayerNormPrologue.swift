import TFIR

/// `fused_pattention(layernorm(x))` → a LayerNorm prologue: each input row is normalised as it is
/// packed for the score GEMM, and the normalised rows are never stored. Every fused reader of the
/// LayerNorm takes its own prologue; the LayerNorm itself disappears once nothing else reads it.
public struct LayerNormPrologue: Pass {
    public init() {}
    public var name: String { "layernorm-prologue" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        let producer = UseIndex(g).producer
        for i in g.instructions.indices {
            guard case .fusedPattention(var f) = g.instructions[i].op, f.prologue == nil,
                  let source = producer[g.instructions[i].operands[0]],
                  case .layerNorm(let ln) = g.instructions[source].op else { continue }
            f.prologue = ln
            // The table says which LayerNorms can be a prologue (not the affine one).
            guard FusedCapabilities.decide(.fusedPattention(f)).kernel != nil else { continue }
            g.instructions[i].op = .fusedPattention(f)
            g.instructions[i].operands[0] = g.instructions[source].operands[0]
        }
        return try DeadCodeElimination().run(g)
    }
}
