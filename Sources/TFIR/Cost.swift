/// Floating-point operation counts, for `tfc check` and `tfc bench` (a multiply-add counts as 2).
public extension Graph {
    /// FLOPs for one token at position `position` (0-based): the matrix products, plus attention
    /// over `position + 1` keys. Elementwise work (norms, activations) is not counted.
    func flopsPerToken(atPosition position: Int) -> Double {
        var flops = 0.0
        for inst in instructions {
            switch inst.op {
            case .pattention(let p): flops += p.flops
            case .fusedPattention(let f): flops += f.sites.reduce(0) { $0 + $1.flops }
            case .attention(let a): flops += 4 * Double(a.heads * a.headDim) * Double(position + 1)
            case .logits: flops += 2 * Double(config.vocab * config.hidden)
            default: break
            }
        }
        return flops
    }

    /// FLOPs of a prefill of `tokens` tokens starting at position 0 (causal attention sums over positions).
    func prefillFlops(tokens: Int) -> Double {
        let base = flopsPerToken(atPosition: -1) * Double(tokens)  // attention at position -1 contributes 0
        var attention = 0.0
        for inst in instructions {
            if case .attention(let a) = inst.op {
                attention += 4 * Double(a.heads * a.headDim) * Double(tokens) * Double(tokens + 1) / 2
            }
        }
        return base + attention
    }
}

public extension PattentionOp {
    /// X·Kᵀ and A·V for one row.
    var flops: Double { 2 * Double(tokens) * Double(inFeatures + outFeatures) }
}
