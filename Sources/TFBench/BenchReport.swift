import Foundation
import TFCodegen

/// What every report says about the run itself.
public struct BenchRun: Sendable {
    /// The spec path as given, and the model's name in it.
    public var spec: String
    public var model: String
    public var cpu: String
    public var threads: Int
    public var repeats: Int
    public var warmup: Int
    /// Small peak measurements (tests); the peak figures are then not the machine's.
    public var quick: Bool
    public var version: String
    /// ISO 8601, UTC.
    public var date: String
    /// Whether a fused side was plugged in at all.
    public var fusedAvailable: Bool

    public init(spec: String, model: String, cpu: String = Machine.cpuName, threads: Int, repeats: Int, warmup: Int,
                quick: Bool, version: String, date: Date = Date(), fusedAvailable: Bool) {
        self.spec = spec; self.model = model; self.cpu = cpu; self.threads = threads; self.repeats = repeats
        self.warmup = warmup; self.quick = quick; self.version = version; self.fusedAvailable = fusedAvailable
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        self.date = formatter.string(from: date)
    }
}

/// `tfc bench kernels`: the run, the machine's peak and every kernel's figures.
public struct KernelReport: Sendable {
    public var run: BenchRun
    public var peak: MachinePeak
    public var seq: Int
    public var contexts: [Int]
    public var results: [KernelResult]

    public init(run: BenchRun, peak: MachinePeak, seq: Int, contexts: [Int], results: [KernelResult]) {
        self.run = run; self.peak = peak; self.seq = seq; self.contexts = contexts; self.results = results
    }

    /// Whether any case ran with weights in another format than f32.
    var hasFormats: Bool { results.contains { $0.kernel.weightFormat != .f32 } }

    /// Above this relative difference from the naive (f32) output a warning is printed: f32 is
    /// the fused kernels' own rounding; bf16 and int8 add the rounding of their weights (and, on
    /// `vdpbf16ps` and int8 paths, of the activations).
    static let differenceWarning: [WeightFormat: Double] = [.f32: 1e-3, .bf16: 3e-2, .int8: 1e-1]

    /// Fused f32 median ÷ this case's fused median (>1: the format is faster), nil for an f32
    /// case or a missing side.
    public func ratioToF32(_ r: KernelResult) -> Double? {
        guard r.kernel.weightFormat != .f32, let fused = r.fused,
              let f32 = results.first(where: { $0.kernel.weightFormat == .f32 && $0.kernel.name == r.kernel.name
                                               && $0.kernel.phase == r.kernel.phase && $0.kernel.shape == r.kernel.shape })?.fused
        else { return nil }
        return f32.median / fused.median
    }
}

/// `tfc bench model`: the run, the machine's peak and the end-to-end figures.
public struct ModelReport: Sendable {
    public var run: BenchRun
    public var peak: MachinePeak
    /// "random (seed N)" or the weights file.
    public var weights: String
    public var result: ModelResult

    public init(run: BenchRun, peak: MachinePeak, weights: String, result: ModelResult) {
        self.run = run; self.peak = peak; self.weights = weights; self.result = result
    }
}

/// The `schema` value of every report; bump it when a key changes meaning or goes away.
public let benchSchema = "tfc-bench/1"

// MARK: JSON (the schema is written down in docs/bench.md)

/// A JSON number, or null for a missing or non-finite value.
func number(_ x: Double?) -> Any {
    guard let x, x.isFinite else { return NSNull() }
    return x
}

func string(_ s: String?) -> Any { s.map { $0 as Any } ?? NSNull() }

extension BenchRun {
    func json(kind: String) -> [String: Any] {
        ["schema": benchSchema, "kind": kind, "tfc_version": version, "date": date, "spec": spec, "model": model,
         "cpu": cpu, "threads": threads, "repeat": repeats, "warmup": warmup, "quick": quick, "fused_available": fusedAvailable]
    }
}

extension MachinePeak {
    var json: [String: Any] {
        ["sgemm_gflops": number(sgemmGFlops), "sgemm_size": sgemmSize,
         "bandwidth_gbs": number(bandwidthGBs), "bandwidth_bytes": bandwidthBytes]
    }
}

/// Median, min, max seconds and run count of one side (all null when the side is missing).
func timings(_ s: Summary?) -> [String: Any] {
    ["median_s": number(s?.median), "min_s": number(s?.min), "max_s": number(s?.max),
     "runs": s.map { $0.count as Any } ?? NSNull()]
}

extension KernelReport {
    public var json: [String: Any] {
        var object = run.json(kind: "kernels")
        object["peak"] = peak.json
        object["seq"] = seq
        object["contexts"] = contexts
        object["kernels"] = results.map { r -> [String: Any] in
            func side(_ s: Summary?) -> [String: Any] {
                timings(s).merging(["gflops": number(r.gflops(s)), "gbs": number(r.gbs(s)),
                                    "percent_of_bound": number(r.percentOfBound(s, peak: peak))]) { $1 }
            }
            let k = r.kernel
            return ["name": k.name, "class": k.kernelClass.rawValue, "phase": k.phase.rawValue, "shape": k.shape,
                    "rows": k.rows, "position": k.position, "flops": number(k.flops), "bytes": number(k.bytes),
                    "bound": k.bound.rawValue, "naive": side(r.naive), "fused": side(r.fused),
                    "speedup": number(r.speedup), "difference": number(r.difference), "fused_error": string(r.fusedError),
                    "weights_format": k.weightFormat.rawValue, "vs_f32": number(ratioToF32(r)),
                    "bound_between_runs": r.boundProbeRates.map { b -> Any in
                        ["median": number(b.median), "min": number(b.min), "max": number(b.max), "runs": r.boundProbe?.count ?? 0,
                         "unit": k.bound == .compute ? "gflops" : "gbs"] as [String: Any]
                    } ?? NSNull()]
        }
        return object
    }
}

