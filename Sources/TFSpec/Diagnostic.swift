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

    /// The first line only: `FILE:LINE:COL: error: MESSAGE`.
    public var headline: String { "\(location): error: \(message)" }

    public var description: String {
        guard let sourceLine else { return headline }
        // The caret goes under the column; tabs are kept so it lines up in a terminal.
        let prefix = String(sourceLine.prefix(max(0, location.column - 1)).map { $0 == "\t" ? "\t" as Character : " " })
        return "\(headline)\n\(sourceLine)\n\(prefix)^"
    }
}
