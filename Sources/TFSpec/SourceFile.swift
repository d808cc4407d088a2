import Foundation
import TFRuntime

/// The text of one spec file plus what diagnostics need to quote it.
public struct SourceFile: Sendable {
    public let path: String
    public let text: String
    private let lines: [Substring]

    public init(path: String, text: String) {
        self.path = path
        self.text = text
        // `\r\n` is one Character in Swift, so splitting on "\n" alone would miss CRLF line ends.
        self.lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// Reads a spec from disk. A missing, unreadable or non-UTF-8 file is a diagnostic, not a crash.
    public static func load(_ path: String) throws -> SourceFile {
        let start = SourceLocation(file: path, line: 1, column: 1)
        // Checked before reading, with the reason: a FIFO or a device would block or never end.
        var why = [CChar](repeating: 0, count: 256)
        if tfc_input_check(path, &why, why.count) != 0 {
            let reason = String(cString: why)
            throw Diagnostic(reason.hasPrefix("no such file") ? reason : "cannot read file: " + reason, at: start)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Diagnostic("cannot read file: \(String(cString: strerror(errno)))", at: start)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Diagnostic("file is not valid UTF-8 (at byte \(firstInvalidUTF8Byte(data)))", at: start)
        }
        return SourceFile(path: path, text: text)
    }

    /// The text of line `n` (1-based), without its newline.
    public func line(_ n: Int) -> String? {
        guard n >= 1, n <= lines.count else { return nil }
        return String(lines[n - 1]).replacingOccurrences(of: "\r", with: "")
    }

    /// A diagnostic at `location`, quoting its line.
    public func error(_ message: String, at location: SourceLocation) -> Diagnostic {
        Diagnostic(message, at: location, sourceLine: line(location.line))
    }

    private static func firstInvalidUTF8Byte(_ data: Data) -> Int {
        var offset = 0
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var position = 0
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): position += String(scalar).utf8.count; offset = position
            case .emptyInput: break loop
            case .error: break loop
            }
        }
        return offset
    }
}