extension ModelReport {
    public var json: [String: Any] {
        let r = result
        var object = run.json(kind: "model")
        object["peak"] = peak.json
        object["weights"] = weights
        func prefill(_ s: Summary?) -> [String: Any] {
            timings(s).merging(["tokens_per_s": number(r.prefillTokensPerSecond(s)), "gflops": number(r.prefillGFlops(s)),
                                "percent_of_peak": number(r.prefillGFlops(s).map { 100 * $0 / r.boundSgemmGFlops(peak) })]) { $1 }
        }
        func decode(_ s: Summary?, bytesPerWeight: Double = 4, bytesPerKV: Double = 4) -> [String: Any] {
            let bound = r.decodeBound(peak, bytesPerWeight: bytesPerWeight, bytesPerKV: bytesPerKV)
            return timings(s).merging(["tokens_per_s": number(r.decodeTokensPerSecond(s)), "gflops": number(r.decodeGFlops(s)),
                                       "percent_of_bound": number(r.decodeTokensPerSecond(s).map { 100 * $0 / bound })]) { $1 }
        }
        object["prefill"] = ["seq": r.seq, "flops": number(r.prefillFlops),
                             "sgemm_gflops": number(r.boundSgemmGFlops(peak)),
                             "sgemm_between_runs": sgemmBetweenRunsJSON(r.prefillSgemmGFlops, runs: r.prefillSgemm?.count, size: r.prefillSgemmSize),
                             "naive": prefill(r.prefillNaive),
                             "fused": prefill(r.prefillFused), "speedup": number(r.prefillSpeedup),
                             "fused_profile": r.prefillProfile.map { $0.json as Any } ?? NSNull()] as [String: Any]
        object["decode"] = ["prompt": r.seq, "tokens": r.decodeTokens, "flops": number(r.decodeFlops),
                            "bytes_per_token": number(r.decodeBytesPerToken), "bound_tokens_per_s": number(r.decodeBound(peak)),
                            "bandwidth_gbs": number(r.boundBandwidthGBs(peak)),
                            "bandwidth_between_runs": r.decodeBandwidthGBs.map { b -> Any in
                                ["median_gbs": number(b.median), "min_gbs": number(b.min), "max_gbs": number(b.max),
                                 "reads": r.decodeBandwidth?.count ?? 0, "bytes": r.decodeBandwidthBytes] as [String: Any]
                            } ?? NSNull(),
                            "naive": decode(r.decodeNaive), "fused": decode(r.decodeFused, bytesPerWeight: r.fusedBytesPerWeight, bytesPerKV: r.fusedBytesPerKV),
                            "fused_bytes_per_weight": r.fusedBytesPerWeight, "fused_bytes_per_kv": r.fusedBytesPerKV,
                            "speedup": number(r.decodeSpeedup),
                            "fused_profile": r.decodeProfile.map { $0.json as Any } ?? NSNull()] as [String: Any]
        object["compile_s"] = number(r.compileSeconds)
        object["fused_error"] = string(r.fusedError)
        if let label = r.fusedLabel { object["fused_target"] = label }
        if !r.otherFused.isEmpty {
            object["other_fused"] = r.otherFused.map { v -> [String: Any] in
                ["label": v.label, "prefill": prefill(v.prefill), "decode": decode(v.decode, bytesPerWeight: v.bytesPerWeight, bytesPerKV: v.bytesPerKV),
                 "bytes_per_weight": v.bytesPerWeight, "bytes_per_kv": v.bytesPerKV, "prefill_profile": v.prefillProfile.map { $0.json as Any } ?? NSNull(),
                 "decode_profile": v.decodeProfile.map { $0.json as Any } ?? NSNull(),
                 "compile_s": number(v.compileSeconds), "error": string(v.error)]
            }
        }
        return object
    }
}

/// `{"median_gflops", "min_gflops", "max_gflops", "runs", "size"}` of the sgemm products run between
/// a bench's timed runs, or null when none were.
func sgemmBetweenRunsJSON(_ g: (median: Double, min: Double, max: Double)?, runs: Int?, size: Int) -> Any {
    g.map { g -> Any in
        ["median_gflops": number(g.median), "min_gflops": number(g.min), "max_gflops": number(g.max),
         "runs": runs ?? 0, "size": size] as [String: Any]
    } ?? NSNull()
}

extension KernelProfile {
    /// `[{"kind", "calls", "seconds"}]`, seconds per prefill or per decode step (median over the runs).
    var json: [[String: Any]] { rows.map { ["kind": $0.kind, "calls": $0.calls, "seconds": number($0.seconds)] } }
}

/// Pretty-printed JSON with sorted keys and a final newline.
public func jsonText(_ object: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self) + "\n"
}
