/// Why a tokenizer file cannot be used, or an id cannot be decoded; the text names the file and what it has.
public struct TokenizerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
