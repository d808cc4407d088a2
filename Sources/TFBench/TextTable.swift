/// Columns of text, padded to line up; numbers right-aligned.
struct TextTable {
    enum Alignment { case left, right }
    var headers: [String]
    var alignments: [Alignment]
    var rows: [[String]] = []

    init(_ columns: [(String, Alignment)]) {
        headers = columns.map(\.0)
        alignments = columns.map(\.1)
    }

    mutating func add(_ row: [String]) { rows.append(row + Array(repeating: "", count: max(0, headers.count - row.count))) }

    /// A blank separator row.
    mutating func gap() { rows.append(Array(repeating: "", count: headers.count)) }

    var text: String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                parts.append(alignments[i] == .left ? cell + pad : pad + cell)
            }
            var text = parts.joined(separator: "  ")
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
        let rule = String(repeating: "─", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}

// MARK: number formatting

import Foundation

/// "812 µs", "3.41 ms", "1.207 s".
func formatSeconds(_ s: Double) -> String {
    if s < 1e-3 { return String(format: "%.1f µs", s * 1e6) }
    if s < 1 { return String(format: "%.3f ms", s * 1e3) }
    return String(format: "%.3f s", s)
}

/// Three significant figures or one decimal, whichever is more: "0.512", "12.3", "153.2", "2048".
func formatRate(_ x: Double?) -> String {
    guard let x, x.isFinite else { return "" }
    if x == 0 { return "0" }
    if abs(x) < 1 { return String(format: "%.3g", x) }
    if abs(x) >= 10000 { return String(format: "%.0f", x) }
    return String(format: "%.1f", x)
}

func formatPercent(_ x: Double?) -> String {
    guard let x, x.isFinite else { return "" }
    return x < 10 ? String(format: "%.1f%%", x) : String(format: "%.0f%%", x)
}

func formatSpeedup(_ x: Double?) -> String {
    guard let x, x.isFinite else { return "n/a" }
    return String(format: "%.2f×", x)
}

func formatBytes(_ bytes: Int) -> String {
    bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
}
