import Foundation
import XCTest
import TFSpec
import TFIR
@testable import TFExperiment

/// The growth experiment's accounting and table against numbers computed by hand.
final class GrowthExperimentTests: XCTestCase {
    func config(stepsA: Int, stepsB: Int) -> GrowthConfig {
        GrowthConfig(specA: "a.tfs", specB: "b.tfs", grow: ["all=x4"], seed: 1, batch: 2, seq: 8, lr: 1e-3, warmup: 2,
                     stepsA: stepsA, stepsB: stepsB, evalEvery: 10, evalWindows: 4)
    }

    func testFlopsToReachInterpolatesTheFirstCrossing() {
        let curve = ComputeCurve(steps: [1, 2, 3, 4], flops: [10, 20, 30, 40], valLoss: [4, 3, 2.5, 2])
        XCTAssertEqual(curve.flopsToReach(2.75)!, 25, accuracy: 1e-12)   // 20 + (3 − 2.75) / 0.5 · 10
        XCTAssertEqual(curve.flopsToReach(2.5)!, 30, accuracy: 1e-12)    // reached at a point
        XCTAssertEqual(curve.flopsToReach(5)!, 10, accuracy: 1e-12)      // already at the first point
        XCTAssertNil(curve.flopsToReach(1.9))
        // A later dip below and back up: the first crossing counts.
        let noisy = ComputeCurve(steps: [1, 2, 3], flops: [10, 20, 30], valLoss: [3, 1, 2])
        XCTAssertEqual(noisy.flopsToReach(2)!, 15, accuracy: 1e-12)
    }

    func testLossAtFlopsInterpolatesInsideTheRangeOnly() {
        let curve = ComputeCurve(steps: [1, 2, 3, 4], flops: [10, 20, 30, 40], valLoss: [4, 3, 2.5, 2])
        XCTAssertEqual(curve.loss(atFlops: 35)!, 2.25, accuracy: 1e-12)
        XCTAssertEqual(curve.loss(atFlops: 20)!, 3, accuracy: 1e-12)
        XCTAssertEqual(curve.loss(atFlops: 40)!, 2, accuracy: 1e-12)
        XCTAssertEqual(curve.loss(atFlops: 10)!, 4, accuracy: 1e-12)
        XCTAssertNil(curve.loss(atFlops: 41))
        XCTAssertNil(curve.loss(atFlops: 5))
    }

    func testPlanGivesGrownRunsScratchBsCompute() throws {
        // B's budget 300 · 4 = 1200; A spends 100 · 1; the rest is ceil(1100 / 4) = 275 steps of B.
        let plan = try GrowthPlan(config: config(stepsA: 100, stepsB: 300), flopsPerStepA: 1, flopsPerStepB: 4)
        XCTAssertEqual(plan.runs.map(\.name), ["scratch-A", "scratch-B", "grown-exact", "grown-reference", "grown-random-keys"])
        XCTAssertEqual(plan.runs.map(\.steps), [100, 300, 375, 375, 375])
        XCTAssertEqual(plan.runs.map(\.grownAt), [nil, nil, 100, 100, 100])
        let grown = plan.run("grown-reference")!
        XCTAssertEqual(plan.flops(grown, atStep: 50), 50)
        XCTAssertEqual(plan.flops(grown, atStep: 150), 100 + 50 * 4)
        XCTAssertEqual(plan.flops(plan.run("scratch-B")!, atStep: 300), 1200)
        XCTAssertEqual(plan.flops(plan.run("scratch-A")!, atStep: 100), 100)
        // A rounded-up step: 100 · 3 = 300, minus 100, is 66.7 steps of 3 → 67.
        XCTAssertEqual(try GrowthPlan(config: config(stepsA: 100, stepsB: 100), flopsPerStepA: 1, flopsPerStepB: 3).runs[2].steps, 167)
    }

    func testPlanRefusesAnAThatCostsAsMuchAsB() {
        XCTAssertThrowsError(try GrowthPlan(config: config(stepsA: 400, stepsB: 100), flopsPerStepA: 1, flopsPerStepB: 4)) { error in
            XCTAssertTrue("\(error)".contains("model A's 400 steps cost as much as scratch-B's 100"), "\(error)")
        }
    }

    /// scratch-B ends at loss 2.0 after 300 FLOPs. The grown run crosses 2.0 between (150, 2.4) and
    /// (250, 1.9): at 150 + 0.4/0.5 · 100 = 230, 0.7667 of scratch-B; at 300 its loss is 1.85.
    func results() throws -> GrowthResults {
        let plan = try GrowthPlan(config: config(stepsA: 100, stepsB: 300), flopsPerStepA: 1, flopsPerStepB: 4)
        func result(_ name: String, _ flops: [Double], _ loss: [Double]) -> GrowthResults.RunResult {
            .init(run: plan.run(name)!, model: name == "scratch-A" ? "a" : "b", parameters: name == "scratch-A" ? 1000 : 4000,
                  curve: ComputeCurve(steps: Array(1...flops.count), flops: flops, valLoss: loss))
        }
        return GrowthResults(plan: plan, runs: [
            result("scratch-A", [25, 50], [3.5, 3.2]),
            result("scratch-B", [100, 200, 300], [3, 2.5, 2.0]),
            result("grown-random-keys", [50, 150, 250, 350], [3.2, 2.4, 1.9, 1.8]),
        ])
    }

