import Foundation
import TFIR
import TFPasses

/// The before/after table `tfc grow` prints (and all that `--dry-run` prints).
struct GrowReport {
    struct Site {
        var tokens: Int
        var tau: Double
        var pinned: Bool
        var norm: PattentionNorm
        /// Over all layers.
        var parameters: Int
        var flops: Double
    }

    let old: Graph
    let new: Graph

    static func sites(_ g: Graph) -> [(String, Site)] {
        var order: [String] = []
        var sites: [String: Site] = [:]
        for p in g.pattentionSites {
            let params = p.tokens * (p.inFeatures + p.outFeatures)
            if var s = sites[p.site] {
                s.parameters += params
                s.flops += p.flops
                sites[p.site] = s
            } else {
                order.append(p.site)
                sites[p.site] = Site(tokens: p.tokens, tau: p.tau, pinned: p.scale != nil, norm: p.norm, parameters: params, flops: p.flops)
            }
        }
        return order.map { ($0, sites[$0]!) }
    }

    static func change<T: Equatable>(_ a: T, _ b: T, _ show: (T) -> String) -> String {
        a == b ? show(a) : "\(show(a)) → \(show(b))"
    }

    static func tau(_ s: Site) -> String {
        if s.norm == .softmax { return "× n (softmax)" }
        return String(format: "%.4g", s.tau) + (s.pinned ? " (pinned)" : "")
    }

    static func percent(_ a: Double, _ b: Double) -> String {
        a == b || a == 0 ? "" : String(format: " (%+.1f%%)", (b - a) / a * 100)
    }

    var text: String {
        let oldSites = Dictionary(uniqueKeysWithValues: Self.sites(old))
        var rows: [[String]] = [["site", "tokens", "τ", "parameters", "FLOPs/token"]]
        for (name, n) in Self.sites(new) {
            let o = oldSites[name]!
            rows.append([name, Self.change(o.tokens, n.tokens, String.init),
                         o.norm == .softmax ? Self.tau(o) : Self.change(Self.tau(o), Self.tau(n), { $0 }),
                         Self.change(o.parameters, n.parameters, grouped),
                         Self.change(Int(o.flops), Int(n.flops), grouped)])
        }
        let embedding = old.config.vocab * old.config.hidden * (old.config.tieEmbeddings ? 1 : 2)
        rows.append(["embedding" + (old.config.tieEmbeddings ? "" : "s"), "", "", grouped(embedding), grouped(2 * old.config.vocab * old.config.hidden) + " (logits)"])
        rows.append(["layers", Self.change(old.config.layers, new.config.layers, String.init), "", "", ""])
        let po = Double(old.parameterCount), pn = Double(new.parameterCount)
        let fo = old.flopsPerToken(atPosition: -1), fn = new.flopsPerToken(atPosition: -1)
        rows.append(["total", "", "", Self.change(old.parameterCount, new.parameterCount, grouped) + Self.percent(po, pn),
                     Self.change(Int(fo), Int(fn), grouped) + Self.percent(fo, fn)])
        var widths = [Int](repeating: 0, count: 5)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var lines = rows.map { row in
            row.enumerated().map { i, cell in i == 4 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        let ao = old.flopsPerToken(atPosition: 0) - fo, an = new.flopsPerToken(atPosition: 0) - fn
        lines.append("FLOPs/token counts the matrix products; attention adds \(Self.change(Int(ao), Int(an), grouped)) per cached position.")
        return lines.joined(separator: "\n")
    }

    /// What the weight plan does, one line.
    static func planSummary(_ plan: WeightPlan) -> String {
        let s = plan.summary
        var parts = ["\(s.unchanged) tensor\(s.unchanged == 1 ? "" : "s") copied"]
        if s.renamed > 0 { parts.append("\(s.renamed) renumbered") }
        if s.grown > 0 { parts.append("\(s.grown) grown") }
        if s.fresh > 0 { parts.append("\(s.fresh) new") }
        var elements = "\(grouped(s.copiedElements)) values copied, \(grouped(s.zeroElements)) zero"
        if s.randomElements > 0 { elements += ", \(grouped(s.randomElements)) random" }
        return parts.joined(separator: ", ") + " (" + elements + ")"
    }

    /// The comment written at the top of the grown spec.
    static func header(from path: String, old: Graph, new: Graph, scale: ScaleMode, inserted: (count: Int, at: Int)?) -> String {
        var lines = ["# Grown by `tfc grow` from \(path)" + (scale == .pinned
            ? "; τ is pinned (scale:) at the grown sites, so the model computes what the original did."
            : "; τ follows sqrt(n) at the grown sites (reference scaling).")]
        let oldSites = Dictionary(uniqueKeysWithValues: sites(old))
        for (name, n) in sites(new) where oldSites[name]!.tokens != n.tokens {
            lines.append("#   \(name): \(oldSites[name]!.tokens) → \(n.tokens) tokens")
        }
        if let inserted {
            lines.append("#   layers: \(old.config.layers) → \(new.config.layers) (\(inserted.count) inserted at \(inserted.at))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
