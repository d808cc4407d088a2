/// Parses a spec file into its AST. Throws the first syntax error as a `Diagnostic`.
public func parse(_ source: SourceFile) throws -> Spec {
    var parser = Parser(source)
    return try parser.parseSpec()
}

/// Parses spec text held in memory; `path` is only used to name the file in diagnostics.
public func parse(_ text: String, path: String = "<input>") throws -> Spec {
    try parse(SourceFile(path: path, text: text))
}

/// Parses a lone expression (`4 * hidden`, `f(x, site: mlp)`), which must make up all of `text`.
public func parseExpression(_ text: String, path: String = "<input>") throws -> Expr {
    var parser = Parser(SourceFile(path: path, text: text))
    return try parser.parseWholeExpression()
}

/// A recursive-descent parser for the grammar in docs/spec-language.md.
///
/// Besides the grammar it checks the structural rules: exactly one `model` and one `block`, and no name
/// defined twice among the model's fields, among the `let`s, or among a block's parameter and statements.
public struct Parser {
    public let source: SourceFile
    private var lexer: Lexer
    /// Tokens read ahead of the current position (`lookahead[0]` is the current token).
    private var lookahead: [Token] = []
    /// The token consumed last (for "expected an expression after '+'").
    private var previous: Token?
    /// Brackets opened and not yet closed, innermost last: a diagnostic that meets the end of the file
    /// names the innermost one.
    private var open: [(bracket: Character, location: SourceLocation)] = []
    /// How deeply parentheses, calls and negations are nested right now.
    private var depth = 0

    /// Expressions nested deeper than this are rejected rather than risking the stack.
    public static let maximumDepth = 200
    /// Expression trees taller than this are rejected: evaluating, lowering and printing them recurse
    /// once per level.
    public static let maximumHeight = 1000

    public init(_ source: SourceFile) {
        self.source = source
        self.lexer = Lexer(source)
    }

    // MARK: - Items

    public mutating func parseSpec() throws -> Spec {
        let first = try peek()
        if first.kind == .end {
            throw source.error("empty spec: expected 'model'", at: first.location)
        }
        var items: [Item] = []
        var modelAt: SourceLocation?
        var blockAt: SourceLocation?
        var constants: [String: SourceLocation] = [:]
        while true {
            let token = try peek()
            switch token.kind {
            case .end:
                if modelAt == nil { throw source.error("expected a 'model' in the spec, found end of file", at: token.location) }
                if blockAt == nil { throw source.error("expected a 'block' in the spec, found end of file", at: token.location) }
                return Spec(items: items, file: source.path)
            case .keyword(.model):
                if let first = modelAt {
                    throw source.error("a spec has exactly one 'model', and one is already declared at \(Self.position(first))",
                                       at: token.location)
                }
                modelAt = token.location
                items.append(.model(try parseModel()))
            case .keyword(.block):
                if let first = blockAt {
                    throw source.error("a spec has exactly one 'block', and one is already declared at \(Self.position(first))",
                                       at: token.location)
                }
                blockAt = token.location
                items.append(.block(try parseBlock()))
            case .keyword(.let):
                try advance()
                let name = try expectIdentifier("expected constant name after 'let'")
                try define(name, in: &constants)
                try expect(.equals, "expected '=' after constant name '\(name.text)'")
                let value = try parseExpression()
                items.append(.constant(Binding(name: name.text, value: value, at: name.location)))
            default:
                throw unexpected(token, "expected 'model', 'let' or 'block'")
            }
        }
    }

    private mutating func parseModel() throws -> ModelDecl {
        let keyword = try advance()
        let nameToken = try peek()
        guard case .string(let name) = nameToken.kind else {
            throw unexpected(nameToken, "expected model name string after 'model'")
        }
        try advance()
        try expectOpen(.leftBrace, "expected '{' after model name")
        var fields: [Binding] = []
        var seen: [String: SourceLocation] = [:]
        while true {
            let token = try peek()
            if token.isPunctuation(.rightBrace) {
                try close()
                return ModelDecl(name: name, fields: fields, at: keyword.location)
            }
            guard token.identifier != nil else {
                throw unexpected(token, "expected field name or '}' in model")
            }
            let field = try advance()
            try define(field, in: &seen)
            try expect(.equals, "expected '=' after field name '\(field.text)'")
            let value = try parseExpression()
            fields.append(Binding(name: field.text, value: value, at: field.location))
        }
    }

