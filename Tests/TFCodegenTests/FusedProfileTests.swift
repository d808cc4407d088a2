import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFWeights
import TFTestSupport
@testable import TFCodegen

/// `FusedExecutor.profiledForward` (`tfc bench model --profile`) makes the program's calls itself,
/// one at a time: its logits must be the naive backend's, from position 0 and continuing from a
/// cache, and every call must be counted under its kind.
final class FusedProfileTests: XCTestCase {
    func testProfiledForwardMatchesNaiveAndCountsEveryCall() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let source = try SourceFile.load(root.appendingPathComponent("specs/tiny.tfs").path)
        let g = try lower(try parse(source), source: source)
        let w = RandomWeights(g, seed: 3)
        let tokens: [Int32] = [5, 17, 200, 3, 99, 42, 7, 255, 0, 128, 64]
        let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(tokens)
        func assertClose(_ a: Matrix, rows: Range<Int>, tolerance: Float = 1e-4, _ what: String) {
            let expected = Array(naive.data[(rows.lowerBound * naive.columns)..<(rows.upperBound * naive.columns)])
            let scale = expected.map(abs).max()!
            let d = zip(a.data, expected).map { abs($0 - $1) }.max()!
            XCTAssertEqual(a.rows, rows.count, what)
            XCTAssertLessThanOrEqual(d / scale, tolerance, what)
        }
        for format in [WeightFormat.f32, .bf16] {
            for vector in TestJIT.runnable {
                let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: nil, target: .host(vector), weightFormat: format)
                if format == .f32 {
                    // 8 rows from position 0, then 3 more continuing from the cache (positions 8...10).
                    let (first, kinds) = try fused.profiledForward(Array(tokens[0..<8]))
                    assertClose(first, rows: 0..<8, "\(vector.name) prefill")
                    let (rest, _) = try fused.profiledForward(Array(tokens[8...]))
                    assertClose(rest, rows: 8..<11, "\(vector.name) continued")
                    XCTAssertEqual(kinds.reduce(0) { $0 + $1.calls }, fused.callKinds.count)
                    XCTAssertTrue(kinds.allSatisfy { $0.seconds > 0 }, "\(kinds)")
                    let calls = Dictionary(uniqueKeysWithValues: kinds.map { ($0.kind, $0.calls) })
                    // tiny: 2 layers, each one fused q/k/v, proj and mlp Pattention and one attention.
                    for kind in ["pattention query/key/value", "pattention proj", "pattention mlp", "attention"] {
                        XCTAssertEqual(calls[kind], 2, "\(kind) in \(calls)")
                    }
                    XCTAssertEqual(calls["logits"], 1, "\(calls)")
                    XCTAssertEqual(calls["embedding"], 1, "\(calls)")
                } else {
                    // bf16 weights: near the naive f32 logits by bf16's rounding, and exactly forward's
                    // (the same kernels on the same table in the same order).
                    let (profiled, _) = try fused.profiledForward(tokens)
                    assertClose(profiled, rows: 0..<11, tolerance: 3e-2, "\(vector.name) bf16")
                    fused.reset()
                    XCTAssertEqual(profiled, fused.forward(tokens), "\(vector.name) bf16")
                }
            }
        }
    }
}
