import Foundation
import TFCodegen
import TFIR
import TFRuntime

/// Makes a ready-to-run executor for the model bench. For the fused side, everything the factory
/// does (passes, code generation, JIT, weight packing) counts as compile time.
public typealias ExecutorFactory = () throws -> any ModelExecutor

/// One model measured end to end on both sides.
public struct ModelResult: Sendable {
    /// Prompt length: the prefill's tokens, and the context the decode starts from.
    public var seq: Int
    /// Tokens decoded one at a time after the prompt.
    public var decodeTokens: Int
    public var prefillFlops: Double
    /// FLOPs of all decode steps together.
    public var decodeFlops: Double
    /// Bytes a decode step must read at least: every weight once plus the KV caches (averaged
    /// over the decoded positions).
    public var decodeBytesPerToken: Double
    /// Parameters read per decode step (counted at 4 bytes each in `decodeBytesPerToken`).
    public var weightCount: Double = 0
    /// Bytes one stored weight takes on the first fused side (4: f32, 2: bf16); its bound uses it.
    public var fusedBytesPerWeight: Double = 4
    /// The KV caches' part of `decodeBytesPerToken` (f32 caches).
    public var kvCacheBytesPerToken: Double = 0
    /// Bytes one cached key or value element takes on the first fused side (4: f32, 2: bf16).
    public var fusedBytesPerKV: Double = 4
    /// Seconds per prefill of `seq` tokens.
    public var prefillNaive: Summary
    public var prefillFused: Summary?
    /// Seconds per run of `decodeTokens` single-token steps (the prompt before them is untimed).
    public var decodeNaive: Summary
    public var decodeFused: Summary?
    /// Wall time of the fused factory call.
    public var compileSeconds: Double?
    /// Why the fused side is missing, when making it failed.
    public var fusedError: String?
    /// What the fused side runs (e.g. its vector target, `avx512`), when the run names it.
    public var fusedLabel: String? = nil
    /// More fused sides timed in the same alternation (e.g. the AVX2 code next to the AVX-512).
    public var otherFused: [FusedVariant] = []
    /// The first fused side's prefill by kernel kind (`--profile`), nil without it.
    public var prefillProfile: KernelProfile? = nil
    /// Its decode step by kernel kind (`--profile`), nil without it.
    public var decodeProfile: KernelProfile? = nil

    public func prefillTokensPerSecond(_ s: Summary?) -> Double? { s.map { Double(seq) / $0.median } }
    public func prefillGFlops(_ s: Summary?) -> Double? { s.map { prefillFlops / $0.median / 1e9 } }
    public func decodeTokensPerSecond(_ s: Summary?) -> Double? { s.map { Double(decodeTokens) / $0.median } }
    public func decodeGFlops(_ s: Summary?) -> Double? { s.map { decodeFlops / $0.median / 1e9 } }
    public var prefillSpeedup: Double? { speedup(naive: prefillNaive, fused: prefillFused) }
    public var decodeSpeedup: Double? { speedup(naive: decodeNaive, fused: decodeFused) }
    /// The memory bandwidth sampled between the decode runs: one read of a `BandwidthProbe` per
    /// round, in the decode alternation (seconds per read of `decodeBandwidthBytes`); nil when the
    /// bench had no probe.
    public var decodeBandwidth: Summary? = nil
    public var decodeBandwidthBytes: Int = 0
    /// GB/s of the median, slowest and fastest of those reads.
    public var decodeBandwidthGBs: (median: Double, min: Double, max: Double)? {
        decodeBandwidth?.gigaRates(Double(decodeBandwidthBytes))
    }
    /// The bandwidth the decode bounds use: the median of the reads between the decode runs (the
    /// same moments as the decode medians) when sampled, else the peak measured at the start.
    public func boundBandwidthGBs(_ peak: MachinePeak) -> Double { decodeBandwidthGBs?.median ?? peak.bandwidthGBs }

    /// The sgemm peak sampled between the prefill runs: one product of a `SgemmProbe` per round,
    /// in the prefill alternation (seconds per product of `prefillSgemmFlops`); nil when the bench
    /// had no probe.
    public var prefillSgemm: Summary? = nil
    public var prefillSgemmFlops: Double = 0
    /// n of that probe's n×n×n product (0 without one).
    public var prefillSgemmSize: Int = 0
    /// GFLOP/s of the median, slowest and fastest of those products.
    public var prefillSgemmGFlops: (median: Double, min: Double, max: Double)? {
        prefillSgemm?.gigaRates(prefillSgemmFlops)
    }
    /// The peak the prefill % uses: the median of the products between the prefill runs (the same
    /// moments as the prefill medians) when sampled, else the peak measured at the start.
    public func boundSgemmGFlops(_ peak: MachinePeak) -> Double { prefillSgemmGFlops?.median ?? peak.sgemmGFlops }

