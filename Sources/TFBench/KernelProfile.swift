import Foundation
import TFCodegen
import TFIR

/// A fused side's prefill, or decode step, by kernel kind (`tfc bench model --profile`): each
/// kind's calls and seconds per prefill (per decode step), the median over the profiled runs (each
/// call timed alone by `FusedExecutor.profiledForward`).
public struct KernelProfile: Sendable {
    public struct Row: Sendable {
        public var kind: String
        /// Calls per prefill (every layer's).
        public var calls: Int
        /// Median seconds per prefill over the runs.
        public var seconds: Double
    }
    public var rows: [Row]
    public var runs: Int

    /// Sum of the kinds' medians.
    public var totalSeconds: Double { rows.reduce(0) { $0 + $1.seconds } }

    /// `runs` profiled prefills of `prompt` from an empty cache; nil for an executor that is not
    /// the fused one.
    static func measure(_ executor: any ModelExecutor, prompt: [Int32], runs: Int) throws -> KernelProfile? {
        guard let fused = executor as? FusedExecutor else { return nil }
        return try median(runs: runs) {
            BLASThreads.park()
            fused.reset()
            return try fused.profiledForward(prompt).kinds
        }
    }

    /// `runs` profiled decodes of `continuation`, one token a step after an untimed prefill of
    /// `prompt` (as the timed decode runs): per kind, calls and seconds per decode step.
    static func measureDecode(_ executor: any ModelExecutor, prompt: [Int32], continuation: [Int32], runs: Int) throws -> KernelProfile? {
        guard let fused = executor as? FusedExecutor, !continuation.isEmpty else { return nil }
        return try median(runs: runs) {
            fused.reset()
            _ = fused.forward(prompt)
            BLASThreads.park()
            var steps: [FusedExecutor.KindTime] = []
            for token in continuation {
                for k in try fused.profiledForward([token]).kinds {
                    if let i = steps.firstIndex(where: { $0.kind == k.kind }) { steps[i].seconds += k.seconds } else { steps.append(k) }
                }
            }
            let count = Double(continuation.count)
            return steps.map { FusedExecutor.KindTime(kind: $0.kind, calls: $0.calls, seconds: $0.seconds / count) }
        }
    }

    /// Each kind's median over `runs` calls of `run` (kinds in order of first appearance).
    private static func median(runs: Int, _ run: () throws -> [FusedExecutor.KindTime]) rethrows -> KernelProfile {
        var order: [String] = [], calls: [String: Int] = [:], times: [String: [Double]] = [:]
        for _ in 0..<runs {
            for k in try run() {
                if times[k.kind] == nil { order.append(k.kind) }
                calls[k.kind] = k.calls
                times[k.kind, default: []].append(k.seconds)
            }
        }
        return KernelProfile(rows: order.map { Row(kind: $0, calls: calls[$0]!, seconds: Summary(times[$0]!).median) }, runs: runs)
    }

    /// One table for several sides (`labels[i]` names `profiles[i]`): per kind, ms per prefill
    /// and share of that side's kernel total, and for every side after the first the ratio of
    /// the first's time to its own (>1: it is faster there). Largest kinds of the first side first.
    /// `decodeTokens`: the profiles are of decode steps (ms per step, medians per step), else of prefills.
    public static func table(_ profiles: [KernelProfile], labels: [String], prefillMedians: [Double?], decodeTokens: Int? = nil) -> String {
        guard let first = profiles.first else { return "" }
        var columns: [(String, TextTable.Alignment)] = [("kind", .left), ("calls", .right)]
        for (i, label) in labels.enumerated() {
            columns += [("\(label) ms", .right), ("%", .right)]
            if i > 0 { columns.append(("\(labels[0]) ÷ \(label)", .right)) }
        }
        var table = TextTable(columns)
        let kinds = first.rows.sorted { $0.seconds > $1.seconds }.map(\.kind)
            + profiles.dropFirst().flatMap { $0.rows.map(\.kind) }.filter { kind in !first.rows.contains { $0.kind == kind } }
        var seen = Set<String>()
        for kind in kinds where seen.insert(kind).inserted {
            let rows = profiles.map { p in p.rows.first { $0.kind == kind } }
            var cells = [kind, "\(rows.compactMap { $0?.calls }.first ?? 0)"]
            for (i, row) in rows.enumerated() {
                cells += [row.map { String(format: "%.2f", 1000 * $0.seconds) } ?? "—",
                          row.map { String(format: "%.1f", 100 * $0.seconds / profiles[i].totalSeconds) } ?? "—"]
                if i > 0 { cells.append(row.flatMap { r in rows[0].map { formatSpeedup($0.seconds / r.seconds) } } ?? "—") }
            }
            table.add(cells)
        }
        table.gap()
        var total = ["all kernels", ""]
        for (i, p) in profiles.enumerated() {
            total += [String(format: "%.2f", 1000 * p.totalSeconds), "100"]
            if i > 0 { total.append(formatSpeedup(first.totalSeconds / p.totalSeconds)) }
        }
        table.add(total)
        let what = decodeTokens.map { "decode step by kernel kind (ms per step: median of \(first.runs) profiled decode\(first.runs == 1 ? "" : "s") of \($0) tokens per side" }
            ?? "prefill by kernel kind (median of \(first.runs) profiled prefill\(first.runs == 1 ? "" : "s") per side"
        var lines = ["fused \(what), each call timed alone; % of the side's kernel total):", table.text]
        let timed = zip(labels, zip(profiles, prefillMedians)).compactMap { label, pair -> String? in
            pair.1.map { String(format: "%@ %.2f ms (kernels %.2f ms)", label, 1000 * $0, 1000 * pair.0.totalSeconds) }
        }
        if !timed.isEmpty { lines.append("median \(decodeTokens == nil ? "prefill" : "decode step") in the timed runs: " + timed.joined(separator: ", ")) }
        return lines.joined(separator: "\n")
    }
}
