import TFCodegen
import TFIR
import TFPasses
import TFWeights

/// The kernel cases of a model: every kernel class at the shapes the model's graph uses.
public enum KernelSuite {
    /// Cases for `graph` (the unfused, lowered graph): Pattention at each distinct site shape,
    /// fused q/k/v (from the fusion pipeline's output), attention at each of `contexts`, LayerNorm
    /// and logits; each at prefill (`seq` rows) and decode (one row). Layer 0 stands for all layers.
    /// Every case with matrix weights (Pattention, the score GEMM, fused q/k/v, logits) is followed
    /// by one copy per format of `formats` other than f32, its weights stored in that format; the
    /// f32 case is always there, the reference of the others' ratios.
    public static func cases(for graph: Graph, seq: Int, contexts: [Int], formats: [WeightFormat] = [.f32]) throws -> [KernelCase] {
        let narrow = formats.filter { $0 != .f32 }
        return try f32Cases(for: graph, seq: seq, contexts: contexts).flatMap { c in
            [c] + (c.hasFormattedWeights ? narrow.map { c.stored(as: $0) } : [])
        }
    }

    static func f32Cases(for graph: Graph, seq: Int, contexts: [Int]) throws -> [KernelCase] {
        let c = graph.config
        precondition(seq >= 1 && seq <= c.context, "seq was validated by the caller")
        let decodePosition = Swift.min(seq, c.context - 1)
        var cases: [KernelCase] = []

        // Pattention: one case per distinct shape; the name lists the sites that share it.
        struct Shape: Hashable { var tokens, inFeatures, outFeatures: Int; var norm: PattentionNorm; var tau: Double }
        var shapes: [Shape] = []
        var sitesOf: [Shape: [PattentionOp]] = [:]
        for p in graph.pattentionSites where p.layer == 0 {
            let s = Shape(tokens: p.tokens, inFeatures: p.inFeatures, outFeatures: p.outFeatures, norm: p.norm, tau: p.tau)
            if sitesOf[s] == nil { shapes.append(s) }
            sitesOf[s, default: []].append(p)
        }
        for s in shapes {
            let sites = sitesOf[s]!
            let names = sites.map { $0.site.split(separator: ".").last.map(String.init) ?? $0.site }
            let op = FusedPattentionOp(prologue: nil, sites: [sites[0]], rotary: [nil], residual: false)
            for (phase, rows, position) in [(Phase.prefill, seq, 0), (.decode, 1, decodePosition)] {
                cases.append(fused(op, name: "pattention " + names.joined(separator: ","), phase: phase, rows: rows, position: position,
                                   shape: "T=\(rows) \(s.inFeatures)→\(s.outFeatures) n=\(s.tokens)", kernelClass: .pattention))
            }
        }

        // The score GEMM X·Kᵀ of each distinct site shape, at prefill: the generated GEMM (packed
        // keys, as inside the fused kernel) against a plain OpenBLAS sgemm on the same shape. It is
        // a product `x · tableᵀ`, so it runs as a logits op over the site's key tokens.
        for s in shapes {
            let sites = sitesOf[s]!
            let names = sites.map { $0.site.split(separator: ".").last.map(String.init) ?? $0.site }
            let key = sites[0].keyName
            cases.append(KernelCase(name: "gemm X·Kᵀ " + names.joined(separator: ","), kernelClass: .gemm, phase: .prefill,
                                    shape: "T=\(seq) \(s.inFeatures)→\(s.tokens)", op: .logits(table: key), rows: seq, position: 0,
                                    weights: [TensorSpec(name: key, shape: [s.tokens, s.inFeatures], initStd: 0.02)],
                                    flops: 2 * Double(seq) * Double(s.inFeatures) * Double(s.tokens),
                                    bytes: 4 * (Double(seq * s.inFeatures) + Double(s.tokens * s.inFeatures) + Double(seq * s.tokens)),
                                    bound: .compute, inputWidths: [s.inFeatures], outputWidth: s.tokens))
        }

        // Fused q/k/v: the first horizontally fused kernel the fusion pipeline produces.
        let fusedGraph = try PassPipeline.fusion.run(graph)
        for inst in fusedGraph.instructions {
            guard case .fusedPattention(let f) = inst.op, f.sites.count > 1, f.sites[0].layer == 0 else { continue }
            let names = f.sites.map { $0.site.split(separator: ".").last.map(String.init) ?? $0.site }
            let s = f.sites[0]
            let same = f.sites.allSatisfy { $0.tokens == s.tokens && $0.outFeatures == s.outFeatures }
            let body = same ? "\(f.sites.count)×(\(s.inFeatures)→\(s.outFeatures) n=\(s.tokens))"
                            : f.sites.map { "\($0.inFeatures)→\($0.outFeatures) n=\($0.tokens)" }.joined(separator: ", ")
            let shapeText = (f.prologue != nil ? "LN+" : "") + body + (f.rotary.contains { $0 != nil } ? "+rotary" : "")
            for (phase, rows, position) in [(Phase.prefill, seq, 0), (.decode, 1, decodePosition)] {
                cases.append(fused(f, name: "fused " + names.joined(separator: "/"), phase: phase, rows: rows, position: position,
                                   shape: "T=\(rows) " + shapeText, kernelClass: .fusedQKV))
            }
            break
        }

        // Attention: prefill of L tokens from position 0, and one token decoded at position L-1.
        if let a = graph.instructions.lazy.compactMap({ inst -> AttentionOp? in
            if case .attention(let a) = inst.op { return a } else { return nil }
        }).first {
            for length in contexts {
                for (phase, rows, position) in [(Phase.prefill, length, 0), (.decode, 1, length - 1)] {
                    let w = Double(a.width)
                    let flops = a.causal
                        ? 4 * w * (Double(rows * position) + Double(rows) * Double(rows + 1) / 2)
                        : 4 * w * Double(rows) * Double(position + rows)
                    let bytes = 4 * (4 * Double(rows) * w + 2 * Double(position + rows) * w)
                    cases.append(KernelCase(
                        name: "attention L=\(length)", kernelClass: .attention, phase: phase,
                        shape: "T=\(rows) L=\(length) \(a.heads)×\(a.headDim)\(a.causal ? " causal" : "")",
                        op: .attention(a), rows: rows, position: position, weights: [], flops: flops, bytes: bytes,
                        bound: rows == 1 ? .bandwidth : .compute, inputWidths: [a.width, a.width, a.width], outputWidth: a.width))
                }
            }
        }

        // LayerNorm: the first one in the graph (a block's).
        for inst in graph.instructions {
            guard case .layerNorm(let ln) = inst.op else { continue }
            let d = inst.type.columns ?? c.hidden
            let affine = ln.affine.map { [TensorSpec(name: $0.weight, shape: [d], initStd: 1), TensorSpec(name: $0.bias, shape: [d], initStd: 1)] } ?? []
            for (phase, rows) in [(Phase.prefill, seq), (.decode, 1)] {
                cases.append(KernelCase(name: "layernorm", kernelClass: .layerNorm, phase: phase, shape: "T=\(rows) D=\(d)",
                                   op: .layerNorm(ln), rows: rows, position: 0, weights: affine, flops: nil,
                                   bytes: 4 * (2 * Double(rows * d) + Double(affine.count * d)), bound: .bandwidth,
                                        inputWidths: [d], outputWidth: d))
            }
            break
        }

        // Logits: x · tableᵀ.
        for inst in graph.instructions {
            guard case .logits(let table) = inst.op else { continue }
            let d = c.hidden, v = c.vocab
            for (phase, rows) in [(Phase.prefill, seq), (.decode, 1)] {
                cases.append(KernelCase(name: "logits", kernelClass: .logits, phase: phase, shape: "T=\(rows) \(d)→\(v)",
                                   op: .logits(table: table), rows: rows, position: 0,
                                   weights: [TensorSpec(name: table, shape: [v, d], initStd: 0.02)],
                                   flops: 2 * Double(rows) * Double(d) * Double(v),
                                   bytes: 4 * (Double(rows * d) + Double(v * d) + Double(rows * v)),
                                   bound: rows == 1 ? .bandwidth : .compute, inputWidths: [d], outputWidth: v))
            }
            break
        }
        return cases
    }

