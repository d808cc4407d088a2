import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFTestSupport
@testable import TFCodegen

/// Whole models with a bf16 KV cache, with every weight format, on every runnable target:
/// - against the naive backend whose keys and values are rounded to bf16 as they are cached
///   (the same computation in f32 on OpenBLAS), and against the plain fp32 naive backend
///   (the error bf16 KV adds: measured and bounded);
/// - decoding from the cache (T = 1 steps) gives the full pass's logits: the full pass too
///   attends to keys and values rounded as they were appended.
final class FusedBF16KVTests: XCTestCase {
    static let cache = CompiledCodeCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("tfc-test-kv-\(getpid())").path)

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: cache.directory)
        super.tearDown()
    }

    /// - Parameters:
    ///   - roundedBudget: relative RMS against the naive backend with bf16-rounded K/V.
    ///   - plainBudget: relative RMS against the plain fp32 naive backend.
    func check(_ format: WeightFormat, file: String, roundedBudget: Double, plainBudget: Double) throws {
        let g = try specGraph(file)
        let w = RandomWeights(g, seed: 3)
        let ids = (0..<24).map { Int32(($0 * 7919 + 11) % g.config.vocab) }
        let plain = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(ids)
        let roundingNaive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2)
        roundingNaive.keyValueRounding = { BF16.float(BF16.round($0)) }
        let rounded = roundingNaive.forward(ids)
        XCTAssertGreaterThan(relativeRMS(rounded.data, plain.data), 0, "rounding K/V changes the naive logits")
        let v = g.config.vocab
        for vector in TestJIT.runnable {
            let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache, target: .host(vector),
                                          weightFormat: format, kvFormat: .bf16)
            let all = fused.forward(ids)
            let what = "\(file) \(format) weights, bf16 KV on \(vector.name)"
            XCTAssertTrue(all.data.allSatisfy(\.isFinite), what)
            let vsRounded = relativeRMS(all.data, rounded.data), vsPlain = relativeRMS(all.data, plain.data)
            print("\(what): relative RMS \(vsRounded) vs naive on bf16-rounded K/V, \(vsPlain) vs naive fp32")
            XCTAssertLessThan(vsRounded, roundedBudget, "vs naive on bf16-rounded K/V: " + what)
            XCTAssertLessThan(vsPlain, plainBudget, "vs naive fp32: " + what)
            // Decoding row by row from the bf16 cache gives the full pass's logits.
            fused.reset()
            var last = fused.forwardLast(Array(ids[0..<20]))
            XCTAssertLessThan(relativeRMS(last, Array(all.data[19 * v ..< 20 * v])), 1e-5, "prefill's last row: " + what)
            for t in 20..<ids.count {
                last = fused.forwardLast([ids[t]])
                XCTAssertLessThan(relativeRMS(last, Array(all.data[t * v ..< (t + 1) * v])), 1e-5, "decode step \(t): " + what)
            }
        }
    }

    /// Measured: 5e-7 (tiny) and 5e-5 (mid) vs the rounded naive — fp32 rounding, and a K or V
    /// element now and then rounding to the neighbouring bf16 value; 0.14% and 0.07% vs fp32.
    func testF32Weights() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] { try check(.f32, file: file, roundedBudget: 2e-4, plainBudget: 5e-3) }
    }

    /// The weights' error dominates; bf16 KV adds a little to it (tiny, AVX2: bf16 weights 0.54% → 0.57%,
    /// int8 2.47% → 2.59%, measured), so the formats' own budgets hold.
    func testBF16Weights() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] { try check(.bf16, file: file, roundedBudget: 0.013, plainBudget: 0.013) }
    }

    func testInt8Weights() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] { try check(.int8, file: file, roundedBudget: 0.03, plainBudget: 0.03) }
    }
}
