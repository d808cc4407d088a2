import Foundation
import COpenBLAS
import TFNaive
import TFRuntime

/// What the bench says about the machine it runs on.
public enum Machine {
    /// The CPU's `model name` from /proc/cpuinfo ("unknown CPU" elsewhere).
    public static var cpuName: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown CPU"
    }

    /// Online cores: the default thread count.
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Fixes the thread count of both sides: OpenBLAS (the naive side, and the peak sgemm) and the
    /// runtime's pool (the fused side's kernels).
    public static func setThreads(_ threads: Int) {
        BLASThreadLimit.set(threads)
        tfc_set_num_threads(Int32(threads))
    }

    /// Size of the last-level cache in bytes, from sysfs (32 MiB if unknown).
    public static var lastLevelCacheBytes: Int {
        for index in (0...4).reversed() {
            let path = "/sys/devices/system/cpu/cpu0/cache/index\(index)/size"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let digits = Int(t.prefix { $0.isNumber }) ?? 0
            if t.hasSuffix("K") { return digits << 10 }
            if t.hasSuffix("M") { return digits << 20 }
            return digits
        }
        return 32 << 20
    }
}

/// OpenBLAS's worker threads (the pthread build) busy-wait, yielding, for about 2²⁸ cycles (~0.1 s)
/// after every threaded call before they go to sleep. Alternating with the naive side, that would
/// leave a BLAS thread competing for a core during the fused run that follows, halving it at
/// random on a machine with few cores. So, untimed: before each fused run the bench parks the
/// BLAS threads, and before each naive run it starts them again with one small threaded sgemm —
/// the naive side then runs as it does inside a forward pass (threads up, between two calls) and
/// the fused side has the cores to itself, as it does in its own forward pass.
public enum BLASThreads {
    private typealias Shutdown = @convention(c) () -> Int32
    /// OpenBLAS's `blas_thread_shutdown_` (joins its workers; the next threaded call starts them
    /// again, as after a fork), or nil if the BLAS in use has none.
    private static let shutdown: Shutdown? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "blas_thread_shutdown_") else { return nil }
        return unsafeBitCast(symbol, to: Shutdown.self)
    }()
    private static let size = 128
    private static let a = randomFloats(size * size, seed: 3)
    private static var c = [Float](repeating: 0, count: size * size)

    /// Whether `park` can do anything here.
    public static var canPark: Bool { shutdown != nil }

    /// Stops the BLAS worker threads (no-op without OpenBLAS's pthread server).
    public static func park() { _ = shutdown?() }

    /// Starts the BLAS worker threads: a 128³ sgemm, above OpenBLAS's threading threshold.
    public static func wake() {
        let n = Int32(size)
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, ap.baseAddress, n, ap.baseAddress, n, 0, cp.baseAddress, n)
            }
        }
    }
}

/// The runtime's thread pool (Runtime/threadpool.c), woken before a fused side's timed run:
/// after the cache flush its workers have spun out their 100 µs and sleep, while inside a
/// forward pass the previous kernel has just left them spinning; a decode-sized kernel timed
/// from sleep would pay the wake-up (tens of µs) that the model does not.
public enum RuntimePool {
    /// One empty task per thread: publishing it wakes every sleeping worker, which then spins
    /// (100 µs) for the next job, the kernel about to be timed.
    public static func wake() {
        tfc_parallel_for({ _, _ in }, nil, Int64(tfc_get_num_threads()))
    }
}

/// Evicts the caches between timed runs, so every run of either side starts cold, as a kernel does
/// inside a real forward pass (the layer before it has streamed other weights through the cache).
public final class CacheFlusher {
    let buffer: UnsafeMutableBufferPointer<Float>
    /// Kept so the compiler cannot drop the reads.
    public private(set) var sink: Float = 0

    /// `bytes` should be a few times the last-level cache.
    public init(bytes: Int = 2 * Machine.lastLevelCacheBytes) {
        buffer = .allocate(capacity: max(bytes / 4, 16))
        buffer.initialize(repeating: 1)
    }

    deinit { buffer.deallocate() }

