/// A problem with a weight file, printed as one line: `PATH: error: MESSAGE`.
public struct WeightError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the problem is about (as the caller spelled it).
    public let path: String
    /// What went wrong, one line, without the path.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): error: \(message)" }
}
