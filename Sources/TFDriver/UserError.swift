import ArgumentParser
import Foundation
import TFWeights

/// An error to show the user as it is (already formatted with where and what), then exit 1.
struct UserError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command body; any error is printed to stderr as its own text (one line, or a diagnostic
/// with its source line and caret) and the process exits with status 1. No stack traces, no crash.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        InterruptCleanup.proceedUnlessTerminating()  // an interrupt caused it: die of the signal instead
        var text = "\(error)"
        if !text.contains(": error:") && !text.hasPrefix("error:") { text = "error: " + text }
        FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
        throw ExitCode(1)
    }
}
