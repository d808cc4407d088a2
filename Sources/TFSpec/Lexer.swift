/// Turns the text of a spec file into tokens, one at a time.
///
/// The lexer reads Unicode scalars (so a combining mark after a `"` cannot hide the quote), but columns
/// count characters (grapheme clusters, as `Diagnostic` does when it draws the caret); a tab counts as
/// one, and `\n` (or `\r\n`) ends a line. Lexical errors are thrown as `Diagnostic`s.
public struct Lexer {
    public typealias Scalar = Unicode.Scalar

    public let source: SourceFile
    private let chars: [Scalar]
    private var index = 0
    private var line = 1
    /// Where the current line starts in `chars`, and whether a non-ASCII scalar precedes `index` on it
    /// (then scalars and characters may differ and the column is counted the slow way).
    private var lineStart = 0
    private var lineHasNonASCII = false
    /// A position on the current line (`chars` index) whose column is known, for counting columns on
    /// lines with non-ASCII text.
    private var checkpoint = 0
    private var checkpointColumn = 1
    /// Where the last real token ended; the end-of-file token is placed there.
    private var lastEnd: SourceLocation?

    public init(_ source: SourceFile) {
        self.source = source
        self.chars = Array(source.text.unicodeScalars)
    }

    /// All tokens of `source`, ending with exactly one `.end` token.
    public static func tokenize(_ source: SourceFile) throws -> [Token] {
        var lexer = Lexer(source)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    /// The next token; `.end` (again and again) once the text is used up.
    public mutating func next() throws -> Token {
        try skipTrivia()
        let start = here()
        guard let c = peek() else {
            let end = lastEnd ?? SourceLocation(file: source.path, line: 1, column: 1)
            return Token(.end, text: "", at: end, end: end)
        }
        let token: Token
        if Self.isIdentifierStart(c) {
            token = lexIdentifier(start)
        } else if Self.isDigit(c) {
            token = try lexNumber(start)
        } else if c == "\"" {
            token = try lexString(start)
        } else if let p = Punctuation(rawValue: Character(c)) {
            advance()
            token = Token(.punctuation(p), text: String(Character(c)), at: start, end: here())
        } else {
            throw source.error("unexpected character \(Self.describe(c))", at: start)
        }
        lastEnd = token.endLocation
        return token
    }

    // MARK: - Pieces

    private mutating func lexIdentifier(_ start: SourceLocation) -> Token {
        var text = ""
        while let c = peek(), Self.isIdentifierContinue(c) {
            text.unicodeScalars.append(c)
            advance()
        }
        let kind: Token.Kind = Keyword(rawValue: text).map { .keyword($0) } ?? .identifier(text)
        return Token(kind, text: text, at: start, end: here())
    }

    private mutating func lexNumber(_ start: SourceLocation) throws -> Token {
        var text = ""
        var isFloat = false
        consumeDigits(into: &text)
        if peek() == "." {
            text.append(".")
            advance()
            guard let c = peek(), Self.isDigit(c) else {
                throw source.error("expected a digit after '.' in number '\(text)', found \(describeNext())", at: here())
            }
            consumeDigits(into: &text)
            isFloat = true
        }
        if let e = peek(), e == "e" || e == "E" {
            text.unicodeScalars.append(e)
            advance()
            if let sign = peek(), sign == "+" || sign == "-" {
                text.unicodeScalars.append(sign)
                advance()
            }
            guard let c = peek(), Self.isDigit(c) else {
                throw source.error("expected a digit in the exponent of number '\(text)', found \(describeNext())", at: here())
            }
            consumeDigits(into: &text)
            isFloat = true
        }
        if let c = peek(), Self.isIdentifierContinue(c) {
            throw source.error("unexpected character \(Self.describe(c)) after number '\(text)'", at: here())
        }
        if isFloat {
            guard let value = Double(text), value.isFinite else {
                throw source.error("float literal '\(text)' is too large", at: start)
            }
            return Token(.float(value), text: text, at: start, end: here())
        }
        guard let value = Int(text) else {
            throw source.error("integer literal '\(text)' is too large", at: start)
        }
        return Token(.integer(value), text: text, at: start, end: here())
    }

    private mutating func lexString(_ start: SourceLocation) throws -> Token {
        var text = "\""
        var value = ""
        advance()  // the opening quote
        while true {
            guard let c = peek(), !Self.isNewline(c) else {
                throw source.error("unterminated string", at: start)
            }
            if c == "\"" {
                text.unicodeScalars.append(c)
                advance()
                return Token(.string(value), text: text, at: start, end: here())
            }
            if c == "\\" {
                let escapeStart = here()
                advance()
                guard let e = peek(), !Self.isNewline(e) else {
                    throw source.error("unterminated string", at: start)
                }
                guard e == "\"" || e == "\\" else {
                    throw source.error("invalid escape '\\\(e)' in string: only '\\\"' and '\\\\' are allowed",
                                       at: escapeStart)
                }
                text.append("\\")
                text.unicodeScalars.append(e)
                value.unicodeScalars.append(e)
                advance()
                continue
            }
            text.unicodeScalars.append(c)
            value.unicodeScalars.append(c)
            advance()
        }
    }

    private mutating func consumeDigits(into text: inout String) {
        while let c = peek(), Self.isDigit(c) {
            text.unicodeScalars.append(c)
            advance()
        }
    }

    /// Skips whitespace and `#` comments.
    private mutating func skipTrivia() throws {
        while let c = peek() {
            if c == "#" {
                while let d = peek(), !Self.isNewline(d) { advance() }
            } else if Self.isWhitespace(c) || (c == "\u{FEFF}" && index == 0) {
                advance()
            } else {
                return
            }
        }
    }

    // MARK: - Position

    private mutating func here() -> SourceLocation {
        guard lineHasNonASCII else {
            return SourceLocation(file: source.path, line: line, column: index - lineStart + 1)
        }
        // Count the characters since the checkpoint, then move the checkpoint here if no character can
        // straddle this position (between two ASCII scalars other than CR LF there is always a break),
        // so a long line is counted once, not once per token.
        var piece = String.UnicodeScalarView()
        piece.append(contentsOf: chars[checkpoint..<index])
        let column = checkpointColumn + String(piece).count
        if index > lineStart, index < chars.count, chars[index - 1].isASCII, chars[index].isASCII, chars[index - 1] != "\r" {
            checkpoint = index
            checkpointColumn = column
        }
        return SourceLocation(file: source.path, line: line, column: column)
    }

    private func peek() -> Scalar? { index < chars.count ? chars[index] : nil }

    private mutating func advance() {
        guard index < chars.count else { return }
        let c = chars[index]
        index += 1
        if Self.isNewline(c) {
            line += 1
            lineStart = index
            lineHasNonASCII = false
            checkpoint = index
            checkpointColumn = 1
        } else if !c.isASCII {
            lineHasNonASCII = true
        }
    }

    // MARK: - Character classes

    static func isDigit(_ c: Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }

    static func isIdentifierStart(_ c: Scalar) -> Bool {
        let a = c.value
        return (a >= 0x41 && a <= 0x5A) || (a >= 0x61 && a <= 0x7A) || a == 0x5F
    }

    static func isIdentifierContinue(_ c: Scalar) -> Bool { isIdentifierStart(c) || isDigit(c) }

    static func isNewline(_ c: Scalar) -> Bool { c == "\n" }

    static func isWhitespace(_ c: Scalar) -> Bool {
        c == " " || c == "\t" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" || c == "\n"
    }

    /// `'$'` for a visible character, `U+00A0` for an invisible, combining or control one.
    static func describe(_ c: Scalar) -> String {
        let p = c.properties
        let invisible = p.isWhitespace || p.generalCategory == .control || p.generalCategory == .format
            || p.generalCategory == .unassigned || p.generalCategory == .nonspacingMark
            || p.generalCategory == .enclosingMark || p.generalCategory == .spacingMark
            || p.generalCategory == .surrogate || p.generalCategory == .privateUse
        if !invisible { return "'\(c)'" }
        return "U+" + String(c.value, radix: 16, uppercase: true).leftPadded(to: 4)
    }

    /// The next character as a diagnostic names it: `'x'`, `end of line` or `end of file`.
    private func describeNext() -> String {
        guard let c = peek() else { return "end of file" }
        if Self.isNewline(c) { return "end of line" }
        if c == " " || c == "\t" { return "whitespace" }
        return Self.describe(c)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
