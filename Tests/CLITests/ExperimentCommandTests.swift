import Foundation
import XCTest

/// `tfc experiment growth` on a tiny config (tiny grown ×4, a few steps on the repository's own
/// English): every run finishes, the curves follow the FLOPs accounting, a rerun only rewrites the
/// results, and bad inputs are refused with one line.
final class ExperimentCommandTests: XCTestCase {
    /// tiny, tiny with 4× the parameter tokens, 16 KB of training text, 4 KB held out, and a config.
    func fixture(_ dir: URL, stepsA: Int = 4) throws -> (config: String, data: String, eval: String) {
        let tiny = try String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)
        try tiny.write(to: dir.appendingPathComponent("a.tfs"), atomically: true, encoding: .utf8)
        let b = tiny.replacingOccurrences(of: "let qkv = hidden ", with: "let qkv = 4 * hidden ")
            .replacingOccurrences(of: "let proj = hidden", with: "let proj = 4 * hidden")
            .replacingOccurrences(of: "let ffn = 4 * hidden", with: "let ffn = 16 * hidden")
        XCTAssertNotEqual(b, tiny)
        try b.write(to: dir.appendingPathComponent("b.tfs"), atomically: true, encoding: .utf8)
        var text = Data()
        for name in ["README.md", "docs/training.md", "docs/growth.md"] { text.append(try Data(contentsOf: TFC.root.appendingPathComponent(name))) }
        XCTAssertGreaterThan(text.count, 20_000)
        let data = dir.appendingPathComponent("train.txt"), eval = dir.appendingPathComponent("valid.txt")
        try text.prefix(16_000).write(to: data)
        try text.dropFirst(16_000).prefix(4_000).write(to: eval)
        let config = dir.appendingPathComponent("growth.json")
        try """
        {"spec_a": "a.tfs", "spec_b": "b.tfs", "grow": ["all=x4"], "seed": 3, "batch": 2, "seq": 16, "lr": 0.003, "warmup": 1,
         "steps_a": \(stepsA), "steps_b": 8, "eval_every": 2, "eval_windows": 2}
        """.write(to: config, atomically: true, encoding: .utf8)
        return (config.path, data.path, eval.path)
    }

    func testRunsEveryRunAndARerunOnlyRewritesTheResults() throws {
        let dir = try TFC.temporaryDirectory(self)
        let (config, data, eval) = try fixture(dir)
        let out = dir.appendingPathComponent("out").path
        let arguments = ["experiment", "growth", config, "--data", data, "--eval-data", eval, "--out", out]
        let r = try TFC.run(arguments)
        XCTAssertSucceeded(r, "tfc experiment growth")
        XCTAssertTrue(r.stdout.contains("| grown-random-keys |"), r.stdout)
        let json = try Data(contentsOf: URL(fileURLWithPath: out + "/growth.json"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let runs = try XCTUnwrap(object["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["name"] as? String }, ["scratch-A", "scratch-B", "grown-exact", "grown-reference", "grown-random-keys"])
        let perStep = try XCTUnwrap(object["flops_per_step"] as? [String: Any])
        let fA = try XCTUnwrap(perStep["A"] as? Double), fB = try XCTUnwrap(perStep["B"] as? Double)
        func curve(_ i: Int) -> (step: [Int], flops: [Double], loss: [Double]) {
            (runs[i]["step"] as! [Int], runs[i]["flops"] as! [Double], runs[i]["val_loss"] as! [Double])
        }
        XCTAssertEqual(curve(0).step, [2, 4])
        XCTAssertEqual(curve(0).flops, [2 * fA, 4 * fA])
        XCTAssertEqual(curve(1).step, [2, 4, 6, 8])
        XCTAssertEqual(curve(1).flops, [2, 4, 6, 8].map { $0 * fB })
        // The grown runs: A's 4 steps, then B's until scratch-B's 8 · fB is reached.
        let after = Int(((8 * fB - 4 * fA) / fB).rounded(.up))
        for i in 2...4 {
            let c = curve(i)
            XCTAssertEqual(runs[i]["steps"] as? Int, 4 + after)
            XCTAssertEqual(c.step.last, 4 + after)
            XCTAssertEqual(c.flops.last!, 4 * fA + Double(after) * fB, accuracy: 1e-3)
            XCTAssertGreaterThanOrEqual(c.flops.last!, 8 * fB)
            // Before growth the history is A's, to the bit.
            XCTAssertEqual(Array(c.loss.prefix(2)), curve(0).loss, "run \(i)")
            XCTAssertLessThan(c.loss.last!, curve(0).loss.last!, "run \(i) trained on")
        }
        XCTAssertTrue(try String(contentsOfFile: out + "/growth.svg", encoding: .utf8).hasPrefix("<svg"))

        let again = try TFC.run(arguments)
        XCTAssertSucceeded(again, "the rerun")
        XCTAssertEqual(again.stdout.components(separatedBy: ", skipped").count - 1, 5, again.stdout)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/growth.json")), json, "a rerun gives the same results")

        // Another config in the same directory is refused.
        _ = try fixture(dir, stepsA: 2)
        let other = try TFC.run(arguments)
        XCTAssertEqual(other.status, 1)
        XCTAssertEqual(other.stderr, "error: --out \(out) holds runs of another config (\(out)/config.json); choose another --out or delete it\n")
    }

    func testBadInputsAreRefusedWithOneLine() throws {
        let dir = try TFC.temporaryDirectory(self)
        let (config, data, _) = try fixture(dir)
        let missing = dir.appendingPathComponent("missing.txt").path
        let r = try TFC.run(["experiment", "growth", config, "--data", data, "--eval-data", missing, "--out", dir.appendingPathComponent("o").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --eval-data \(missing): cannot read it (make experiment prepares the corpus with scripts/experiment-corpus.sh)\n")
        // --results next to the config would replace it (both are growth.json).
        let replacing = try TFC.run(["experiment", "growth", config, "--data", data, "--eval-data", data, "--out", dir.appendingPathComponent("o").path,
                                     "--results", dir.path])
        XCTAssertEqual(replacing.status, 1)
        XCTAssertEqual(replacing.stderr, "error: --results \(dir.path): growth.json would replace the config \(config); choose another --results\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path), "nothing ran")
        try #"{"spec_a": "a.tfs"}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try TFC.run(["experiment", "growth", config, "--data", data, "--eval-data", data, "--out", dir.appendingPathComponent("o").path])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "\(config): error: the config lacks \"spec_b\"\n")
    }
}