    /// Decode tokens/s the memory bandwidth allows.
    public func decodeBound(_ peak: MachinePeak) -> Double { decodeBound(peak, bytesPerWeight: 4) }
    /// The bound for a side storing weights at `bytesPerWeight` bytes each (bf16 reads half).
    /// The bound for a side storing weights at `bytesPerWeight` bytes each and cached keys and
    /// values at `bytesPerKV` (a bf16 cache reads half).
    public func decodeBound(_ peak: MachinePeak, bytesPerWeight: Double, bytesPerKV: Double = 4) -> Double {
        boundBandwidthGBs(peak) * 1e9 / decodeBytesPerToken(bytesPerWeight: bytesPerWeight, bytesPerKV: bytesPerKV)
    }
    public func decodeBytesPerToken(bytesPerWeight: Double, bytesPerKV: Double = 4) -> Double {
        decodeBytesPerToken + (bytesPerWeight - 4) * weightCount + (bytesPerKV - 4) / 4 * kvCacheBytesPerToken
    }
}

/// A further fused side of a model bench: its label and timings.
public struct FusedVariant: Sendable {
    public var label: String
    public var prefill: Summary?
    public var decode: Summary?
    public var compileSeconds: Double?
    public var error: String?
    /// Bytes one stored weight takes on this side (4: f32, 2: bf16).
    public var bytesPerWeight: Double = 4
    /// This side's prefill by kernel kind (`--profile`).
    public var prefillProfile: KernelProfile? = nil
    /// This side's decode step by kernel kind (`--profile`).
    public var decodeProfile: KernelProfile? = nil
    /// Bytes one cached key or value element takes on this side (4: f32, 2: bf16).
    public var bytesPerKV: Double = 4
}

/// Prefill (tokens/s) and decode with the KV cache (tokens/s), both sides alternating.
public struct ModelBench {
    public var seq: Int
    public var decodeTokens: Int
    public var alternation: Alternation
    public var seed: UInt64
    /// After the timed prefills (decodes), profile each fused side's prefill (decode step) by
    /// kernel kind (`--repeat` untimed-alternation runs per side, each kernel call timed alone).
    public var profile: Bool

    public init(seq: Int, decodeTokens: Int, repeats: Int, warmup: Int, seed: UInt64 = 0, profile: Bool = false) {
        self.seq = seq; self.decodeTokens = decodeTokens; self.seed = seed; self.profile = profile
        alternation = Alternation(warmup: warmup, repeats: repeats)
    }

