import XCTest
import TFIR
import TFSpec
import TFAutodiff
import TFNaive
import TFTraining
import TFCodegen
import TFTestSupport

/// The fused backend's batch of windows (one stack of rows; attention, rotary and the loss per
/// window) against the oracle window by window: the mean loss and the mean gradient, for every
/// vector target this CPU runs, with the Pattention scores kept from the forward (the default)
/// and recomputed in the backward (a zero budget for them); 150 rows, two row blocks of the
/// Pattention backward, the last partial.
final class FusedBatchTests: XCTestCase {
    func testBatchEqualsTheMeanOfItsWindows() throws {
        let source = try SourceFile.load(DifferentiateTests.root.appendingPathComponent("specs/tiny.tfs").path)
        let graph = try lower(try parse(source), source: source)
        let grad = try differentiate(graph)
        let weights = RandomWeights(graph, seed: 11)
        var random = SplitMix64(seed: 4)
        let windows = (0..<3).map { _ in (0..<50).map { _ in Int32(random.next() % 256) } }
        let naive = NaiveGradient(grad: grad, weights: weights.lookup, threads: 1).run(batch: windows)
        let largest = naive.gradients.values.map { $0.map(abs).max()! }.max()!
        let runnable = VectorTarget.runnable()
        XCTAssertTrue(runnable.contains(.avx2))
        for vector in runnable {
            for budget in [FusedGradient.defaultSavedScoresBudget, 0] {
                let what = "\(vector.name), \(budget > 0 ? "scores kept" : "scores recomputed")"
                let fused = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, vector: vector, savedScoresBudget: budget).run(batch: windows)
                XCTAssertEqual(fused.loss, naive.loss, accuracy: 1e-5, what)
                XCTAssertEqual(Set(fused.gradients.keys), Set(naive.gradients.keys))
                for (name, a) in naive.gradients {
                    let b = fused.gradients[name]!
                    let scale = a.map(abs).max()!
                    XCTAssertGreaterThan(scale, 0, name)
                    let error = zip(a, b).map { abs($0 - $1) }.max()!
                    XCTAssertLessThanOrEqual(error, 1e-4 * max(scale, 1e-3 * largest), "\(what): \(name): \(error) of \(scale)")
                }
            }
        }
    }
}
