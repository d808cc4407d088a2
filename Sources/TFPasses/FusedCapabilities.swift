import TFIR
import TFSpec

/// The fused backend's kernels, as the capability table names them.
public enum FusedKernel: String, CaseIterable, Sendable {
    /// No kernel: the token ids are the program's input.
    case tokenInput = "token input"
    case embeddingGather = "embedding gather"
    case layerNorm = "layernorm"
    /// GEMM → row norm/activation → GEMM, with the LayerNorm prologue, rotary and residual epilogues.
    case pattention = "pattention"
    case rotary = "rotary"
    /// Flash-style attention over the KV cache, each row seeing the keys up to its own position.
    case causalAttention = "causal attention"
    /// The same kernel, each row seeing every key of the sequence so far (prefill of a bidirectional layer).
    case fullAttention = "non-causal attention"
    case add = "add"
    case logitsGemm = "logits gemm"
    /// No kernel: a pointer offset into its operand.
    case columnView = "column view"
}

/// The table's answer for one op: the kernel that lowers it, or why there is none.
public enum FusedDecision: Equatable, Sendable {
    case kernel(FusedKernel)
    case refused(String)

    public var kernel: FusedKernel? {
        if case .kernel(let k) = self { return k }
        return nil
    }
}

/// A graph holds an op the fused backend does not lower; it is refused, never computed differently.
public struct FusedCapabilityError: Error, CustomStringConvertible, Equatable {
    public var op: String
    public var reason: String
    public var location: SourceLocation?

    public var description: String {
        let what = "the fused backend cannot run \(op): \(reason); use --backend naive"
        if let location { return "\(location): error: \(what)" }
        return "error: \(what)"
    }
}

/// The one place that decides what the fused backend lowers, for every IR op and attribute (XLA's
/// `FusionDecision`). The fusion passes ask it before forming a fused op, `ModelProgram` before
/// emitting each instruction (so the JIT, `tfc compile` and the bench model all refuse the same
/// ops), and the bench's kernel provider before compiling a case. Nobody else decides.
public enum FusedCapabilities {
    /// What lowers `op`. Every case and attribute is listed: a new one does not compile until it is
    /// decided here.
    public static func decide(_ op: Op) -> FusedDecision {
        switch op {
        case .tokens: return .kernel(.tokenInput)
        case .embedding: return .kernel(.embeddingGather)
        case .layerNorm:
            return .kernel(.layerNorm)  // plain and affine (only the prologue is plain-only)
        case .pattention(let p):
            return decide(site: p)
        case .rotary(let r):
            return r.rotaryDims % 2 == 0 && r.rotaryDims <= r.headDim
                ? .kernel(.rotary) : .refused("rotary dims \(r.rotaryDims) must be even and at most head_dim \(r.headDim)")
        case .attention(let a):
            return .kernel(a.causal ? .causalAttention : .fullAttention)
        case .add: return .kernel(.add)
        case .logits: return .kernel(.logitsGemm)
        case .columns: return .kernel(.columnView)
        case .fusedPattention(let f):
            if let prologue = f.prologue, case .refused(let why) = decide(prologue: prologue) { return .refused(why) }
            for (site, rotary) in zip(f.sites, f.rotary) {
                if case .refused(let why) = decide(site: site) { return .refused(why) }
                if let rotary {
                    if f.residual { return .refused("site \(site.prefix) has both a rotary and a residual epilogue") }
                    if rotary.heads * rotary.headDim != site.outFeatures {
                        return .refused("the rotary epilogue of \(site.prefix) covers \(rotary.heads * rotary.headDim) columns of \(site.outFeatures)")
                    }
                    if case .refused(let why) = decide(.rotary(rotary)) { return .refused(why) }
                }
            }
            return .kernel(.pattention)
        }
    }

    /// A Pattention site: every norm variant, τ pinned or sqrt(tokens).
    static func decide(site p: PattentionOp) -> FusedDecision {
        switch p.norm {
        case .l2NormGelu, .geluL2Norm:
            // τ is a float32 constant in the kernel.
            guard p.tau.isFinite, abs(p.tau) <= Double(Float.greatestFiniteMagnitude) else {
                return .refused("scale \(p.tau) of \(p.prefix) does not fit in float32")
            }
            return .kernel(.pattention)
        case .softmax:
            return .kernel(.pattention)  // τ does not apply to softmax (the reference multiplies by n)
        }
    }

    /// Whether `ln` can be the Pattention kernel's prologue (rows normalised as they are packed).
    public static func decide(prologue ln: LayerNormOp) -> FusedDecision {
        ln.affine == nil ? .kernel(.pattention)
            : .refused("an affine LayerNorm is not a Pattention prologue (the kernel's prologue is the non-parametric LayerNorm)")
    }

    /// The kernel of every instruction, in order; throws for the first op the backend does not lower,
    /// located at the spec text it came from.
    public static func kernels(of graph: Graph) throws -> [FusedKernel] {
        try graph.instructions.map { inst in
            switch decide(inst.op) {
            case .kernel(let k): return k
            case .refused(let why): throw FusedCapabilityError(op: inst.op.name, reason: why, location: inst.location)
            }
        }
    }
}
