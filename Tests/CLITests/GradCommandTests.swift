import Foundation
import XCTest
import TFWeights

/// `tfc grad`'s refusals and its output file.
final class GradCommandTests: XCTestCase {
    func fixture() throws -> (dir: URL, spec: String, weights: String) {
        let dir = try TFC.temporaryDirectory(self)
        let spec = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights]), "tfc init")
        return (dir, spec, weights)
    }

    func testRefusals() throws {
        let (dir, spec, weights) = try fixture()
        let out = dir.appendingPathComponent("g.safetensors").path
        let cases: [([String], String)] = [
            (["--tokens", "5", "-o", out], "error: --tokens: the loss predicts each next token, so it needs at least 2 tokens, got 1"),
            (["--tokens", "1,999", "-o", out], "error: --tokens: token id 999 (item 2) is outside the vocabulary 0..<256"),
            (["--tokens", "1,2", "-o", weights], "\(weights): error: -o is the input weights file; write to another file"),
            (["--tokens", "1,2", "-o", spec], "\(spec): error: -o is the input spec; write to another file"),
        ]
        let before = try Data(contentsOf: URL(fileURLWithPath: weights))
        for (arguments, message) in cases {
            let r = try TFC.run(["grad", spec, "--weights", weights] + arguments)
            XCTAssertEqual(r.status, 1, arguments.joined(separator: " "))
            XCTAssertEqual(r.stderr, message + "\n")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: weights)), before, "the input is untouched")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Every weight's gradient, same names and shapes as the weights, finite and not all zero.
    func testWritesAGradientPerWeight() throws {
        let (dir, spec, weights) = try fixture()
        let out = dir.appendingPathComponent("g.safetensors").path
        let r = try TFC.run(["grad", spec, "--weights", weights, "--tokens", "1,2,3,4", "-o", out])
        XCTAssertSucceeded(r, "tfc grad")
        XCTAssertTrue(r.stdout.hasPrefix("loss = "), r.stdout)
        let w = try WeightFile(path: weights), g = try WeightFile(path: out)
        XCTAssertEqual(g.names.sorted(), w.names.sorted())
        for name in w.names {
            XCTAssertEqual(g.tensor(name)!.shape, w.tensor(name)!.shape, name)
            let values = Array(g.tensor(name)!.floats)
            XCTAssertFalse(values.contains { !$0.isFinite }, name)
            XCTAssertTrue(values.contains { $0 != 0 }, name)
        }
    }
}
