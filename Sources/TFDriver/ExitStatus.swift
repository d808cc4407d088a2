import ArgumentParser
import Foundation

extension TFCommand {
    /// `main()` with one exit status for every error (README "Exit status"): a bad command line
    /// (ArgumentParser's usage errors, status 64 by default) exits 1 like every other error;
    /// --help and --version exit 0.
    public static func runAsMain() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Foundation.exit(0)
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write((fullMessage(for: error) + "\n").data(using: .utf8)!)
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }
}
