import TFRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A reference BLAS to compare against (OpenBLAS in `tfc bench`): TFCodegen does not link
/// one itself, the caller passes closures over `cblas_sgemm`.
public struct ReferenceBLAS {
    public var name: String
    /// Sets the library's thread count (`openblas_set_num_threads`).
    public var setThreads: (Int) -> Void
    /// `C[m, n] = A[m, k] · B[n, k]ᵀ`, all row-major (cblas NoTrans, Trans).
    public var gemmNT: (_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) -> Void
    /// `C[m, n] = A[m, k] · B[k, n]`, all row-major (cblas NoTrans, NoTrans).
    public var gemmNN: (_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) -> Void

    public init(name: String, setThreads: @escaping (Int) -> Void,
                gemmNT: @escaping (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                gemmNN: @escaping (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        self.name = name
        self.setThreads = setThreads
        self.gemmNT = gemmNT
        self.gemmNN = gemmNN
    }
}

/// Kernel-level benchmarks of the code generator (called by `tfc bench`): GEMM against the
/// reference BLAS, fused Pattention against the naive composition (BLAS GEMM, a scalar libm
/// activation pass, BLAS GEMM), decode-time weight bandwidth against the machine's measured
/// read bandwidth, attention, and the compile time of a 150M model's kernel set.
public enum KernelBenchmark {
    public struct Options: Sendable {
        public var threads = 2
        /// Rows (tokens) of the prefill-shaped measurements.
        public var rows = 512
        public var dModel = 768
        /// Parameter tokens of the measured Pattention site (the 150M model's FFN).
        public var tokens = 3072
        public var heads = 12
        public var repetitions = 10
        /// Score / value GEMM schedules (nil: the defaults `GemmSchedule.choose` picks).
        public var schedule: GemmSchedule?
        public var valueSchedule: GemmSchedule?
        public var compileTime = true
        public init() {}
    }

    public struct Measurement: CustomStringConvertible, Sendable {
        public let name: String
        /// Best (minimum) time over the repetitions, and the median.
        public let seconds: Double
        public let median: Double
        public let gflops: Double?
        public let gbPerSecond: Double?
        public let note: String

        public var description: String {
            let pad = String(repeating: " ", count: max(1, 46 - name.count))
            var s = seconds < 1e-4
                ? "\(name)\(pad)\(fmt(seconds * 1e6, 2)) µs (median \(fmt(median * 1e6, 2)))"
                : "\(name)\(pad)\(fmt(seconds * 1e3, 3)) ms (median \(fmt(median * 1e3, 3)))"
            if let g = gflops { s += "  \(fmt(g, 1)) GFLOP/s" }
            if let b = gbPerSecond { s += "  \(fmt(b, 1)) GB/s" }
            if !note.isEmpty { s += "  \(note)" }
            return s
        }
    }

    static func fmt(_ x: Double, _ digits: Int) -> String {
        let p = pow(10.0, Double(digits))
        let v = (x * p).rounded() / p
        var s = "\(v)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        }
        return s
    }

    static func time(_ reps: Int, _ body: () -> Void) -> (Double, Double) {
        body()  // warm-up (page faults, JIT lookup, caches)
        var ts: [Double] = []
        for _ in 0..<max(1, reps) {
            let t0 = monotonicSeconds()
            body()
            ts.append(monotonicSeconds() - t0)
        }
        ts.sort()
        return (ts[0], ts[ts.count / 2])
    }

    /// Times `a` and `b` alternately (so both see the same machine load); (min, median) each.
    static func timePair(_ reps: Int, _ a: () -> Void, _ b: () -> Void) -> ((Double, Double), (Double, Double)) {
        a(); b()
        var ta: [Double] = [], tb: [Double] = []
        for _ in 0..<max(1, reps) {
            var t0 = monotonicSeconds()
            a()
            ta.append(monotonicSeconds() - t0)
            t0 = monotonicSeconds()
            b()
            tb.append(monotonicSeconds() - t0)
        }
        ta.sort(); tb.sort()
        return ((ta[0], ta[ta.count / 2]), (tb[0], tb[tb.count / 2]))
    }

    static func fill(_ b: AlignedBuffer, seed: UInt64, scale: Float) {
        var s = seed | 1
        for i in 0..<b.count {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            b[i] = (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    /// Runs every measurement, logging each line as it completes.
    public static func run(_ o: Options = Options(), reference: ReferenceBLAS? = nil, log: (String) -> Void = { print($0) }) throws -> [Measurement] {
        var results: [Measurement] = []
        func record(_ m: Measurement) { results.append(m); log(m.description) }
        let oldThreads = tfc_get_num_threads()
        tfc_set_num_threads(Int32(o.threads))
        reference?.setThreads(o.threads)
        defer { tfc_set_num_threads(oldThreads) }
        let T = o.rows, d = o.dModel, n = o.tokens, reps = o.repetitions
        log("host: \(TargetHost.host), LLVM \(TargetHost.llvmVersion), threads \(o.threads)" + (reference.map { ", reference \($0.name)" } ?? ""))

        let jit = try KernelJIT()
        let module = try KernelModule(name: "bench")
        let siteSpec = PattentionKernelSpec(dIn: d, site: PattentionSite(tokens: n, dOut: d), schedule: o.schedule)
        var pspec = siteSpec
        if let v = o.valueSchedule { pspec.valueSchedule = v }
        let fusedSym = module.addPattention(pspec)
        let scoreGemm = GemmKernelSpec(k: d, n: n, schedule: pspec.schedule, parallelism: .rows)
        let valueGemm = GemmKernelSpec(k: n, n: d, schedule: pspec.valueSchedule, parallelism: .rows)
        let scoreSym = module.addGemm(scoreGemm), valueSym = module.addGemm(valueGemm)
        let naiveSym = module.addNaiveActivation(n: n, tau: pspec.sites[0].tau)
        let bwSym = module.addBandwidthProbe()
        let attn = AttentionKernelSpec(heads: o.heads, headDim: d / o.heads, context: max(2048, T + 1))
        let attnSym = module.addAttention(attn)
        log("schedules: scores [\(pspec.schedule)] values [\(pspec.valueSchedule)]")
        let c0 = monotonicSeconds()
        try jit.add(module)
        let fused = CompiledKernel(name: fusedSym, entry: try jit.kernel(fusedSym))
        let gemmS = CompiledKernel(name: scoreSym, entry: try jit.kernel(scoreSym))
        let gemmV = CompiledKernel(name: valueSym, entry: try jit.kernel(valueSym))
        let naiveAct = CompiledKernel(name: naiveSym, entry: try jit.kernel(naiveSym))
        let bw = CompiledKernel(name: bwSym, entry: try jit.kernel(bwSym))
        let attention = CompiledKernel(name: attnSym, entry: try jit.kernel(attnSym))
        log("benchmark kernels compiled in \(fmt(monotonicSeconds() - c0, 2)) s")

        // Thread pool: the cost of one parallel region with trivial tasks.
        for count in [2, 64] {
            let calls = 20000
            let (pt, pm) = time(5) {
                for _ in 0..<calls { tfc_parallel_for({ _, _ in }, nil, Int64(count)) }
            }
            record(Measurement(name: "tfc_parallel_for, \(count) empty tasks", seconds: pt / Double(calls), median: pm / Double(calls),
                               gflops: nil, gbPerSecond: nil, note: "per call"))
        }

        // Read bandwidth: sum of a 256 MiB array.
        let big = AlignedBuffer(count: 64 << 20)
        fill(big, seed: 1, scale: 1)
        let partials = AlignedBuffer(count: (big.count >> 18) + 1)
        let (bwT, bwM) = time(reps) { bw([big.raw, partials.raw], rows: big.count) }
        let bandwidth = Double(big.count * 4) / bwT / 1e9
        record(Measurement(name: "read bandwidth (sum of 256 MiB)", seconds: bwT, median: bwM, gflops: nil, gbPerSecond: bandwidth, note: ""))

        let X = AlignedBuffer(count: T * d), K = AlignedBuffer(count: n * d), V = AlignedBuffer(count: n * d)
        fill(X, seed: 2, scale: 1); fill(K, seed: 3, scale: 0.05); fill(V, seed: 4, scale: 0.05)
        let Kp = pspec.keyLayout(0).packedTransposed(K.pointer), Vp = pspec.valueLayout(0).packed(V.pointer)
        let Ks = scoreGemm.weightLayout.packedTransposed(K.pointer)
        let Vs = PanelLayout(k: n, n: d, nr: valueGemm.schedule.nr).packed(V.pointer)
        let S = AlignedBuffer(count: T * n), Y = AlignedBuffer(count: T * d)
        let gemmFlops = 2.0 * Double(T) * Double(d) * Double(n)

        // GEMMs and fused Pattention, each timed alternately with its reference.
        func compare(_ name: String, flops: Double, ours: () -> Void, refName: String, theirs: (() -> Void)?, note: (Double, Double) -> String) {
            guard let theirs else {
                let (t, m) = time(reps, ours)
                record(Measurement(name: name + " tfc", seconds: t, median: m, gflops: flops / t / 1e9, gbPerSecond: nil, note: ""))
                return
            }
            let ((t, m), (rt, rm)) = timePair(reps, ours, theirs)
            record(Measurement(name: name + " tfc", seconds: t, median: m, gflops: flops / t / 1e9, gbPerSecond: nil, note: ""))
            record(Measurement(name: name + " " + refName, seconds: rt, median: rm, gflops: flops / rt / 1e9, gbPerSecond: nil, note: note(t, rt)))
        }
        let refName = reference?.name ?? ""
        compare("gemm X·Kᵀ \(T)x\(d)x\(n)", flops: gemmFlops, ours: { gemmS([X.raw, Ks.raw, S.raw], rows: T) }, refName: refName,
                theirs: reference.map { ref in { ref.gemmNT(T, n, d, X.pointer, K.pointer, S.pointer) } },
                note: { ours, theirs in "tfc reaches \(fmt(theirs / ours * 100, 0))% of \(refName)" })
        compare("gemm A·V \(T)x\(n)x\(d)", flops: gemmFlops, ours: { gemmV([S.raw, Vs.raw, Y.raw], rows: T) }, refName: refName,
                theirs: reference.map { ref in { ref.gemmNN(T, d, n, S.pointer, V.pointer, Y.pointer) } },
                note: { ours, theirs in "tfc reaches \(fmt(theirs / ours * 100, 0))% of \(refName)" })
        compare("pattention T=\(T) \(d)->\(n)->\(d) l2_norm_gelu", flops: 2 * gemmFlops,
                ours: { fused([X.raw, Kp.raw, Vp.raw, Y.raw], rows: T) }, refName: "naive (\(refName) + libm erff)",
                theirs: reference.map { ref in {
                    ref.gemmNT(T, n, d, X.pointer, K.pointer, S.pointer)
                    naiveAct([S.raw], rows: T)
                    ref.gemmNN(T, d, n, S.pointer, V.pointer, Y.pointer)
                } },
                note: { ours, theirs in "fused is \(fmt(theirs / ours, 2))x faster" })
        var t = 0.0, m = 0.0

        // Decode: T = 1 streams K and V once. Several copies of the weights, used in turn,
        // exceed the last-level cache so the weights come from DRAM as in a real model.
        let weightBytes = Double(Kp.count + Vp.count) * 4
        let copies = max(2, Int((96.0 * 1048576) / weightBytes) + 1)
        let kCopies = (0..<copies).map { _ in pspec.keyLayout(0).packedTransposed(K.pointer) }
        let vCopies = (0..<copies).map { _ in pspec.valueLayout(0).packed(V.pointer) }
        var turn = 0
        let decodeReps = max(copies * 3, reps * 10)
        (t, m) = time(decodeReps) {
            fused([X.raw, kCopies[turn].raw, vCopies[turn].raw, Y.raw], rows: 1)
            turn = (turn + 1) % copies
        }
        let gb = weightBytes / t / 1e9
        record(Measurement(name: "pattention decode T=1 (\(Int(weightBytes) >> 20) MiB weights, from DRAM)", seconds: t, median: m, gflops: nil, gbPerSecond: gb,
                           note: "\(fmt(gb / bandwidth * 100, 0))% of read bandwidth"))
        (t, m) = time(reps * 10) { fused([X.raw, Kp.raw, Vp.raw, Y.raw], rows: 1) }
        record(Measurement(name: "pattention decode T=1 (same weights, in L3)", seconds: t, median: m, gflops: nil, gbPerSecond: weightBytes / t / 1e9, note: ""))
        if let ref = reference {
            (t, m) = time(decodeReps) {
                ref.gemmNT(1, n, d, X.pointer, K.pointer, S.pointer)
                naiveAct([S.raw], rows: 1)
                ref.gemmNN(1, d, n, S.pointer, V.pointer, Y.pointer)
            }
            record(Measurement(name: "pattention decode T=1 naive (\(ref.name), in L3)", seconds: t, median: m, gflops: nil, gbPerSecond: weightBytes / t / 1e9, note: ""))
        }

        // Attention: prefill of T rows, then one decode step at context T.
        let kc = AlignedBuffer(count: attn.cacheFloats), vc = AlignedBuffer(count: attn.cacheFloats)
        let Q = AlignedBuffer(count: T * d), O = AlignedBuffer(count: T * d)
        fill(Q, seed: 5, scale: 1)
        (t, m) = time(reps) { attention([Q.raw, X.raw, X.raw, O.raw, kc.raw, vc.raw], rows: T, position: 0) }
        let attnFlops = 4.0 * Double(T) * Double(T + 1) / 2 * Double(d)
        record(Measurement(name: "attention prefill T=\(T) (\(o.heads) heads)", seconds: t, median: m, gflops: attnFlops / t / 1e9, gbPerSecond: nil, note: ""))
        (t, m) = time(reps * 10) { attention([Q.raw, X.raw, X.raw, O.raw, kc.raw, vc.raw], rows: 1, position: T) }
        let cacheBytes = 2.0 * Double(T + 1) * Double(d) * 4
        record(Measurement(name: "attention decode at context \(T + 1)", seconds: t, median: m, gflops: nil, gbPerSecond: cacheBytes / t / 1e9, note: "KV bytes read"))

        if o.compileTime {
            let (secs, count) = try compileModelKernels(dModel: d, heads: o.heads, qkvTokens: d, ffnTokens: n, vocab: 50304)
            record(Measurement(name: "compile 150M kernel set (\(count) kernels)", seconds: secs, median: secs, gflops: nil, gbPerSecond: nil,
                               note: "emit + O3 + machine code"))
        }
        return results
    }

    /// Emits and JIT-compiles the distinct kernels of a TokenFormer model of these sizes
    /// (qkv with LN + rotary, proj with residual, mlp with LN + residual, attention, final
    /// norm + logits) in one module; returns (seconds, kernel count).
    public static func compileModelKernels(dModel d: Int, heads: Int, qkvTokens: Int, ffnTokens: Int, vocab: Int,
                                           context: Int = 2048) throws -> (Double, Int) {
        let t0 = monotonicSeconds()
        let rot = RotaryEmbedding(heads: heads, headDim: d / heads)
        let m = try KernelModule(name: "model")
        let qkv = [PattentionSite(tokens: qkvTokens, dOut: d, rotary: rot), PattentionSite(tokens: qkvTokens, dOut: d, rotary: rot),
                   PattentionSite(tokens: qkvTokens, dOut: d)]
        var names = [m.addPattention(PattentionKernelSpec(dIn: d, layerNormEps: 1e-5, sites: qkv))]
        names.append(m.addPattention(PattentionKernelSpec(dIn: d, site: PattentionSite(tokens: qkvTokens, dOut: d, residual: true))))
        names.append(m.addPattention(PattentionKernelSpec(dIn: d, site: PattentionSite(tokens: ffnTokens, dOut: d, residual: true), layerNormEps: 1e-5)))
        names.append(m.addAttention(AttentionKernelSpec(heads: heads, headDim: d / heads, context: context)))
        names.append(m.addGemm(GemmKernelSpec(k: d, n: vocab, layerNormEps: 1e-5)))
        let jit = try KernelJIT()
        try jit.add(m)
        for s in names { _ = try jit.address(of: s) }
        return (monotonicSeconds() - t0, names.count)
    }
}
