import Foundation

/// A large float array read through to measure the memory bandwidth. It is written once, in
/// parallel, when made (first touch puts the pages where the readers run, and page faults stay out
/// of every timing); each `read` then sums the whole array split over `threads` threads.
///
/// The host's bandwidth moves with what other tenants do (on this project's shared 2-core VMs a
/// 512 MiB read swung from 30 to 54 GB/s within minutes), so `ModelBench` samples it between its
/// decode runs as well as once at the start (`MachinePeak`): a decode figure is then compared
/// with the bandwidth of the same moments.
public final class BandwidthProbe {
    /// Bytes one `read` covers.
    public let bytes: Int
    let threads: Int
    let array: UnsafeMutableBufferPointer<Float>
    let perChunk: Int
    let partial: UnsafeMutableBufferPointer<Float>
    /// Kept so the compiler cannot drop the sums.
    public private(set) var sink: Float = 0

    public init(bytes: Int, threads: Int) {
        let count = Swift.max(bytes / 4 / 64 * 64, 64)
        self.bytes = count * 4
        self.threads = Swift.max(threads, 1)
        array = .allocate(capacity: count)
        perChunk = (count / self.threads + 63) / 64 * 64
        partial = .allocate(capacity: self.threads)
        partial.initialize(repeating: 0)
        let (base, perChunk) = (array.baseAddress!, perChunk)
        DispatchQueue.concurrentPerform(iterations: self.threads) { chunk in
            let start = chunk * perChunk, end = Swift.min(count, start + perChunk)
            if start < end { (base + start).initialize(repeating: 0.5, count: end - start) }
        }
    }

    deinit {
        array.deallocate()
        partial.deallocate()
    }

    /// Seconds one parallel read of the whole array takes.
    public func read() -> Double {
        let base = UnsafePointer(array.baseAddress!), count = array.count, perChunk = perChunk, partial = partial
        let start = monotonicSeconds()
        DispatchQueue.concurrentPerform(iterations: threads) { chunk in
            let from = chunk * perChunk, to = Swift.min(count, from + perChunk)
            partial[chunk] = from < to ? MachinePeak.sum(base + from, count: to - from) : 0
        }
        let seconds = monotonicSeconds() - start
        sink += partial.reduce(0, +)
        return seconds
    }

    /// GB/s (10⁹ bytes) of a read that took `seconds`.
    public func gbs(_ seconds: Double) -> Double { Double(bytes) / seconds / 1e9 }
}
