/// Prints a spec in the canonical layout of specs/tiny.tfs: 4-space indent, one field or statement per
/// line, a blank line between items (but not between consecutive `let`s), binary operators spaced and
/// parenthesised only where precedence and left-associativity require it. Comments are not kept.
///
/// For every spec the parser produces, `parse(Printer.print(spec)) == spec`. ASTs built by hand print
/// back only if they could have been parsed: literals non-negative and finite (write `-1` as
/// `.negate(.integer(1))`), names valid identifiers and not keywords, strings without line breaks.
public enum Printer {
    public static let indent = "    "

    public static func print(_ spec: Spec) -> String {
        var out = ""
        var previous: Item?
        for item in spec.items {
            if let previous {
                if case .constant = previous, case .constant = item {} else { out += "\n" }
            }
            switch item {
            case .model(let model):
                out += "model \(quote(model.name)) {"
                out += model.fields.isEmpty ? "}\n" : "\n"
                for field in model.fields { out += "\(indent)\(field.name) = \(print(field.value))\n" }
                if !model.fields.isEmpty { out += "}\n" }
            case .constant(let binding):
                out += "let \(binding.name) = \(print(binding.value))\n"
            case .block(let block):
                out += "block(\(block.parameter)) {\n"
                for statement in block.statements { out += "\(indent)\(statement.name) = \(print(statement.value))\n" }
                out += "\(indent)return \(print(block.result))\n}\n"
            }
            previous = item
        }
        return out
    }

    public static func print(_ expr: Expr) -> String {
        switch expr.kind {
        case .integer(let value):
            return String(value)
        case .float(let value):
            return floatLiteral(value)
        case .boolean(let value):
            return value ? "true" : "false"
        case .string(let value):
            return quote(value)
        case .name(let parts):
            return parts.joined(separator: ".")
        case .negate(let operand):
            if case .binary = operand.kind { return "-(\(print(operand)))" }
            return "-" + print(operand)
        case .binary(let op, let left, let right):
            var lhs = print(left), rhs = print(right)
            // Left-associative: the left operand needs parentheses only if it binds more loosely,
            // the right one also if it binds equally (`a - (b - c)`).
            if case .binary(let l, _, _) = left.kind, l.precedence < op.precedence { lhs = "(\(lhs))" }
            if case .binary(let r, _, _) = right.kind, r.precedence <= op.precedence { rhs = "(\(rhs))" }
            return "\(lhs) \(op.rawValue) \(rhs)"
        case .call(let name, let arguments):
            let args = arguments.map { arg in (arg.label.map { "\($0): " } ?? "") + print(arg.value) }
            return "\(name)(\(args.joined(separator: ", ")))"
        }
    }

    /// The shortest text that reads back as exactly `value` and that the lexer sees as a float
    /// (`10000.0`, `1e-05`, `1e+16`, `5e-324`).
    public static func floatLiteral(_ value: Double) -> String {
        let text = value.description
        guard value.isFinite else { return text }
        return text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? text : text + ".0"
    }

    /// A string literal: `"` and `\` escaped.
    public static func quote(_ value: String) -> String {
        // Scalar by scalar: a quote or backslash may carry a combining mark in the same Character.
        var out = "\""
        for c in value.unicodeScalars {
            if c == "\"" || c == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }
}

extension Spec: CustomStringConvertible {
    /// The spec in canonical layout (see `Printer`).
    public var printed: String { Printer.print(self) }
    public var description: String { printed }
}

extension Expr: CustomStringConvertible {
    /// The expression as it would be written in a spec (see `Printer`).
    public var printed: String { Printer.print(self) }
    public var description: String { printed }
}
