import ArgumentParser
import Foundation
import TFIR

/// `tfc check SPEC [--json]`: verify a spec and summarise it.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a spec and print a summary (parameters, FLOPs per token, sites).",
        discussion: "With --json, prints exactly one JSON object (the schema is in the README).")

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Flag(help: "Print one JSON object instead of the text summary.") var json = false

    func run() throws {
        try reportingErrors {
            let loaded = try LoadedSpec(path: spec)
            let summary = ModelSummary(loaded.graph)
            print(json ? summary.json : summary.text)
        }
    }
}

/// What `tfc check` reports about a lowered model.
struct ModelSummary {
    struct Site {
        var name: String, tokens: Int, inFeatures: Int, outFeatures: Int, scale: Double?, norm: PattentionNorm
    }
    let graph: Graph
    let sites: [Site]

    init(_ graph: Graph) {
        self.graph = graph
        // Sites are the same in every layer; describe layer 0's.
        sites = graph.pattentionSites.filter { $0.layer == 0 }.map {
            Site(name: $0.site, tokens: $0.tokens, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures, scale: $0.scale, norm: $0.norm)
        }
    }

    var text: String {
        let c = graph.config
        let parameters = graph.parameterCount
        var lines = ["\(c.name): ok (\(graph.source))"]
        lines.append("  vocab \(c.vocab), hidden \(c.hidden), heads \(c.heads) (head_dim \(c.headDim)), layers \(c.layers), context \(c.context)")
        lines.append("  embeddings \(c.tieEmbeddings ? "tied" : "untied"), final norm \(c.finalNormAffine ? "affine" : "plain"), LayerNorm eps \(c.normEps), rotary \(c.rotaryFraction) of each head (\(c.rotaryDims) dims), base \(c.rotaryBase)")
        lines.append("  sites (per layer):")
        let width = sites.map(\.name.count).max() ?? 0
        for s in sites {
            let name = s.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let tau = s.norm == .softmax ? "× n" : (s.scale.map { "τ = \($0) (pinned)" } ?? "τ = sqrt(\(s.tokens))")
            lines.append("    \(name)  \(s.tokens) tokens  \(s.inFeatures) → \(s.outFeatures)  \(s.norm.rawValue)  \(tau)")
        }
        lines.append("  parameters: \(grouped(parameters)) (\(String(format: "%.1f", Double(parameters) * 4 / 1_048_576)) MiB as float32)")
        let perToken = graph.flopsPerToken(atPosition: -1)
        let attention = graph.flopsPerToken(atPosition: 0) - perToken
        lines.append("  FLOPs per token: \(formatFlops(perToken)) in matrix products, plus \(grouped(Int(attention))) per cached position in attention")
        lines.append("  IR: \(graph.instructions.count) instructions")
        return lines.joined(separator: "\n")
    }

    var json: String {
        let c = graph.config
        var siteObject: [String: Any] = [:]
        for s in sites {
            siteObject[s.name] = ["tokens": s.tokens, "in": s.inFeatures, "out": s.outFeatures,
                                  "scale": s.scale.map { $0 as Any } ?? NSNull(), "norm": s.norm.rawValue] as [String: Any]
        }
        let object: [String: Any] = [
            "name": c.name, "vocab": c.vocab, "hidden": c.hidden, "heads": c.heads, "layers": c.layers,
            "context": c.context, "tie_embeddings": c.tieEmbeddings, "final_norm_affine": c.finalNormAffine,
            "norm_eps": c.normEps, "pattention_norm": c.pattentionNorm.rawValue,
            "rotary_fraction": c.rotaryFraction, "rotary_base": c.rotaryBase,
            "parameters": graph.parameterCount, "sites": siteObject,
            "flops_per_token": graph.flopsPerToken(atPosition: -1),
            "end_token": c.endToken.map { $0 as Any } ?? NSNull(),
            "tokenizer": c.tokenizer.map { $0 as Any } ?? NSNull(),
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(data: data, encoding: .utf8)!
    }
}

/// 2.5e9 → "2.50 GFLOP", 295000 → "295.0 kFLOP".
func formatFlops(_ flops: Double) -> String {
    for (scale, unit) in [(1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")] where flops >= scale {
        return String(format: "%.2f %@", flops / scale, unit)
    }
    return String(format: "%.0f FLOP", flops)
}

/// 1234567 → "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
