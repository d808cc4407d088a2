/// Why a graph cannot be differentiated; the message names the instruction.
public struct AutodiffError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
