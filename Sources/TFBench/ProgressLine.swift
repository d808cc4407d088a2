import Foundation

/// A one-line progress indicator on stderr, redrawn in place; silent unless stderr is a terminal,
/// so logs and pipes only get the results.
public final class ProgressLine {
    let enabled: Bool
    var lastDraw = 0.0
    var drawn = false

    public init(enabled: Bool = isatty(STDERR_FILENO) != 0) { self.enabled = enabled }

    /// Shows `[step/total] label` (just the label when total is 0) and a detail such as "run 3/10";
    /// detail-only changes redraw at most ~20 times a second.
    public func update(step: Int, of total: Int, _ label: String, detail: String = "") {
        guard enabled else { return }
        let now = monotonicSeconds()
        if drawn && now - lastDraw < 0.05 && !detail.isEmpty { return }
        lastDraw = now
        drawn = true
        var line = total > 0 ? "[\(step)/\(total)] \(label)" : label
        if !detail.isEmpty { line += "  \(detail)" }
        FileHandle.standardError.write(("\r\u{1B}[K" + line).data(using: .utf8)!)
    }

    /// Clears the line.
    public func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
        drawn = false
    }
}
