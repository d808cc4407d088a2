import TFIR

/// An IR → IR rewrite. A pass that finds nothing to rewrite returns the graph unchanged, so every
/// spec that lowers can go through every pass.
public protocol Pass {
    /// Shown in `--emit` dumps and errors.
    var name: String { get }
    func run(_ graph: Graph) throws -> Graph
}

/// An ordered list of passes, run one after another with the verifier after each.
public struct PassPipeline {
    public var passes: [any Pass]

    public init(_ passes: [any Pass]) { self.passes = passes }

    /// The fusion pipeline, in one place: each rewrite makes the next one's pattern visible.
    public static let fusion = PassPipeline([
        PattentionFusion(),          // pattention                  → fused_pattention (GEMM → norm → GEMM)
        RotaryEpilogue(),            // rotary(fused_pattention)    → rotary epilogue of that site
        ResidualEpilogue(),          // add(x, fused_pattention)    → residual epilogue, in place into x
        LayerNormPrologue(),         // fused_pattention(layernorm) → LayerNorm prologue
        HorizontalFusion(),          // sites reading one input     → one kernel, outputs as column views
        DeadCodeElimination(),
    ])

    /// Runs every pass; `observe` sees the graph after each (for `--emit` dumps and tests).
    public func run(_ graph: Graph, observe: ((String, Graph) -> Void)? = nil) throws -> Graph {
        var current = graph
        for pass in passes {
            current = try pass.run(current)
            do {
                try current.verify()
            } catch let error as VerifierError {
                throw VerifierError(message: "after pass '\(pass.name)': \(error.message)", location: error.location)
            }
            observe?(pass.name, current)
        }
        return current
    }
}
