/// A user-facing error, carried as a value: where it happened, what went wrong, and the source line
/// it points into. Rendered as `FILE:LINE:COL: error: MESSAGE`, then the line and a caret.
public struct Diagnostic: Error, Equatable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    /// The text of the line `location` points into (without its newline), when known.
    public var sourceLine: String?

    public init(_ message: String, at location: SourceLocation, sourceLine: String? = nil) {
        self.message = message
        self.location = location
        self.sourceLine = sourceLine
    }

    /// The first line only: `FILE:LINE:COL: error: MESSAGE`, the message cut after
    /// `messageLimit` characters (it may quote a token of any length).
    public var headline: String {
        let text = message.count <= Self.messageLimit ? message
            : message.prefix(Self.messageLimit) + "… (\(message.count - Self.messageLimit) more characters)"
        return "\(location): error: \(text)"
    }

    public var description: String {
        guard let sourceLine else { return headline }
        let (shown, column) = Self.window(sourceLine, column: location.column)
        // The caret goes under the column; tabs are kept so it lines up in a terminal.
        let prefix = String(shown.prefix(max(0, column - 1)).map { $0 == "\t" ? "\t" as Character : " " })
        return "\(headline)\n\(shown)\n\(prefix)^"
    }

    /// Longest message, and longest stretch of the source line, a diagnostic prints.
    public static let messageLimit = 400
    public static let lineLimit = 160

    /// A line longer than `lineLimit` is cut to that many characters around `column`, with `…`
    /// where text was left out; returns the text shown and the column within it.
    static func window(_ line: String, column: Int) -> (String, Int) {
        let characters = Array(line)
        guard characters.count > lineLimit else { return (line, column) }
        let at = min(max(column - 1, 0), characters.count)
        let start = max(0, min(at - lineLimit / 2, characters.count - lineLimit))
        let end = min(characters.count, start + lineLimit)
        let head = start > 0 ? "…" : "", tail = end < characters.count ? "…" : ""
        return (head + String(characters[start..<end]) + tail, at - start + 1 + head.count)
    }
}
