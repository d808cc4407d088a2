import Foundation
import TFRuntime

/// `--compare OLD.json`: the change from an earlier report of the same kind, figure by figure.
/// Works on the JSON objects, so any two reports of the schema compare, whichever build wrote them.
public enum Comparison {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads a report written with `--json`.
    public static func load(_ path: String) throws -> [String: Any] {
        // Checked before reading: a FIFO or a device would block or never end.
        var why = [CChar](repeating: 0, count: 256)
        if tfc_input_check(path, &why, why.count) != 0 {
            throw Failure(description: "\(path): \(String(cString: why)) (--compare takes a report written by tfc bench --json)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "\(path): cannot read: \(String(cString: strerror(errno)))")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Failure(description: "\(path): not a JSON object (--compare takes a report written by tfc bench --json)")
        }
        guard let schema = object["schema"] as? String, schema.hasPrefix("tfc-bench/") else {
            throw Failure(description: "\(path): not a tfc bench report (no \"schema\": \"tfc-bench/…\")")
        }
        return object
    }

    /// The comparison table. Throws when the reports are of different kinds.
    public static func text(old: [String: Any], new newObject: [String: Any], oldName: String) throws -> String {
        // Through JSON and back, so both sides hold the same kinds of values (NSNumber, NSNull…).
        let new = (try? JSONSerialization.jsonObject(with: Data(jsonText(newObject).utf8))) as? [String: Any] ?? newObject
        let oldKind = old["kind"] as? String ?? "?", newKind = new["kind"] as? String ?? "?"
        guard oldKind == newKind else {
            throw Failure(description: "\(oldName) is a 'bench \(oldKind)' report; this is 'bench \(newKind)': compare like with like")
        }
        var lines = ["change against \(oldName) (\(old["date"] as? String ?? "undated"), \(old["cpu"] as? String ?? "?"), \(old["threads"].map { "\($0)" } ?? "?") threads); + means faster now"]
        for key in ["cpu", "threads", "spec"] where "\(old[key] ?? "")" != "\(new[key] ?? "")" {
            lines.append("note: \(key) differs: \(old[key] ?? "none") then, \(new[key] ?? "none") now")
        }
        if "\(old["quick"] ?? "")" != "\(new["quick"] ?? "")" {
            lines.append("note: one of the runs used --quick (small peak measurements), the other did not")
        }
        lines.append("")
        var table = TextTable([("figure", .left), ("side", .left), ("then", .right), ("now", .right), ("change", .right)])
        let oldPeak = old["peak"] as? [String: Any] ?? [:], newPeak = new["peak"] as? [String: Any] ?? [:]
        table.add(row("peak sgemm", "", oldPeak["sgemm_gflops"], newPeak["sgemm_gflops"], unit: "GFLOP/s", higherIsBetter: true))
        table.add(row("peak memory read", "", oldPeak["bandwidth_gbs"], newPeak["bandwidth_gbs"], unit: "GB/s", higherIsBetter: true))
        if newKind == "kernels" {
            let oldKernels = (old["kernels"] as? [[String: Any]] ?? [])
            var byKey: [String: [String: Any]] = [:]
            for k in oldKernels { byKey[kernelKey(k)] = k }
            for k in new["kernels"] as? [[String: Any]] ?? [] {
                let format = k["weights_format"] as? String ?? "f32"
                let label = "\(k["name"] ?? "") \(k["phase"] ?? "") \(k["shape"] ?? "")" + (format == "f32" ? "" : " \(format)")
                guard let previous = byKey[kernelKey(k)] else {
                    table.add([label, "", "—", "", "not in \(oldName)"])
                    continue
                }
                for side in ["naive", "fused"] {
                    let o = (previous[side] as? [String: Any])?["median_s"], n = (k[side] as? [String: Any])?["median_s"]
                    table.add(row(side == "naive" ? label : "", side, o, n, unit: "time", higherIsBetter: false))
                }
            }
        } else {
            for phase in ["prefill", "decode"] {
                let o = old[phase] as? [String: Any] ?? [:], n = new[phase] as? [String: Any] ?? [:]
                let label = phase == "prefill" ? "prefill T=\(n["seq"] ?? "?")" : "decode \(n["tokens"] ?? "?") after \(n["prompt"] ?? "?")"
                if phase == "prefill" && "\(o["seq"] ?? "")" != "\(n["seq"] ?? "")" { lines.append("note: prefill length differs") }
                for side in ["naive", "fused"] {
                    table.add(row(side == "naive" ? label : "", side, (o[side] as? [String: Any])?["tokens_per_s"],
                                  (n[side] as? [String: Any])?["tokens_per_s"], unit: "tokens/s", higherIsBetter: true))
                }
            }
            table.add(row("compile", "fused", old["compile_s"], new["compile_s"], unit: "s", higherIsBetter: false))
        }
        lines.append(table.text)
        return lines.joined(separator: "\n")
    }

    /// Name, phase, shape, and the weights format when it is not f32 (older reports have none: f32).
    static func kernelKey(_ k: [String: Any]) -> String {
        let format = k["weights_format"] as? String ?? "f32"
        return "\(k["name"] ?? "")|\(k["phase"] ?? "")|\(k["shape"] ?? "")" + (format == "f32" ? "" : "|\(format)")
    }

    /// then, now and the relative change; "time" values are formatted as durations.
    static func row(_ label: String, _ side: String, _ old: Any?, _ new: Any?, unit: String, higherIsBetter: Bool) -> [String] {
        let o = (old as? NSNumber)?.doubleValue, n = (new as? NSNumber)?.doubleValue
        func show(_ x: Double?) -> String {
            guard let x else { return "n/a" }
            switch unit {
            case "time": return formatSeconds(x)
            case "s": return String(format: "%.3f s", x)
            default: return "\(formatRate(x)) \(unit)"
            }
        }
        var change = ""
        if let o, let n, o > 0, n > 0 {
            // Faster is positive either way: for times, then/now − 1; for rates, now/then − 1.
            let ratio = higherIsBetter ? n / o : o / n
            change = String(format: "%+.1f%%", (ratio - 1) * 100)
        }
        return [label, side, show(o), show(n), change]
    }
}
