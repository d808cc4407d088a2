import TFIR

/// Every backward rule, in one place (like `PassPipeline.fusion` for the fusion passes). An op
/// without a rule here cannot be differentiated; the fused forms are absent on purpose: the
/// backward graph is derived from the unfused forward graph.
public enum BackwardRules {
    public static let all: [BackwardRule] = [
        BackwardRule(op: "embedding", reads: [.operand(0)],
                     summary: "dtable[tokens[t]] += dy[t]",
                     weights: { inst in if case .embedding(let table) = inst.op { return [table] }; return [] }),
        BackwardRule(op: "layernorm", reads: [.operand(0)],
                     summary: "dx = (dx̂ - mean(dx̂) - x̂·mean(dx̂·x̂)) / σ, dx̂ = dy·w; dw = Σ dy·x̂, db = Σ dy",
                     recomputes: { inst in ["mean, 1/σ and x̂ of [T, \(inst.type.columns ?? 0)]"] },
                     weights: { inst in
                         if case .layerNorm(let ln) = inst.op, let affine = ln.affine { return [affine.weight, affine.bias] }
                         return []
                     }),
        BackwardRule(op: "pattention", reads: [.operand(0)],
                     summary: "dV = Θ(S)ᵀ·dy, dS = Θ'(S)ᵀ(dy·Vᵀ), dX = dS·K, dK = dSᵀ·X (zero-norm row: dS = 0)",
                     recomputes: { inst in
                         guard case .pattention(let p) = inst.op else { return [] }
                         // The fused trainer overrides this when memory allows (FusedGradient.keepsScores).
                         return ["S = X·Kᵀ and Θ(S) of [T, \(p.tokens)] (the fused trainer keeps them from the forward instead while every site's fit its saved-scores budget)"]
                     },
                     weights: { inst in
                         guard case .pattention(let p) = inst.op else { return [] }
                         return [p.keyName, p.valueName]
                     }),
        BackwardRule(op: "rotary", reads: [],
                     summary: "dx = R(-θ)·dy (the transpose of a rotation is the inverse rotation)"),
        BackwardRule(op: "attention", reads: [.operand(0), .operand(1), .operand(2)],
                     summary: "dv = Pᵀ·dy, dP = dy·vᵀ, dS = P⊙(dP - rowsum(P⊙dP)), dq = dS·k/√d, dk = dSᵀ·q/√d",
                     recomputes: { inst in
                         guard case .attention(let a) = inst.op else { return [] }
                         return ["P = softmax(q·kᵀ/√d) of [T, T] per head (\(a.heads) heads)"]
                     }),
        BackwardRule(op: "add", reads: [], summary: "da = dy, db = dy"),
        BackwardRule(op: "logits", reads: [.operand(0)],
                     summary: "dx = dy·table, dtable += dyᵀ·x",
                     weights: { inst in if case .logits(let table) = inst.op { return [table] }; return [] }),
    ]

    /// The seed of the backward pass: the mean next-token cross-entropy over the sequence.
    public static let loss = BackwardRule(op: "cross_entropy", reads: [.result],
                                          summary: "loss = mean over t < T-1 of -log softmax(logits[t])[tokens[t+1]]; dlogits = (softmax - onehot) / (T-1), last row 0",
                                          recomputes: { inst in ["softmax of the logits [T, \(inst.type.columns ?? 0)]"] })

    /// The rule for an op, or nil.
    public static func rule(for op: Op) -> BackwardRule? { all.first { $0.op == op.name } }
}