    private mutating func parseBlock() throws -> BlockDecl {
        let keyword = try advance()
        try expectOpen(.leftParen, "expected '(' after 'block'")
        let parameter = try expectIdentifier("expected parameter name after 'block('")
        try expectClose(.rightParen, "expected ')' after block parameter '\(parameter.text)'")
        try expectOpen(.leftBrace, "expected '{' after 'block(\(parameter.text))'")
        var statements: [Binding] = []
        var seen: [String: SourceLocation] = [parameter.text: parameter.location]
        while true {
            let token = try peek()
            if token.isPunctuation(.rightBrace) {
                throw source.error("expected 'return' before '}' in block", at: token.location)
            }
            if token.isKeyword(.return) {
                try advance()
                let result = try parseExpression()
                try expectClose(.rightBrace, "expected '}' after the 'return' expression")
                return BlockDecl(parameter: parameter.text, statements: statements, result: result, at: keyword.location)
            }
            guard token.identifier != nil else {
                throw unexpected(token, "expected statement name or 'return' in block")
            }
            let name = try advance()
            try define(name, in: &seen)
            try expect(.equals, "expected '=' after statement name '\(name.text)'")
            let value = try parseExpression()
            statements.append(Binding(name: name.text, value: value, at: name.location))
        }
    }

    // MARK: - Expressions

    /// One expression followed by the end of the file.
    public mutating func parseWholeExpression() throws -> Expr {
        let expr = try parseExpression()
        let next = try peek()
        guard next.kind == .end else { throw unexpected(next, "expected end of expression") }
        return expr
    }

    /// `expr := term (('+' | '-') term)*`
    public mutating func parseExpression() throws -> Expr {
        try parseExpressionWithHeight().expr
    }

    // Each parse function also returns the height of the tree it built (a leaf is 0; an operator,
    // call or negation is one more than its tallest operand). Every pass over an `Expr` recurses
    // that deep, so `maximumHeight` keeps a 10,000-term sum from overflowing the stack later.

    private mutating func parseExpressionWithHeight() throws -> (expr: Expr, height: Int) {
        var (left, height) = try parseTerm()
        while let op = try binaryOperator(in: [.add, .subtract]) {
            let token = try advance()
            let right = try parseTerm()
            height = try checkedHeight(max(height, right.height) + 1, at: token)
            left = Expr(.binary(op, left, right.expr), at: left.location)
        }
        return (left, height)
    }

    /// `term := unary (('*' | '/' | '%') unary)*`
    private mutating func parseTerm() throws -> (expr: Expr, height: Int) {
        var (left, height) = try parseUnary()
        while let op = try binaryOperator(in: [.multiply, .divide, .remainder]) {
            let token = try advance()
            let right = try parseUnary()
            height = try checkedHeight(max(height, right.height) + 1, at: token)
            left = Expr(.binary(op, left, right.expr), at: left.location)
        }
        return (left, height)
    }

    /// `unary := '-' unary | primary`
    private mutating func parseUnary() throws -> (expr: Expr, height: Int) {
        let token = try peek()
        guard token.isPunctuation(.minus) else { return try parsePrimary() }
        try advance()
        try enter(token)
        defer { depth -= 1 }
        let operand = try parseUnary()
        return (Expr(.negate(operand.expr), at: token.location), try checkedHeight(operand.height + 1, at: token))
    }

    private mutating func parsePrimary() throws -> (expr: Expr, height: Int) {
        let token = try peek()
        switch token.kind {
        case .integer(let value):
            try advance()
            return (Expr(.integer(value), at: token.location), 0)
        case .float(let value):
            try advance()
            return (Expr(.float(value), at: token.location), 0)
        case .string(let value):
            try advance()
            return (Expr(.string(value), at: token.location), 0)
        case .keyword(.true), .keyword(.false):
            try advance()
            return (Expr(.boolean(token.kind == .keyword(.true)), at: token.location), 0)
        case .identifier(let name):
            if try peek(1).isPunctuation(.leftParen) { return try parseCall() }
            try advance()
            var parts = [name]
            while try peek().isPunctuation(.dot) {
                try advance()
                let part = try expectIdentifier("expected a name after '\(parts.joined(separator: ".")).'")
                parts.append(part.text)
            }
            return (Expr(.name(parts), at: token.location), 0)
        case .punctuation(.leftParen):
            try enter(token)
            defer { depth -= 1 }
            try expectOpen(.leftParen, "")
            var inner = try parseExpressionWithHeight()
            try expectClose(.rightParen, "expected ')' to close '(' at \(Self.position(token.location))")
            inner.expr.location = token.location
            return inner
        default:
            let after = previous.map { " after '\($0.text)'" } ?? ""
            throw unexpected(token, "expected an expression\(after)")
        }
    }

