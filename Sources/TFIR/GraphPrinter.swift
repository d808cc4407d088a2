import Foundation

/// The IR's text form (`tfc compile --emit ir|fused-ir`): one instruction a line, `%id = op operands attrs : type`.
public extension Graph {
    var text: String {
        var out = "graph \"\(config.name)\"(tokens: [T] i32) -> \(instruction(producing: output)?.type.description ?? "?") {\n"
        for inst in instructions {
            var line = "  \(inst.result) = \(inst.op.name)"
            if !inst.operands.isEmpty { line += " " + inst.operands.map(\.description).joined(separator: ", ") }
            let attributes = inst.op.attributes
            if !attributes.isEmpty { line += " {" + attributes + "}" }
            line += " : \(inst.type)"
            out += line + "\n"
        }
        out += "  return \(output)\n}\n"
        return out
    }
}

extension Op {
    /// `key=value` attributes, in a fixed order.
    var attributes: String {
        switch self {
        case .tokens, .add: return ""
        case .embedding(let table), .logits(let table): return "table=\(table)"
        case .layerNorm(let ln): return ln.attributes
        case .pattention(let p): return p.attributes
        case .rotary(let r): return r.attributes
        case .attention(let a):
            return "heads=\(a.heads), head_dim=\(a.headDim), causal=\(a.causal), cache=\(a.cacheSlot)"
        case .columns(let start, let count): return "start=\(start), count=\(count)"
        case .fusedPattention(let f):
            var parts: [String] = []
            if let ln = f.prologue { parts.append("prologue=layernorm(\(ln.attributes))") }
            for (site, rotary) in zip(f.sites, f.rotary) {
                var s = "site(\(site.attributes))"
                if let rotary { s += " rotary(\(rotary.attributes))" }
                parts.append(s)
            }
            if f.residual { parts.append("epilogue=residual_add") }
            return parts.joined(separator: ", ")
        }
    }
}

extension LayerNormOp {
    var attributes: String {
        var s = "eps=\(eps)"
        if let affine { s += ", weight=\(affine.weight), bias=\(affine.bias)" }
        return s
    }
}

extension PattentionOp {
    var attributes: String {
        let tau = scale.map { "scale=\($0) (pinned)" } ?? "scale=sqrt(\(tokens))"
        return "\(prefix), tokens=\(tokens), \(inFeatures)->\(outFeatures), norm=\(norm.rawValue), \(tau)"
    }
}

extension RotaryOp {
    var attributes: String { "heads=\(heads), head_dim=\(headDim), dims=\(rotaryDims), base=\(base)" }
}
