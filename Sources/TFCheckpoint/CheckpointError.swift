/// A problem with a checkpoint or its config, printed as one line: `PATH: error: MESSAGE`.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or folder) the problem is about, as the user spelled it.
    public let path: String
    /// What went wrong, one line, without the path.
    public let message: String

    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): error: \(message)" }
}
