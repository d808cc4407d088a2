import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFWeights
import TFTestSupport
@testable import TFCodegen

/// Whole models with bf16 and int8 weights against the naive fp32 backend on the same weights:
/// the relative RMS logit error within the budgets (bf16 1.3%, int8 3%), top-1
/// agreement, and decoding (T = 1 steps from the KV cache) matching the full forward pass.
final class FusedWeightFormatTests: XCTestCase {
    static let cache = CompiledCodeCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("tfc-test-formats-\(getpid())").path)

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: cache.directory)
        super.tearDown()
    }

    func argmax(_ row: ArraySlice<Float>) -> Int { row.indices.max { row[$0] < row[$1] }! - row.startIndex }

    func check(_ format: WeightFormat, budget: Double, file: String) throws {
        let g = try specGraph(file)
        let w = RandomWeights(g, seed: 3)
        let ids = (0..<24).map { Int32(($0 * 7919 + 11) % g.config.vocab) }
        let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(ids)
        for vector in TestJIT.runnable {
            let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache, target: .host(vector), weightFormat: format)
            let all = fused.forward(ids)
            let what = "\(file) \(format) on \(vector.name)"
            XCTAssertTrue(all.data.allSatisfy(\.isFinite), what)
            let err = relativeRMS(all.data, naive.data)
            let v = g.config.vocab
            let agree = (0..<ids.count).filter { argmax(all.data[$0 * v ..< ($0 + 1) * v]) == argmax(naive.data[$0 * v ..< ($0 + 1) * v]) }.count
            print("\(what): relative RMS \(err), top-1 agreement \(agree)/\(ids.count)")
            XCTAssertLessThan(err, budget, what)
            XCTAssertGreaterThanOrEqual(Double(agree), 0.75 * Double(ids.count), "top-1 agreement: " + what)
            // Decoding row by row from the KV cache gives the same logits as the full pass.
            fused.reset()
            var last: [Float] = fused.forwardLast(Array(ids[0..<20]))
            XCTAssertLessThan(relativeRMS(last, Array(all.data[19 * v ..< 20 * v])), 1e-5, "prefill's last row: " + what)
            for t in 20..<ids.count {
                last = fused.forwardLast([ids[t]])
                XCTAssertLessThan(relativeRMS(last, Array(all.data[t * v ..< (t + 1) * v])), 1e-5, "decode step \(t): " + what)
            }
        }
    }

    func testBF16Models() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] { try check(.bf16, budget: 0.013, file: file) }
    }

    /// The 3% holds on these small random models at 24 tokens (2.6% measured); the random
    /// 150M misses it (4.2%, `tfc bench accuracy`; docs/int8.md says where the error comes from).
    func testInt8Models() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] { try check(.int8, budget: 0.03, file: file) }
    }
}
