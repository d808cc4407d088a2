import COpenBLAS
import Foundation

/// One OpenBLAS `sgemm` of n×n matrices, run again and again to measure the compute peak.
///
/// Like the bandwidth (`BandwidthProbe`), the peak a shared host's cores give moves with what
/// other tenants do, so `ModelBench` runs this product between its prefill runs as well as once
/// at the start (`MachinePeak`): a prefill's % of peak is then taken against the sgemm of the
/// same moments.
public final class SgemmProbe {
    /// n of the n×n×n product.
    public let size: Int
    let a: [Float], b: [Float]
    var c: [Float]

    public init(size: Int) {
        self.size = Swift.max(size, 1)
        a = randomFloats(self.size * self.size, seed: 1)
        b = randomFloats(self.size * self.size, seed: 2)
        c = [Float](repeating: 0, count: self.size * self.size)
    }

    /// FLOPs of one product.
    public var flops: Double { 2 * Double(size) * Double(size) * Double(size) }

    /// Seconds one product takes, by `clock` (the wall clock unless told).
    public func run(clock now: () -> Double = monotonicSeconds) -> Double {
        let n = Int32(size)
        let start = now()
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, ap.baseAddress, n, bp.baseAddress, n, 0, cp.baseAddress, n)
                }
            }
        }
        return now() - start
    }

    /// GFLOP/s of a product that took `seconds`.
    public func gflops(_ seconds: Double) -> Double { flops / seconds / 1e9 }
}