    /// A `.fusedPattention` case with its weights, FLOPs and bytes.
    static func fused(_ f: FusedPattentionOp, name: String, phase: Phase, rows: Int, position: Int, shape: String,
                      kernelClass: KernelClass) -> KernelCase {
        var weights: [TensorSpec] = []
        if let affine = f.prologue?.affine {
            let d = f.sites[0].inFeatures
            weights += [TensorSpec(name: affine.weight, shape: [d], initStd: 1), TensorSpec(name: affine.bias, shape: [d], initStd: 1)]
        }
        for p in f.sites {
            weights.append(TensorSpec(name: p.keyName, shape: [p.tokens, p.inFeatures], initStd: 0.02))
            weights.append(TensorSpec(name: p.valueName, shape: [p.tokens, p.outFeatures], initStd: 0.02))
        }
        let t = Double(rows)
        let flops = t * f.sites.reduce(0) { $0 + $1.flops }
        let weightFloats = Double(weights.reduce(0) { $0 + $1.count })
        let bytes = 4 * (t * Double(f.sites[0].inFeatures) + weightFloats + t * Double(f.outFeatures) * (f.residual ? 2 : 1))
        return KernelCase(name: name, kernelClass: kernelClass, phase: phase, shape: shape, op: .fusedPattention(f),
                          rows: rows, position: position, weights: weights, flops: flops, bytes: bytes,
                          bound: rows == 1 ? .bandwidth : .compute,
                          inputWidths: [f.sites[0].inFeatures] + (f.residual ? [f.outFeatures] : []), outputWidth: f.outFeatures)
    }
}
