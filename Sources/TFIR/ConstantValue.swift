import TFSpec

/// The value of a constant expression: model fields and `let`s evaluate to these.
public enum ConstantValue: Equatable, CustomStringConvertible {
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case string(String)
    /// A bare identifier that names no constant, e.g. `l2_norm_gelu` or `affine`.
    case symbol(String)

    public var description: String {
        switch self {
        case .integer(let v): return "integer \(v)"
        case .float(let v): return "float \(v)"
        case .boolean(let v): return "boolean \(v)"
        case .string(let v): return "string \"\(v)\""
        case .symbol(let v): return "'\(v)'"
        }
    }
}

/// Evaluates the spec's constants (model fields and `let`s) on demand, in dependency order, so a
/// constant may refer to one defined later; a cycle is an error.
struct ConstantEvaluator {
    let source: SourceFile?
    private var definitions: [String: Binding] = [:]
    private var values: [String: ConstantValue] = [:]
    private var inProgress: [String] = []

    init(bindings: [Binding], source: SourceFile?) {
        self.source = source
        for b in bindings where definitions[b.name] == nil { definitions[b.name] = b }
    }

    func error(_ message: String, at location: SourceLocation) -> Diagnostic {
        source?.error(message, at: location) ?? Diagnostic(message, at: location)
    }

    var names: [String] { Array(definitions.keys) }
    func isConstant(_ name: String) -> Bool { definitions[name] != nil }

    mutating func value(of name: String, at location: SourceLocation) throws -> ConstantValue {
        if let v = values[name] { return v }
        guard let binding = definitions[name] else {
            throw error("unknown identifier '\(name)'\(suggestion(for: name, among: names))", at: location)
        }
        if let start = inProgress.firstIndex(of: name) {
            let cycle = (inProgress[start...] + [name]).joined(separator: " → ")
            throw error("constant '\(name)' depends on itself: \(cycle)", at: binding.location)
        }
        inProgress.append(name)
        defer { inProgress.removeLast() }
        let v = try evaluate(binding.value)
        values[name] = v
        return v
    }

    mutating func evaluate(_ expr: Expr) throws -> ConstantValue {
        switch expr.kind {
        case .integer(let v): return .integer(v)
        case .float(let v): return .float(v)
        case .boolean(let v): return .boolean(v)
        case .string(let v): return .string(v)
        case .name(let path):
            if path.count == 1, isConstant(path[0]) { return try value(of: path[0], at: expr.location) }
            return .symbol(path.joined(separator: "."))
        case .negate(let inner):
            switch try evaluate(inner) {
            case .integer(let v):
                let (negated, overflow) = Int(0).subtractingReportingOverflow(v)
                if overflow { throw error("integer overflow in -(\(v))", at: expr.location) }
                return .integer(negated)
            case .float(let v): return .float(-v)
            case let other: throw error("cannot negate \(other)", at: expr.location)
            }
        case .binary(let op, let lhs, let rhs):
            let a = try numeric(lhs), b = try numeric(rhs)
            return try apply(op, a, b, at: expr.location)
        case .call(let name, _):
            throw error("'\(name)(...)' is an op on tensors; it cannot appear in a constant", at: expr.location)
        }
    }

    private mutating func numeric(_ expr: Expr) throws -> ConstantValue {
        let v = try evaluate(expr)
        switch v {
        case .integer, .float: return v
        case .symbol(let s) where !s.contains("."):
            throw error("unknown identifier '\(s)'\(suggestion(for: s, among: names))", at: expr.location)
        default: throw error("arithmetic needs numbers, found \(v)", at: expr.location)
        }
    }

    private func apply(_ op: BinaryOperator, _ a: ConstantValue, _ b: ConstantValue, at location: SourceLocation) throws -> ConstantValue {
        if case .integer(let x) = a, case .integer(let y) = b {
            let result: (Int, Bool)
            switch op {
            case .add: result = x.addingReportingOverflow(y)
            case .subtract: result = x.subtractingReportingOverflow(y)
            case .multiply: result = x.multipliedReportingOverflow(by: y)
            case .divide, .remainder:
                if y == 0 { throw error("division by zero", at: location) }
                // Int.min / -1 overflows; its remainder is 0 but Swift's `%` traps on it too.
                let quotient = x.dividedReportingOverflow(by: y), remainder = x.remainderReportingOverflow(dividingBy: y)
                if op == .divide, !quotient.overflow, remainder.partialValue != 0 {
                    throw error("\(x) / \(y) does not divide evenly", at: location)
                }
                result = op == .divide ? quotient : (y == -1 ? (0, false) : remainder)
            }
            if result.1 { throw error("integer overflow in \(x) \(op.rawValue) \(y)", at: location) }
            return .integer(result.0)
        }
        let x = a.asDouble!, y = b.asDouble!
        switch op {
        case .add: return .float(x + y)
        case .subtract: return .float(x - y)
        case .multiply: return .float(x * y)
        case .divide:
            if y == 0 { throw error("division by zero", at: location) }
            return .float(x / y)
        case .remainder: throw error("'%' needs integers", at: location)
        }
    }
}

extension ConstantValue {
    var asDouble: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .float(let v): return v
        default: return nil
        }
    }
}

/// ", did you mean 'x'?" for a close name, or "".
func suggestion(for name: String, among candidates: [String]) -> String {
    var best: (name: String, distance: Int)? = nil
    // Names of one or two letters are too short for a useful guess.
    let limit = name.count <= 2 ? 0 : max(1, name.count / 3)
    for candidate in candidates.sorted() {
        let d = editDistance(name, candidate)
        if d <= limit, d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    guard let best else { return "" }
    return "; did you mean '\(best.name)'?"
}

/// Levenshtein distance, for "did you mean" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            let current = row[j]
            let substitution = previous + (a[i - 1] == b[j - 1] ? 0 : 1)
            row[j] = Swift.min(row[j] + 1, row[j - 1] + 1, substitution)
            previous = current
        }
    }
    return row[b.count]
}
