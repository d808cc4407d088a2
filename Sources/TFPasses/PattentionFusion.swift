import TFIR

/// `pattention` → `fused_pattention`: the score GEMM, the row norm/activation and the value GEMM
/// become one kernel, so the `[T, n]` score matrix is only ever held a block of rows at a time.
/// Legal whenever the capability table lowers the one-site op (it computes the same thing).
public struct PattentionFusion: Pass {
    public init() {}
    public var name: String { "pattention-fusion" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        for i in g.instructions.indices {
            if case .pattention(let p) = g.instructions[i].op {
                let fused = FusedPattentionOp(prologue: nil, sites: [p], rotary: [nil], residual: false)
                if FusedCapabilities.decide(.fusedPattention(fused)).kernel != nil { g.instructions[i].op = .fusedPattention(fused) }
            }
        }
        return g
    }
}