    /// `seq >= 1`, `decodeTokens >= 1`, and `seq + decodeTokens` must fit the context (checked by the caller).
    /// `bandwidth`: read once per decode round, as one more side of the decode alternation;
    /// `sgemm`: run once per prefill round, likewise.
    /// `others`: more fused sides (label, bytes per stored weight and per cached element, factory),
    /// timed in the same alternation as the first. `fusedBytesPerWeight`, `fusedBytesPerKV`: the
    /// first fused side's (for its bound).
    public func run(graph: Graph, naive makeNaive: ExecutorFactory, fused makeFused: ExecutorFactory?, fusedLabel: String? = nil,
                    fusedBytesPerWeight: Double = 4, fusedBytesPerKV: Double = 4,
                    others: [(label: String, bytesPerWeight: Double, bytesPerKV: Double, make: ExecutorFactory)] = [],
                    bandwidth: BandwidthProbe? = nil, sgemm: SgemmProbe? = nil, progress: ProgressLine = ProgressLine()) throws -> ModelResult {
        precondition(seq >= 1 && decodeTokens >= 1 && seq + decodeTokens <= graph.config.context, "checked by the caller")
        let vocab = graph.config.vocab
        var state = tfc_mix64(seed &+ 7)
        let prompt = (0..<seq).map { _ in Int32(tfc_rng_next(&state) % UInt64(vocab)) }
        let continuation = (0..<decodeTokens).map { _ in Int32(tfc_rng_next(&state) % UInt64(vocab)) }

        progress.update(step: 1, of: 3, "naive: setting up")
        let naive = try makeNaive()
        var fused: (any ModelExecutor)?
        var compile: Double?
        var error: String?
        if let makeFused {
            progress.update(step: 1, of: 3, "fused: compiling")
            let start = monotonicSeconds()
            do {
                fused = try makeFused()
                compile = monotonicSeconds() - start
            } catch let e { error = "\(e)" }
        }
        var variants: [FusedVariant] = []
        var otherExecutors: [any ModelExecutor] = []
        for other in others {
            progress.update(step: 1, of: 3, "fused \(other.label): compiling")
            let start = monotonicSeconds()
            var v = FusedVariant(label: other.label)
            v.bytesPerWeight = other.bytesPerWeight
            v.bytesPerKV = other.bytesPerKV
            do {
                otherExecutors.append(try other.make())
                v.compileSeconds = monotonicSeconds() - start
            } catch let e { v.error = "\(e)" }
            variants.append(v)
        }
        let executors = [naive] + (fused.map { [$0] } ?? []) + otherExecutors

        // Untimed before each run: BLAS threads up for the naive side, parked for the fused ones
        // (see `BLASThreads`).
        let blas: [() -> Void] = [BLASThreads.wake] + Array(repeating: BLASThreads.park, count: executors.count - 1)
        let prefillSides: [() -> Double] = zip(executors, blas).map { executor, blas in
            {
                blas()
                executor.reset()
                let start = monotonicSeconds()
                _ = executor.forward(prompt)
                return monotonicSeconds() - start
            }
        }
        // The sgemm run last in each round, BLAS threads up as for the naive side.
        let sgemmSide: [() -> Double] = sgemm.map { probe in [{ BLASThreads.wake(); return probe.run() }] } ?? []
        var prefill = alternation.run(prefillSides + sgemmSide, step: { done, total in
            progress.update(step: 2, of: 3, "prefill T=\(seq)", detail: "run \(done)/\(total)")
        })
        let sgemmRuns = sgemm != nil ? prefill.removeLast() : nil
        var profiles: [KernelProfile?] = []
        if profile {
            for (i, executor) in executors.enumerated().dropFirst() {
                progress.update(step: 2, of: 3, "prefill T=\(seq)", detail: "profiling fused side \(i)")
                profiles.append(try KernelProfile.measure(executor, prompt: prompt, runs: alternation.repeats))
            }
        }
        let decodeSides: [() -> Double] = zip(executors, blas).map { executor, blas in
            {
                executor.reset()
                _ = executor.forward(prompt)
                blas()
                let start = monotonicSeconds()
                for token in continuation { _ = executor.forward([token]) }
                return monotonicSeconds() - start
            }
        }
        // The bandwidth read last in each round, BLAS threads parked as for a fused side.
        let probeSide: [() -> Double] = bandwidth.map { probe in [{ BLASThreads.park(); return probe.read() }] } ?? []
        var decode = alternation.run(decodeSides + probeSide, step: { done, total in
            progress.update(step: 3, of: 3, "decode \(decodeTokens) tokens after \(seq)", detail: "run \(done)/\(total)")
        })
        let bandwidthReads = bandwidth != nil ? decode.removeLast() : nil
        var decodeProfiles: [KernelProfile?] = []
        if profile {
            for (i, executor) in executors.enumerated().dropFirst() {
                progress.update(step: 3, of: 3, "decode \(decodeTokens) tokens after \(seq)", detail: "profiling fused side \(i)")
                decodeProfiles.append(try KernelProfile.measureDecode(executor, prompt: prompt, continuation: continuation, runs: alternation.repeats))
            }
        }
        progress.finish()

        var decodeFlops = 0.0, cacheBytes = 0.0
        let cacheWidth = graph.instructions.reduce(0) { sum, inst in
            if case .attention(let a) = inst.op { return sum + a.heads * a.headDim } else { return sum }
        }
        for p in seq..<(seq + decodeTokens) {
            decodeFlops += graph.flopsPerToken(atPosition: p)
            cacheBytes += 2 * 4 * Double(cacheWidth) * Double(p + 1)
        }
        let bytesPerToken = 4 * Double(graph.parameterCount) + cacheBytes / Double(decodeTokens)
        // Timings of the other sides, in executor order after naive and the first fused side.
        var next = 1 + (fused != nil ? 1 : 0)
        for i in variants.indices where variants[i].error == nil {
            variants[i].prefill = prefill[next]
            variants[i].decode = decode[next]
            if profile {
                variants[i].prefillProfile = profiles[next - 1]
                variants[i].decodeProfile = decodeProfiles[next - 1]
            }
            next += 1
        }
        var result = ModelResult(seq: seq, decodeTokens: decodeTokens, prefillFlops: graph.prefillFlops(tokens: seq),
                           decodeFlops: decodeFlops, decodeBytesPerToken: bytesPerToken,
                           prefillNaive: prefill[0], prefillFused: prefill.count > 1 ? prefill[1] : nil,
                           decodeNaive: decode[0], decodeFused: decode.count > 1 ? decode[1] : nil,
                           compileSeconds: compile, fusedError: error)
        result.fusedLabel = fusedLabel
        result.weightCount = Double(graph.parameterCount)
        result.fusedBytesPerWeight = fusedBytesPerWeight
        result.kvCacheBytesPerToken = cacheBytes / Double(decodeTokens)
        result.fusedBytesPerKV = fusedBytesPerKV
        result.otherFused = variants
        result.decodeBandwidth = bandwidthReads
        result.decodeBandwidthBytes = bandwidth?.bytes ?? 0
        result.prefillSgemm = sgemmRuns
        result.prefillSgemmFlops = sgemm?.flops ?? 0
        result.prefillSgemmSize = sgemm?.size ?? 0
        if profile && fused != nil {
            result.prefillProfile = profiles[0]
            result.decodeProfile = decodeProfiles[0]
        }
        return result
    }
}