    /// Writes one float per cache line of the buffer (dirty lines must be written back, so this
    /// evicts more thoroughly than reading).
    public func flush() {
        var i = 0
        let n = buffer.count
        let p = buffer.baseAddress!
        while i < n { p[i] += 1; i += 16 }
        sink += p[n / 2]
    }
}

/// The machine's measured bounds, taken in the same run as the figures they are compared with.
public struct MachinePeak: Equatable, Sendable {
    /// OpenBLAS `sgemm` on an n×n×n product, best of the runs.
    public var sgemmGFlops: Double
    public var sgemmSize: Int
    /// A multi-threaded sum over a large float array, best of the runs (GB = 10⁹ bytes).
    public var bandwidthGBs: Double
    public var bandwidthBytes: Int

    public init(sgemmGFlops: Double, sgemmSize: Int, bandwidthGBs: Double, bandwidthBytes: Int) {
        self.sgemmGFlops = sgemmGFlops; self.sgemmSize = sgemmSize
        self.bandwidthGBs = bandwidthGBs; self.bandwidthBytes = bandwidthBytes
    }

    /// Measures both with `threads` threads (call `Machine.setThreads` first).
    public static func measure(threads: Int, sgemmSize: Int = 2048, bandwidthBytes: Int = 512 << 20, runs: Int = 3) -> MachinePeak {
        let sgemm = measureSgemm(n: sgemmSize, runs: runs)
        BLASThreads.park()  // spinning BLAS threads would take a core from the readers
        return MachinePeak(sgemmGFlops: sgemm, sgemmSize: sgemmSize,
                           bandwidthGBs: measureBandwidth(bytes: bandwidthBytes, threads: threads, runs: runs), bandwidthBytes: bandwidthBytes)
    }

    /// GFLOP/s of `C = A·B` for n×n matrices (`SgemmProbe`): one warm-up call, then the best of `runs`.
    public static func measureSgemm(n: Int, runs: Int) -> Double {
        let probe = SgemmProbe(size: n)
        _ = probe.run()
        let best = (0..<Swift.max(runs, 1)).map { _ in probe.run() }.min()!
        return probe.gflops(best)
    }

    /// GB/s of summing `bytes` of floats split over `threads` threads (`BandwidthProbe`): the
    /// array is written first (so page faults are not timed), then summed `runs` times; the best
    /// run counts.
    public static func measureBandwidth(bytes: Int, threads: Int, runs: Int) -> Double {
        let probe = BandwidthProbe(bytes: bytes, threads: threads)
        let best = (0..<Swift.max(runs, 1)).map { _ in probe.read() }.min()!
        return probe.gbs(best)
    }

    /// Sum of `count` floats (a multiple of 32), four independent 8-wide accumulators.
    static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(p)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var offset = 0
        let end = count * 4
        while offset + 128 <= end {
            a0 += raw.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            a1 += raw.loadUnaligned(fromByteOffset: offset + 32, as: SIMD8<Float>.self)
            a2 += raw.loadUnaligned(fromByteOffset: offset + 64, as: SIMD8<Float>.self)
            a3 += raw.loadUnaligned(fromByteOffset: offset + 96, as: SIMD8<Float>.self)
            offset += 128
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while offset < end { s += raw.load(fromByteOffset: offset, as: Float.self); offset += 4 }
        return s
    }
}

/// Deterministic normal(0, 1) floats (the runtime's generator; the values do not affect speed).
func randomFloats(_ count: Int, seed: UInt64, std: Float = 1) -> [Float] {
    var state = tfc_mix64(seed)
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if count > 0 { tfc_fill_normal(buffer.baseAddress!, count, std, &state) }
        initialized = count
    }
}

/// Fills `buffer` with deterministic normal(0, std) floats.
func fillRandom(_ buffer: UnsafeMutableBufferPointer<Float>, seed: UInt64, std: Float = 1) {
    var state = tfc_mix64(seed)
    if let base = buffer.baseAddress, !buffer.isEmpty { tfc_fill_normal(base, buffer.count, std, &state) }
}
