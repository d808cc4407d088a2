/// A problem with a checkpoint or its config, printed as one line: `PATH: error: MESSAGE`.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or folder) the problem is about, as the user spelled it.
    public let path: String
    /// What went wrong, one line, without the path.
    public let message: String

    public init(path: String, _ message: String) {
        self.path = path
        // Always one line: text from a file (a key, a string in a pickle) may hold control characters.
        self.message = String(String.UnicodeScalarView(message.unicodeScalars.flatMap { u -> [Unicode.Scalar] in
            u.value < 0x20 || u.value == 0x7F ? Array("\\x\(String(u.value, radix: 16))".unicodeScalars) : [u]
        }))
    }

    public var description: String { "\(path): error: \(message)" }
}
