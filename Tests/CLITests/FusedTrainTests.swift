import Foundation
import XCTest

/// `tfc train --backend fused` follows the naive trainer's loss curve (the same windows, gradients
/// equal to float32 rounding). Its bit-exact resume is TrainCommandTests.testResumeIsBitExactFused.
final class FusedTrainTests: XCTestCase {
    var tiny: String { TFC.root.appendingPathComponent("specs/tiny.tfs").path }

    /// 20 KB of the repository's English, bytes as tokens.
    func text(in dir: URL) throws -> String {
        var data = Data()
        for name in ["README.md", "docs/training.md", "docs/growth.md"] { data.append(try Data(contentsOf: TFC.root.appendingPathComponent(name))) }
        let path = dir.appendingPathComponent("text.txt").path
        try data.prefix(20_000).write(to: URL(fileURLWithPath: path))
        XCTAssertGreaterThan(data.count, 10_000)
        return path
    }

    func losses(_ dir: String) throws -> [Double] {
        try String(contentsOfFile: dir + "/loss.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[1]) ?? .nan }
    }

    /// Both backends from the same initial weights and sampler (fused for every vector target this
    /// CPU runs): the per-step losses agree (they drift apart only by float32 rounding), and the loss falls.
    func testFollowsTheNaiveTrainer() throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = try text(in: dir)
        var curves: [[Double]] = []
        // naive, then fused for every vector target this CPU runs.
        let runs = [("naive", [String]())] + TFC.runnableTargets.map { ("fused", ["--target-cpu", $0]) }
        for (i, (backend, target)) in runs.enumerated() {
            let out = dir.appendingPathComponent("run\(i)").path
            let run = try TFC.run(["train", tiny, "--data", data, "--steps", "30", "--batch", "4", "--seq", "32", "--lr", "3e-3",
                                   "--warmup", "5", "--seed", "3", "--backend", backend, "--out", out] + target)
            XCTAssertSucceeded(run, "\(backend) \(target)")
            if let name = target.last { XCTAssertTrue(run.stdout.contains("backend fused: generated gradient kernels (\(name))"), run.stdout) }
            curves.append(try losses(out))
        }
        XCTAssertEqual(curves[0].count, 30)
        for (index, curve) in curves.enumerated().dropFirst() {
            let name = runs[index].1.last!
            XCTAssertEqual(curve.count, 30, name)
            for (step, (a, b)) in zip(curves[0], curve).enumerated() {
                XCTAssertEqual(a, b, accuracy: 1e-3, "\(name): step \(step + 1)")
            }
            XCTAssertLessThan(curve.suffix(5).reduce(0, +) / 5, curve[0] - 0.5, "\(name): \(curve)")
        }
    }
}