    /// `IDENT '(' [arg (',' arg)*] ')'` with `arg := [IDENT ':'] expr`
    private mutating func parseCall() throws -> (expr: Expr, height: Int) {
        let name = try advance()
        try enter(name)
        defer { depth -= 1 }
        try expectOpen(.leftParen, "")
        var arguments: [Argument] = []
        var height = 0
        if try peek().isPunctuation(.rightParen) {
            try close()
            return (Expr(.call(name.text, []), at: name.location), 1)
        }
        while true {
            let start = try peek()
            var label: String?
            if let text = start.identifier, try peek(1).isPunctuation(.colon) {
                label = text
                try advance()
                try advance()
            }
            let value = try parseExpressionWithHeight()
            height = max(height, value.height)
            arguments.append(Argument(label: label, value: value.expr, at: start.location))
            let next = try peek()
            if next.isPunctuation(.comma) {
                try advance()
            } else if next.isPunctuation(.rightParen) {
                try close()
                return (Expr(.call(name.text, arguments), at: name.location), try checkedHeight(height + 1, at: name))
            } else {
                throw unexpected(next, "expected ',' or ')' in the arguments of '\(name.text)'")
            }
        }
    }

    /// `height`, or an error at `token` when it is more than `maximumHeight`.
    private func checkedHeight(_ height: Int, at token: Token) throws -> Int {
        guard height <= Self.maximumHeight else {
            throw source.error("expression is too deep: more than \(Self.maximumHeight) operators, calls or negations inside one another (a sum of n terms has n - 1); split it into named parts",
                               at: token.location)
        }
        return height
    }

    private mutating func binaryOperator(in operators: [BinaryOperator]) throws -> BinaryOperator? {
        guard case .punctuation(let p) = try peek().kind,
              let op = BinaryOperator(rawValue: String(p.rawValue)), operators.contains(op) else { return nil }
        return op
    }

    // MARK: - Tokens

    private mutating func peek(_ offset: Int = 0) throws -> Token {
        while lookahead.count <= offset {
            lookahead.append(try lexer.next())
        }
        return lookahead[offset]
    }

    @discardableResult
    private mutating func advance() throws -> Token {
        let token = try peek()
        if token.kind != .end { lookahead.removeFirst() }
        previous = token
        return token
    }

    @discardableResult
    private mutating func expect(_ p: Punctuation, _ expected: String) throws -> Token {
        let token = try peek()
        guard token.isPunctuation(p) else { throw unexpected(token, expected) }
        return try advance()
    }

    private mutating func expectIdentifier(_ expected: String) throws -> Token {
        let token = try peek()
        guard token.identifier != nil else { throw unexpected(token, expected) }
        return try advance()
    }

    /// Consumes an opening bracket and remembers it until it is closed.
    private mutating func expectOpen(_ p: Punctuation, _ expected: String) throws {
        let token = try expect(p, expected)
        open.append((p.rawValue, token.location))
    }

    private mutating func expectClose(_ p: Punctuation, _ expected: String) throws {
        try expect(p, expected)
        open.removeLast()
    }

    private mutating func close() throws {
        try advance()
        open.removeLast()
    }

    /// Counts one more level of nesting, refusing to go past `maximumDepth`.
    private mutating func enter(_ token: Token) throws {
        guard depth < Self.maximumDepth else {
            throw source.error("expression is nested too deeply (more than \(Self.maximumDepth) levels)", at: token.location)
        }
        depth += 1
    }

    /// Records a name, or reports it as defined twice (at the second occurrence).
    private func define(_ name: Token, in seen: inout [String: SourceLocation]) throws {
        if let first = seen[name.text] {
            throw source.error("'\(name.text)' is already defined at \(Self.position(first))", at: name.location)
        }
        seen[name.text] = name.location
    }

    /// "EXPECTED, found TOKEN" at the token, or, at the end of the file inside a bracket, that the
    /// bracket is never closed.
    private func unexpected(_ token: Token, _ expected: String) -> Diagnostic {
        if token.kind == .end, let innermost = open.last {
            let what = innermost.bracket == "{" ? "block" : "parenthesis"
            return source.error("unterminated \(what): '\(innermost.bracket)' at \(Self.position(innermost.location)) is never closed",
                                at: token.location)
        }
        return source.error("\(expected), found \(token.quoted)", at: token.location)
    }

    private static func position(_ location: SourceLocation) -> String { "\(location.line):\(location.column)" }
}
