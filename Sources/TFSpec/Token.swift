/// The words the grammar reserves; none of them can be used as a name.
public enum Keyword: String, Sendable, CaseIterable {
    case model, `let`, block, `return`, `true`, `false`
}

/// The single-character punctuation of the language.
public enum Punctuation: Character, Sendable, CaseIterable {
    case leftBrace = "{", rightBrace = "}", leftParen = "(", rightParen = ")"
    case comma = ",", colon = ":", equals = "=", dot = "."
    case plus = "+", minus = "-", star = "*", slash = "/", percent = "%"
}

/// One token of a spec file.
public struct Token: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case identifier(String)
        case keyword(Keyword)
        case integer(Int)
        case float(Double)
        /// The unescaped contents of a string literal.
        case string(String)
        case punctuation(Punctuation)
        /// The end of the file; located just after the last real token (1:1 in a file without tokens).
        case end
    }

    public var kind: Kind
    /// The token exactly as written (escapes and all); empty for `.end`.
    public var text: String
    /// Where the token starts.
    public var location: SourceLocation
    /// The position just after the token's last character (on the same line: tokens never span lines).
    public var endLocation: SourceLocation

    public init(_ kind: Kind, text: String, at location: SourceLocation, end: SourceLocation) {
        self.kind = kind
        self.text = text
        self.location = location
        self.endLocation = end
    }

    /// How diagnostics name this token after "found": `'64'`, `'{'`, `string "tiny"`, `end of file`.
    public var quoted: String {
        switch kind {
        case .end: return "end of file"
        case .string: return "string \(text)"
        default: return "'\(text)'"
        }
    }

    public func isPunctuation(_ p: Punctuation) -> Bool { kind == .punctuation(p) }
    public func isKeyword(_ k: Keyword) -> Bool { kind == .keyword(k) }

    public var identifier: String? {
        if case .identifier(let name) = kind { return name }
        return nil
    }
}
