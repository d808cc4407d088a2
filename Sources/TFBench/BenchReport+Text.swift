import Foundation

extension BenchRun {
    var headerLines: [String] {
        ["CPU: \(cpu), \(threads) thread\(threads == 1 ? "" : "s") (OpenBLAS and the runtime pool alike)",
         "method: \(warmup) warm-up round\(warmup == 1 ? "" : "s"), then the median of \(repeats) run\(repeats == 1 ? "" : "s") per side, sides alternating (naive, fused, naive, …)"]
    }

    var fusedNote: String? {
        fusedAvailable ? nil : "fused backend: not available in this build; its columns show n/a"
    }
}

extension MachinePeak {
    var line: String {
        "peak: OpenBLAS sgemm \(sgemmSize)³ \(formatRate(sgemmGFlops)) GFLOP/s; memory read \(formatRate(bandwidthGBs)) GB/s (\(formatBytes(bandwidthBytes)) summed)"
    }
}

extension KernelReport {
    /// The terminal table.
    public var text: String {
        var lines = ["tfc bench kernels: \(run.model) (\(run.spec)), prefill T=\(seq), attention at L=\(contexts.map(String.init).joined(separator: ","))"]
        lines += run.headerLines
        lines[lines.count - 1] += "; caches flushed before each run"
        lines.append(peak.line + (run.quick ? "  [--quick: small sizes, not the machine's peak]" : ""))
        if let note = run.fusedNote { lines.append(note) }
        lines.append("")
        var table = TextTable([("kernel", .left), ("phase", .left), ("shape", .left), ("side", .left), ("median", .right),
                               ("min", .right), ("max", .right), ("GFLOP/s", .right), ("GB/s", .right), ("% bound", .right),
                               ("speedup", .right)] + (hasFormats ? [("vs f32", .right)] : []))
        for (index, r) in results.enumerated() {
            if index > 0 { table.gap() }
            let k = r.kernel
            let fusedSide = k.weightFormat == .f32 && !hasFormats ? "fused" : "fused \(k.weightFormat)"
            let ratio = hasFormats ? [k.weightFormat == .f32 ? "" : formatSpeedup(ratioToF32(r))] : []
            func cells(_ s: Summary?) -> [String] {
                guard let s else { return ["n/a", "", "", "", "", ""] }
                let bound = formatPercent(r.percentOfBound(s, peak: peak)) + (k.bound == .compute ? " cpu" : " mem")
                return [formatSeconds(s.median), formatSeconds(s.min), formatSeconds(s.max),
                        r.gflops(s).map { formatRate($0) } ?? "—", formatRate(r.gbs(s)), bound]
            }
            table.add([k.name, k.phase.rawValue, k.shape, "naive"] + cells(r.naive))
            let failed = r.fused == nil && r.fusedError != nil
            table.add(["", "", "", fusedSide] + (failed ? ["error (below)", "", "", "", "", ""] : cells(r.fused)) + [formatSpeedup(r.speedup)] + ratio)
        }
        lines.append(table.text)
        lines.append("")
        lines.append("speedup = naive median ÷ fused median (>1: fused is faster). % bound: of the sgemm peak (cpu) or of the memory bandwidth (mem), by the kernel's minimum traffic.")
        // Each case's % uses the probe run between its own runs; the spread over cases is shown.
        func probeRange(_ bound: Bound) -> String? {
            let medians = results.filter { $0.kernel.bound == bound }.compactMap { $0.boundProbeRates?.median }
            guard let low = medians.min(), let high = medians.max() else { return nil }
            return String(format: "%.1f–%.1f", low, high)
        }
        let ranges = [probeRange(.compute).map { "sgemm \($0) GFLOP/s" }, probeRange(.bandwidth).map { "read \($0) GB/s" }].compactMap { $0 }
        if !ranges.isEmpty {
            lines.append("bound: the median of the start's sgemm (cpu) or read (mem) run again after the sides in each round of the case (\(ranges.joined(separator: ", ")) over the cases), not the peak above.")
        }
        if hasFormats {
            lines.append("vs f32 = fused f32 median ÷ this format's fused median, same case, same run. Weight bytes: f32 4, bf16 2, int8 1 + a 2-byte (bf16) scale per 32 along the depth; the naive side is f32 on the f32 weights.")
        }
        for r in results {
            let format = r.kernel.weightFormat == .f32 ? "" : " \(r.kernel.weightFormat)"
            if let error = r.fusedError { lines.append("fused\(format) \(r.kernel.name) \(r.kernel.phase.rawValue): \(error)") }
            let tolerance = Self.differenceWarning[r.kernel.weightFormat] ?? 1e-3
            if let d = r.difference, !(d <= tolerance) {
                lines.append(String(format: "warning: fused%@ %@ %@ differs from naive by %.2g (relative, above %.0e)", format, r.kernel.name, r.kernel.phase.rawValue, d, tolerance))
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension ModelReport {
    /// The terminal table.
    public var text: String {
        let r = result
        var lines = ["tfc bench model: \(run.model) (\(run.spec)), weights \(weights)"]
        lines += run.headerLines
        lines.append(peak.line + (run.quick ? "  [--quick: small sizes, not the machine's peak]" : ""))
        if let note = run.fusedNote { lines.append(note) }
        if let label = r.fusedLabel, r.otherFused.isEmpty { lines.append("fused code: \(label)") }
        lines.append("")
        var table = TextTable([("phase", .left), ("side", .left), ("tokens/s", .right), ("GFLOP/s", .right), ("% bound", .right),
                               ("median", .right), ("min", .right), ("max", .right), ("speedup", .right)])
        func prefill(_ s: Summary?) -> [String] {
            guard let s else { return ["n/a"] }
            return [formatRate(r.prefillTokensPerSecond(s)), formatRate(r.prefillGFlops(s)),
                    formatPercent(r.prefillGFlops(s).map { 100 * $0 / r.boundSgemmGFlops(peak) }) + " cpu",
                    formatSeconds(s.median), formatSeconds(s.min), formatSeconds(s.max)]
        }
        func decode(_ s: Summary?, bytesPerWeight: Double = 4, bytesPerKV: Double = 4) -> [String] {
            guard let s else { return ["n/a"] }
            let bound = r.decodeBound(peak, bytesPerWeight: bytesPerWeight, bytesPerKV: bytesPerKV)
            return [formatRate(r.decodeTokensPerSecond(s)), formatRate(r.decodeGFlops(s)),
                    formatPercent(r.decodeTokensPerSecond(s).map { 100 * $0 / bound }) + " mem",
                    formatSeconds(s.median), formatSeconds(s.min), formatSeconds(s.max)]
        }
        func pad(_ cells: [String]) -> [String] { cells + Array(repeating: "", count: 6 - cells.count) }
        table.add(["prefill T=\(r.seq)", "naive"] + prefill(r.prefillNaive))
        // Sides are named by their vector target when more than one fused side ran.
        let fusedName = r.otherFused.isEmpty ? "fused" : r.fusedLabel.map { "fused \($0)" } ?? "fused"
        table.add(["", fusedName] + pad(prefill(r.prefillFused)) + [formatSpeedup(r.prefillSpeedup)])
        for v in r.otherFused {
            table.add(["", "fused \(v.label)"] + pad(prefill(v.prefill)) + [formatSpeedup(speedup(naive: r.prefillNaive, fused: v.prefill))])
        }
        table.gap()
        table.add(["decode \(r.decodeTokens) after \(r.seq)", "naive"] + decode(r.decodeNaive))
        table.add(["", fusedName] + pad(decode(r.decodeFused, bytesPerWeight: r.fusedBytesPerWeight, bytesPerKV: r.fusedBytesPerKV)) + [formatSpeedup(r.decodeSpeedup)])
        for v in r.otherFused {
            table.add(["", "fused \(v.label)"] + pad(decode(v.decode, bytesPerWeight: v.bytesPerWeight, bytesPerKV: v.bytesPerKV)) + [formatSpeedup(speedup(naive: r.decodeNaive, fused: v.decode))])
        }
        lines.append(table.text)
        lines.append("")
        lines.append("compile (\(fusedName)): " + (r.compileSeconds.map { String(format: "%.3f s", $0) } ?? "n/a")
                     + r.otherFused.map { v in ", fused \(v.label): " + (v.compileSeconds.map { String(format: "%.3f s", $0) } ?? "n/a") }.joined())
        for v in r.otherFused {
            // The first fused side against this one, ratio of medians (>1: the first is faster).
            if let pf = r.prefillFused, let pv = v.prefill, let df = r.decodeFused, let dv = v.decode {
                lines.append(String(format: "%@ vs fused %@: prefill %.2f×, decode %.2f× (ratio of medians, >1: %@ is faster)",
                                    fusedName, v.label, pv.median / pf.median, dv.median / df.median, fusedName))
            }
            if let error = v.error { lines.append("fused \(v.label) failed: \(error)") }
        }
        lines.append("prefill: \(formatRate(r.prefillFlops / 1e9)) GFLOP for \(r.seq) tokens; % bound is of the sgemm peak.")
        if let g = r.prefillSgemmGFlops, let runs = r.prefillSgemm?.count {
            // The prefill % uses the sgemm of the prefill runs' own moments; the start's is shown too.
            lines.append(String(format: "prefill peak: sgemm %d³ between the prefill runs, median %.1f GFLOP/s (%.1f–%.1f over %d runs), used by every prefill %% here; the %.1f GFLOP/s measured at the start (best of its runs) would make the first fused side %@ of peak.",
                                r.prefillSgemmSize, g.median, g.min, g.max, runs, peak.sgemmGFlops,
                                formatPercent(r.prefillGFlops(r.prefillFused).map { 100 * $0 / peak.sgemmGFlops })))
        }
        lines.append(String(format: "decode: times cover the %d single-token steps only; each must read %.1f MiB (weights + KV cache), so the bandwidth allows %.1f tokens/s.",
                            r.decodeTokens, r.decodeBytesPerToken / 1_048_576, r.decodeBound(peak)))
        if let b = r.decodeBandwidthGBs, let reads = r.decodeBandwidth?.count {
            // The bounds use the bandwidth of the decode runs' own moments; the start's is shown too.
            let startBound = peak.bandwidthGBs * 1e9 / r.decodeBytesPerToken
            lines.append(String(format: "decode bandwidth: memory read between the decode runs, median %.1f GB/s (%.1f–%.1f over %d reads), used by every decode bound here; the %.1f GB/s measured at the start (best of its reads) would allow %.1f tokens/s.",
                                b.median, b.min, b.max, reads, peak.bandwidthGBs, startBound))
        }
        // One line per narrower storage: weight bytes, then KV-cache bytes (2: a bf16 cache).
        let storages = [[r.fusedBytesPerWeight, r.fusedBytesPerKV]] + r.otherFused.map { [$0.bytesPerWeight, $0.bytesPerKV] }
        for s in Set(storages).filter({ $0 != [4, 4] }).sorted(by: { ($0[1], $0[0]) > ($1[1], $1[0]) }) {
            let cache = s[1] == 4 ? "" : String(format: " and a %.0f-byte KV cache", s[1])
            lines.append(String(format: "decode with %g-byte weights%@: each step reads %.1f MiB, so the bandwidth allows %.1f tokens/s (the %% bound of those sides).",
                                s[0], cache, r.decodeBytesPerToken(bytesPerWeight: s[0], bytesPerKV: s[1]) / 1_048_576,
                                r.decodeBound(peak, bytesPerWeight: s[0], bytesPerKV: s[1])))
        }
        if let error = r.fusedError { lines.append("fused backend failed: \(error)") }
        // --profile: every profiled fused side in one table, the first side's ratio to the others.
        // Then the decode steps likewise, against the timed decode medians per step.
        func profileTable(_ first: (KernelProfile?, Double?), _ other: (FusedVariant) -> (KernelProfile?, Double?), decodeTokens: Int? = nil) {
            let profiled = ([(r.fusedLabel ?? "fused", first.0, first.1)] + r.otherFused.map { ($0.label, other($0).0, other($0).1) })
                .compactMap { label, profile, median in profile.map { (label, $0, median) } }
            guard !profiled.isEmpty else { return }
            lines.append("")
            lines.append(KernelProfile.table(profiled.map(\.1), labels: profiled.map(\.0), prefillMedians: profiled.map(\.2), decodeTokens: decodeTokens))
        }
        profileTable((r.prefillProfile, r.prefillFused?.median)) { ($0.prefillProfile, $0.prefill?.median) }
        let perStep = { (s: Summary?) in s.map { $0.median / Double(r.decodeTokens) } }
        profileTable((r.decodeProfile, perStep(r.decodeFused)), { ($0.decodeProfile, perStep($0.decode)) }, decodeTokens: r.decodeTokens)
        return lines.joined(separator: "\n")
    }
}
