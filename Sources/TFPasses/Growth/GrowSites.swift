import Foundation
import TFIR
import TFSpec

/// Grows Pattention sites (in every layer) to more parameter tokens: `K' = [K; K_new]`,
/// `V' = [V; 0]`, with `K_new` zero (or small random). With τ pinned to its old value a
/// `l2_norm_gelu` or `gelu_l2_norm` site computes exactly what it did: the new scores are 0, so the
/// row norm is unchanged and gelu(0) = 0. A `softmax` site is never preserved (exp(0) = 1 takes
/// weight), so pinned growth refuses it.
public struct GrowSites: GrowthRewrite {
    /// Site name → new token count.
    public var targets: [String: Int]
    public var scale: ScaleMode
    public var newKeys: NewTokenInit

    public init(_ targets: [String: Int], scale: ScaleMode = .pinned, newKeys: NewTokenInit = .zero) {
        self.targets = targets
        self.scale = scale
        self.newKeys = newKeys
    }

    public var name: String { "grow-sites" }

    /// The sites in `graph`'s order that this rewrite grows.
    func grownSites(in graph: Graph) -> [PattentionOp] {
        graph.siteTemplates.filter { targets[$0.site] != nil }
    }

    /// Checks the request against the graph's sites: each exists, grows, and can be grown exactly
    /// if τ is pinned.
    public func check(_ graph: Graph) throws {
        let sites = graph.siteTemplates
        let byName = Dictionary(sites.map { ($0.site, $0) }, uniquingKeysWith: { a, _ in a })
        for (site, n) in targets.sorted(by: { $0.key < $1.key }) {
            guard let p = byName[site] else {
                throw GrowthError("unknown site '\(site)'; the sites are \(sites.map(\.site).joined(separator: ", "))")
            }
            if n <= 0 { throw GrowthError("site '\(site)': a token count must be positive, got \(n)") }
            if n < p.tokens { throw GrowthError("site '\(site)' has \(p.tokens) tokens; growth cannot shrink it to \(n)") }
            if n == p.tokens { throw GrowthError("site '\(site)' already has \(p.tokens) tokens; give a larger count") }
            if scale == .pinned && p.norm == .softmax {
                throw GrowthError("site '\(site)' uses softmax, which zero-initialised tokens do not preserve (each new token gets weight exp(0) = 1 in the normalisation), so pinned growth cannot keep its output; grow it with --scale reference to accept and see the drift")
            }
        }
    }

    func grown(_ p: PattentionOp) -> PattentionOp {
        guard let n = targets[p.site] else { return p }
        var q = p
        q.tokens = n
        q.scale = scale == .pinned && p.norm != .softmax ? p.tau : nil
        return q
    }

    public func run(_ graph: Graph) throws -> Graph {
        try check(graph)
        var g = graph
        for i in g.instructions.indices {
            switch g.instructions[i].op {
            case .pattention(let p):
                g.instructions[i].op = .pattention(grown(p))
            case .fusedPattention(var f):
                f.sites = f.sites.map(grown)
                g.instructions[i].op = .fusedPattention(f)
            default: break
            }
        }
        return g
    }

    public func parameterMap(from old: Graph, to new: Graph) throws -> ParameterMap {
        var map = ParameterMap()
        for p in new.parameters { map.tensors[p.name] = [.copy(from: p.name, start: 0, count: p.rows)] }
        for p in old.pattentionSites {
            guard let n = targets[p.site] else { continue }
            let keyFill: Fill
            switch newKeys {
            case .zero: keyFill = .zero
            case .normal(let std): keyFill = .normal(std: std, stream: "\(p.keyName)[\(p.tokens)..<\(n)]", skipRows: 0)
            }
            map.tensors[p.keyName] = [.copy(from: p.keyName, start: 0, count: p.tokens), .fill(keyFill, count: n - p.tokens)]
            map.tensors[p.valueName] = [.copy(from: p.valueName, start: 0, count: p.tokens), .fill(.zero, count: n - p.tokens)]
        }
        return map
    }

    /// Token arguments: a `let` that only sites growing to one common count read is set to that
    /// count (`let qkv = 1792` when query, key and value all grow); any other argument of a grown
    /// site becomes a literal, so sites sharing it keep their count. Pinned sites get
    /// `scale: τ_old` (unless they already pin τ); with reference scaling `scale:` is dropped.
    public func rewrite(_ spec: Spec, lowering old: Graph) throws -> Spec {
        var spec = spec
        var counts: [String: [Int]] = [:]
        var shared = Set<String>()
        for call in spec.pattentionCalls {
            guard case .call(_, let args) = call.kind, let site = call.pattentionSite,
                  let tokens = args.first(where: { $0.label == "tokens" }),
                  case .name(let path) = tokens.value.kind, path.count == 1, spec.constant(path[0]) != nil else { continue }
            if let n = targets[site] { counts[path[0], default: []].append(n) } else { shared.insert(path[0]) }
        }
        var constants: [String: Int] = [:]
        for (name, ns) in counts where !shared.contains(name) && Set(ns).count == 1 && spec.references(to: name) == ns.count {
            constants[name] = ns[0]
        }
        let file = spec.file
        for p in grownSites(in: old) {
            let n = targets[p.site]!
            spec.editSite(p.site) { args in
                var args = args
                if let i = args.firstIndex(where: { $0.label == "tokens" }) {
                    let keep: Bool
                    if case .name(let path) = args[i].value.kind, path.count == 1, constants[path[0]] != nil { keep = true } else { keep = false }
                    if !keep { args[i].value = Expr(.integer(n), at: args[i].value.location) }
                }
                let scaleIndex = args.firstIndex { $0.label == "scale" }
                switch scale {
                case .pinned where p.norm != .softmax:
                    if scaleIndex == nil {
                        let at = args.last?.location ?? SourceLocation(file: file, line: 1, column: 1)
                        args.append(.labelled("scale", .float(p.tau), at: at))
                    }
                default:
                    if let scaleIndex { args.remove(at: scaleIndex) }
                }
                return args
            }
        }
        for (name, n) in constants {
            spec.setConstant(name, to: Expr(.integer(n), at: spec.constant(name)!.value.location))
        }
        return spec
    }

    public func drift(in old: Graph) -> [String] {
        var reasons: [String] = []
        for p in grownSites(in: old) {
            let n = targets[p.site]!
            if p.norm == .softmax {
                reasons.append("\(p.site) (softmax): the new tokens take part of every row's weight (exp(0) = 1 each)")
                continue
            }
            if case .normal(let std) = newKeys {
                reasons.append("\(p.site): the new key tokens are random (normal(0, \(std))), so they change the row norm and every old token's activation")
            }
            if scale == .reference {
                let newTau = Double(n).squareRoot()
                if newTau != p.tau {
                    reasons.append("\(p.site): τ follows n, \(Self.format(p.tau)) → sqrt(\(n)) = \(Self.format(newTau))")
                }
            }
        }
        return reasons
    }

    static func format(_ x: Double) -> String { String(format: "%.4g", x) }
}