    func testTableAgainstHandComputedNumbers() throws {
        let table = try results().table
        XCTAssertEqual(table.map(\.name), ["scratch-A", "scratch-B", "grown-random-keys"])
        XCTAssertNil(table[0].fractionOfScratchB)
        XCTAssertNil(table[0].lossAtEqualCompute)
        XCTAssertEqual(table[1].fractionOfScratchB!, 1, accuracy: 1e-12)
        XCTAssertEqual(table[1].lossAtEqualCompute!, 2, accuracy: 1e-12)
        XCTAssertEqual(table[2].flopsToTarget!, 230, accuracy: 1e-9)
        XCTAssertEqual(table[2].fractionOfScratchB!, 230.0 / 300, accuracy: 1e-12)
        XCTAssertEqual(table[2].lossAtEqualCompute!, 1.85, accuracy: 1e-12)
        XCTAssertEqual(table[2].perplexityAtEqualCompute!, 6.359819523601, accuracy: 1e-9)
        let markdown = try results().markdownTable
        XCTAssertTrue(markdown.contains("| grown-random-keys | 4,000 | 350 | 1.8000 | 0.77× scratch-B | 1.8500 / 6.360 |"), markdown)
        XCTAssertTrue(markdown.contains("| scratch-A | 1,000 | 50 | 3.2000 | not reached | — (stops at 50) |"), markdown)
    }

    func testJSONHoldsEveryRunsCurveAndTheTable() throws {
        let text = try results().json
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let runs = try XCTUnwrap(object["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["name"] as? String }, ["scratch-A", "scratch-B", "grown-random-keys"])
        XCTAssertEqual(runs[2]["flops"] as? [Double], [50, 150, 250, 350])
        XCTAssertEqual(runs[2]["val_loss"] as? [Double], [3.2, 2.4, 1.9, 1.8])
        XCTAssertEqual(runs[2]["grown_at_step"] as? Int, 100)
        XCTAssertEqual(runs[2]["init"] as? String, "random-keys")
        XCTAssertTrue(runs[1]["grown_at_step"] is NSNull)
        let table = try XCTUnwrap(object["table"] as? [[String: Any]])
        XCTAssertEqual(table[2]["fraction_of_scratch_b_compute"] as! Double, 230.0 / 300, accuracy: 1e-12)
        XCTAssertTrue(table[0]["fraction_of_scratch_b_compute"] is NSNull)
        let perStep = try XCTUnwrap(object["flops_per_step"] as? [String: Any])
        XCTAssertEqual(perStep["B"] as? Double, 4)
    }

    /// tiny (specs/tiny.tfs): per token 4 sites of 2·64·128 and an mlp of 2·256·128 per layer, two
    /// layers, logits 2·256·64: 294,912; attention 4·64 per key per layer, Σ(t+1) = 36 over 8
    /// tokens: 2·256·36 = 18,432. A step of 2 windows of 8: 3 · 2 · (8 · 294,912 + 18,432).
    func testTrainingFlopsOfAStep() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../specs/tiny.tfs")
        let source = try SourceFile.load(url.path)
        let graph = try lower(try parse(source), source: source)
        XCTAssertEqual(TrainingFlops.perStep(graph, batch: 2, seq: 8), 3 * 2 * (8 * 294_912 + 18_432))
    }

    func testConfigErrorsSayWhatIsWrong() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("growth-config-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("growth.json").path
        try #"{"spec_a": "a.tfs", "spec_b": "b.tfs", "grow": ["all=x4"], "seed": 1, "batch": 0, "seq": 8, "lr": 0.001, "warmup": 2, "steps_a": 1, "steps_b": 2, "eval_every": 1, "eval_windows": 1}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GrowthConfig.load(path)) { XCTAssertEqual("\($0)", "\(path): error: \"batch\" must be at least 1, got 0") }
        try #"{"spec_a": "a.tfs"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GrowthConfig.load(path)) { XCTAssertEqual("\($0)", "\(path): error: the config lacks \"spec_b\"") }
        try #"{"spec_a": "a.tfs", "spec_b": "b.tfs", "grow": ["all=x4"], "seed": 1, "batch": 2, "seq": 8, "lr": 0.001, "warmup": 2, "steps_a": 1, "steps_b": 2, "eval_every": 1, "eval_windows": 1}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try GrowthConfig.load(path).specA, directory.path + "/a.tfs")
    }
}
