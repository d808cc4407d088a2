import Foundation

/// One kernel case measured on both sides.
public struct KernelResult: Sendable {
    public var kernel: KernelCase
    public var naive: Summary
    /// Nil when there is no fused kernel for this case (yet).
    public var fused: Summary?
    /// Largest |fused − naive| over the output, divided by the largest |naive| (nil without a fused side).
    public var difference: Double?
    /// Why the fused side is missing, when preparing it failed.
    public var fusedError: String?
    /// The bound sampled between this case's runs: seconds per sgemm product (compute-bound
    /// cases) or per memory read (bandwidth-bound ones) of `boundProbeWork` FLOPs or bytes, one
    /// per round after the sides; nil when the bench had no probe.
    public var boundProbe: Summary? = nil
    public var boundProbeWork: Double = 0

    public init(kernel: KernelCase, naive: Summary, fused: Summary?, difference: Double? = nil, fusedError: String? = nil) {
        self.kernel = kernel; self.naive = naive; self.fused = fused; self.difference = difference; self.fusedError = fusedError
    }

    /// Median naive time ÷ median fused time.
    public var speedup: Double? { TFBench.speedup(naive: naive, fused: fused) }

    /// GFLOP/s at the median time (nil for kernels without a FLOP count, or a missing side).
    public func gflops(_ side: Summary?) -> Double? {
        guard let side, let flops = kernel.flops else { return nil }
        return side.rate(flops) / 1e9
    }

    /// GB/s of the kernel's minimum traffic at the median time.
    public func gbs(_ side: Summary?) -> Double? {
        guard let side else { return nil }
        return side.rate(kernel.bytes) / 1e9
    }

    /// GFLOP/s (compute) or GB/s (bandwidth) of the median, slowest and fastest probe runs.
    public var boundProbeRates: (median: Double, min: Double, max: Double)? { boundProbe?.gigaRates(boundProbeWork) }

    /// The bound the percentage uses: the median of the probe runs between this case's runs (the
    /// same moments as its medians) when sampled, else the peak measured at the start.
    public func bound(_ peak: MachinePeak) -> Double {
        boundProbeRates?.median ?? (kernel.bound == .compute ? peak.sgemmGFlops : peak.bandwidthGBs)
    }

    /// The side's figure as a percentage of its bound: GFLOP/s of the sgemm peak for compute-bound
    /// cases, GB/s of the memory bandwidth for bandwidth-bound ones.
    public func percentOfBound(_ side: Summary?, peak: MachinePeak) -> Double? {
        (kernel.bound == .compute ? gflops(side) : gbs(side)).map { 100 * $0 / bound(peak) }
    }
}

/// Runs kernel cases on the naive side and, where a provider has a kernel, the fused side:
/// warm-up, then alternating timed runs, each starting with cold caches.
public struct KernelBench {
    public var alternation: Alternation
    /// Evict the caches before every timed run (both sides alike).
    public var flusher: CacheFlusher?
    /// Run after the sides in every round, as `ModelBench` does between its runs: the bound of a
    /// compute-bound case is the sgemm of its own moments, of a bandwidth-bound one the read.
    public var sgemm: SgemmProbe?
    public var bandwidth: BandwidthProbe?

    public init(repeats: Int, warmup: Int, flusher: CacheFlusher? = CacheFlusher(), sgemm: SgemmProbe? = nil, bandwidth: BandwidthProbe? = nil) {
        alternation = Alternation(warmup: warmup, repeats: repeats)
        self.flusher = flusher
        self.sgemm = sgemm
        self.bandwidth = bandwidth
    }

    /// Measures every case in order. `fused` nil: naive only (fused figures n/a).
    public func run(_ cases: [KernelCase], fused: FusedKernelProvider?, progress: ProgressLine = ProgressLine()) -> [KernelResult] {
        var results: [KernelResult] = []
        for (index, kernel) in cases.enumerated() {
            let label = "\(kernel.name) \(kernel.phase.rawValue) \(kernel.shape)"
            progress.update(step: index + 1, of: cases.count, label, detail: "preparing")
            results.append(measure(kernel, fused: fused) { done, total in
                progress.update(step: index + 1, of: cases.count, label, detail: "run \(done)/\(total)")
            })
        }
        progress.finish()
        return results
    }

    /// One case: prepare both sides, compare their outputs, then time them alternately.
    public func measure(_ kernel: KernelCase, fused provider: FusedKernelProvider?, step: (Int, Int) -> Void = { _, _ in }) -> KernelResult {
        let workload = KernelWorkload(kernel)
        let naive = NaiveSide.prepare(workload)
        var fused: (() -> Void)?
        var error: String?
        do { fused = try provider?.prepare(workload) } catch let e { error = "\(e)" }
        var difference: Double?
        if let fused {
            naive()
            let expected = Array(workload.output)
            workload.output.update(repeating: .nan)
            fused()
            difference = relativeDifference(expected, Array(workload.output))
        }
        // Untimed before each run: BLAS threads up for the naive side, parked for the fused side
        // (see `BLASThreads`), then the caches flushed, then (fused) the runtime pool woken, as
        // each side's threads are inside its own forward pass.
        let flusher = self.flusher
        func side(_ body: @escaping () -> Void, blas: @escaping () -> Void, pool: @escaping () -> Void = {}) -> () -> Double {
            let run = timed(body)
            return {
                blas()
                flusher?.flush()
                pool()
                return run()
            }
        }
        let sides = [side(naive, blas: BLASThreads.wake)] + (fused.map { [side($0, blas: BLASThreads.park, pool: RuntimePool.wake)] } ?? [])
        // The probe last in each round, BLAS threads up for the sgemm and parked for the read.
        var probe: (side: () -> Double, work: Double)?
        switch kernel.bound {
        case .compute: probe = sgemm.map { p in ({ BLASThreads.wake(); return p.run() }, p.flops) }
        case .bandwidth: probe = bandwidth.map { p in ({ BLASThreads.park(); return p.read() }, Double(p.bytes)) }
        }
        var summaries = alternation.run(sides + (probe.map { [$0.side] } ?? []), step: step)
        let probeRuns = probe != nil ? summaries.removeLast() : nil
        var result = KernelResult(kernel: kernel, naive: summaries[0], fused: summaries.count > 1 ? summaries[1] : nil,
                                  difference: difference, fusedError: error)
        result.boundProbe = probeRuns
        result.boundProbeWork = probe?.work ?? 0
        return result
    }
}

/// max |b − a| / max |a| (NaN anywhere in b gives infinity).
func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    var largest = 0.0, difference = 0.0
    for (x, y) in zip(a, b) {
        largest = max(largest, Double(abs(x)))
        let d = Double(abs(x - y))
        if d.isNaN { return .infinity }
        difference = max(difference, d)
    }
    return largest > 0 ? difference / largest : difference
}
