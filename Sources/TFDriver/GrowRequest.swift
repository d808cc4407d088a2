import Foundation
import TFIR
import TFPasses

/// `--tokens SITE=+N | SITE=N | SITE=xF` and `--layers +N | N` turned into growth rewrites.
struct GrowRequest {
    enum Amount: Equatable {
        case add(Int), set(Int), factor(Double)
    }

    /// One `--tokens` value, parsed.
    struct TokenClause {
        var text: String
        var selector: String
        var amount: Amount
    }

    static let syntax = "expected SITE=+N (add N tokens), SITE=N (grow to N) or SITE=xF (scale by F), e.g. mlp=+1024, attention.query=1792, all=x2"

    static func parseClause(_ text: String) throws -> TokenClause {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let eq = trimmed.firstIndex(of: "=") else {
            throw UserError("error: --tokens '\(text)': \(syntax)")
        }
        let selector = String(trimmed[..<eq]).trimmingCharacters(in: .whitespaces)
        let value = String(trimmed[trimmed.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        if selector.isEmpty { throw UserError("error: --tokens '\(text)': no site before '='; \(syntax)") }
        if value.isEmpty { throw UserError("error: --tokens '\(text)': no count after '='; \(syntax)") }
        let amount: Amount
        if value.hasPrefix("+") {
            guard let n = Int(value.dropFirst()), !value.dropFirst().hasPrefix("+"), !value.dropFirst().hasPrefix("-") else {
                throw UserError("error: --tokens '\(text)': '\(value)' is not a token count; \(syntax)")
            }
            if n <= 0 { throw UserError("error: --tokens '\(text)': the number of tokens to add must be positive, got \(n)") }
            amount = .add(n)
        } else if let first = value.first, first == "x" || first == "×" || first == "*" {
            guard let f = Double(value.dropFirst()), f.isFinite else {
                throw UserError("error: --tokens '\(text)': '\(value)' is not a factor; \(syntax)")
            }
            if !(f > 1) { throw UserError("error: --tokens '\(text)': the factor must be greater than 1 (growth cannot shrink a site), got \(value.dropFirst())") }
            amount = .factor(f)
        } else {
            guard let n = Int(value) else {
                throw UserError("error: --tokens '\(text)': '\(value)' is not a token count; \(syntax)")
            }
            if n <= 0 { throw UserError("error: --tokens '\(text)': a token count must be positive, got \(n)") }
            amount = .set(n)
        }
        return TokenClause(text: text, selector: selector, amount: amount)
    }

    /// Site → new token count, from the clauses. A selector is `all`, a site name, or a dotted
    /// prefix of site names (`attention`); for a site named by several, the most specific wins.
    static func targets(_ texts: [String], sites: [PattentionOp]) throws -> [String: Int] {
        let names = sites.map(\.site)
        var chosen: [String: (clause: TokenClause, specificity: Int)] = [:]
        for text in texts {
            let clause = try parseClause(text)
            let matched: [String]
            let specificity: Int
            if clause.selector == "all" {
                matched = names; specificity = 0
            } else if names.contains(clause.selector) {
                matched = [clause.selector]; specificity = 2
            } else {
                matched = names.filter { $0.hasPrefix(clause.selector + ".") }; specificity = 1
                if matched.isEmpty {
                    throw UserError("error: --tokens '\(text)': unknown site '\(clause.selector)'\(closest(clause.selector, among: names + prefixes(of: names) + ["all"])) (the sites are \(names.joined(separator: ", ")); or all)")
                }
            }
            for site in matched {
                if let previous = chosen[site] {
                    if previous.specificity == specificity {
                        throw UserError("error: --tokens: site '\(site)' is given twice ('\(previous.clause.text)' and '\(text)')")
                    }
                    if previous.specificity > specificity { continue }
                }
                chosen[site] = (clause, specificity)
            }
        }
        var targets: [String: Int] = [:]
        for p in sites {
            guard let (clause, _) = chosen[p.site] else { continue }
            let n: Int
            switch clause.amount {
            case .add(let k): n = p.tokens.addingReportingOverflow(k).overflow ? Int.max : p.tokens + k
            case .set(let k): n = k
            case .factor(let f):
                let scaled = (Double(p.tokens) * f).rounded()
                n = scaled >= Double(SizeLimits.maximumDimension) ? Int.max : Int(max(scaled, 0))
            }
            if n > SizeLimits.maximumDimension {
                throw UserError("error: --tokens '\(clause.text)': site '\(p.site)' would have more than \(SizeLimits.maximumDimension) tokens, the limit of one dimension")
            }
            if n < p.tokens {
                throw UserError("error: --tokens '\(clause.text)': site '\(p.site)' has \(p.tokens) tokens; growth cannot shrink it to \(n)")
            }
            if n == p.tokens {
                throw UserError("error: --tokens '\(clause.text)': site '\(p.site)' already has \(p.tokens) tokens; give a larger count")
            }
            targets[p.site] = n
        }
        return targets
    }

    /// Every proper dotted prefix of the site names (`attention` for `attention.query`).
    static func prefixes(of names: [String]) -> [String] {
        var out: [String] = []
        for name in names {
            let parts = name.split(separator: ".")
            for k in stride(from: 1, to: parts.count, by: 1) {
                let prefix = parts[..<k].joined(separator: ".")
                if !out.contains(prefix) { out.append(prefix) }
            }
        }
        return out
    }

    /// `--layers +N` → N, `--layers N` → N − current.
    static func insertedLayers(_ text: String, current: Int) throws -> Int {
        let value = text.trimmingCharacters(in: .whitespaces)
        let form = "expected +N (insert N layers) or N (grow to N layers in total)"
        if value.hasPrefix("+") {
            guard let n = Int(value.dropFirst()), !value.dropFirst().hasPrefix("+"), !value.dropFirst().hasPrefix("-") else {
                throw UserError("error: --layers '\(text)': \(form)")
            }
            if n <= 0 { throw UserError("error: --layers '\(text)': the number of layers to insert must be positive, got \(n)") }
            try checkLayerLimit(n > SizeLimits.maximumLayers - current, text)
            return n
        }
        guard let n = Int(value) else { throw UserError("error: --layers '\(text)': \(form)") }
        if n <= current {
            throw UserError("error: --layers \(text): the model already has \(current) layers; give a larger total, or +N to insert N")
        }
        try checkLayerLimit(n > SizeLimits.maximumLayers, text)
        return n - current
    }

    private static func checkLayerLimit(_ over: Bool, _ text: String) throws {
        if over { throw UserError("error: --layers '\(text)': a model has at most \(SizeLimits.maximumLayers) layers") }
    }

    /// "; did you mean 'x'?" for a close name (edit distance or prefix), or "".
    static func closest(_ name: String, among candidates: [String]) -> String {
        var best: (String, Int)?
        let limit = max(1, name.count / 3)
        for c in candidates {
            let d = distance(name, c)
            if d <= limit && d < (best?.1 ?? .max) { best = (c, d) }
        }
        if best == nil, let c = candidates.first(where: { $0.hasPrefix(name) || $0.hasSuffix("." + name) }) { best = (c, 0) }
        return best.map { "; did you mean '\($0.0)'?" } ?? ""
    }

    /// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
