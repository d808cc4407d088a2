/// Median, minimum and maximum of repeated timings (seconds). The median is the figure every
/// table, ratio and chart uses: it ignores the odd run a neighbour on the shared machine spoils.
public struct Summary: Equatable, Sendable {
    /// The individual timings, in the order they were taken.
    public let samples: [Double]
    public let median: Double
    public let min: Double
    public let max: Double

    /// `samples` must not be empty.
    public init(_ samples: [Double]) {
        precondition(!samples.isEmpty, "a summary needs at least one sample")
        self.samples = samples
        let sorted = samples.sorted()
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = sorted.first!
        max = sorted.last!
    }

    public var count: Int { samples.count }

    /// Throughput of `amount` units of work per median run (e.g. FLOPs → FLOP/s).
    public func rate(_ amount: Double) -> Double { amount / median }

    /// `amount` per run in 10⁹ units a second (bytes → GB/s, FLOPs → GFLOP/s) at the median, the
    /// slowest and the fastest run.
    public func gigaRates(_ amount: Double) -> (median: Double, min: Double, max: Double) {
        (amount / median / 1e9, amount / max / 1e9, amount / min / 1e9)
    }
}

/// How much faster the fused side is: median naive time ÷ median fused time, which equals fused
/// throughput ÷ naive throughput. Above 1 the fused side wins. Nil when either side is missing.
public func speedup(naive: Summary?, fused: Summary?) -> Double? {
    guard let naive, let fused, fused.median > 0 else { return nil }
    return naive.median / fused.median
}
