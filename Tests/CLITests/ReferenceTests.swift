import Foundation
import XCTest
import TFWeights

/// The naive backend against the independent NumPy reference (Tests/reference/tokenformer_ref.py),
/// end to end through the CLI: `tfc check --json` gives the reference its config, `tfc init`
/// writes the weights both read, and the logits must agree within 1e-4 max-abs.
final class ReferenceTests: XCTestCase {
    /// Runs spec text through tfc and the reference; returns the max-abs logit difference.
    func compare(specText: String, tokens: [Int], backend: String = "naive", block: String = "tokenformer",
                 file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let dir = try TFC.temporaryDirectory(self)
        let spec = dir.appendingPathComponent("model.tfs").path
        try specText.write(toFile: spec, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("config.json").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        let ours = dir.appendingPathComponent("ours.npy").path
        let theirs = dir.appendingPathComponent("theirs.npy").path
        let tokenList = tokens.map(String.init).joined(separator: ",")

        let check = try TFC.run(["check", spec, "--json"])
        XCTAssertSucceeded(check, "tfc check", file: file, line: line)
        try check.stdout.write(toFile: config, atomically: true, encoding: .utf8)
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", "7"]), "tfc init", file: file, line: line)
        XCTAssertSucceeded(try TFC.run(["run", spec, "--weights", weights, "--tokens", tokenList, "--backend", backend, "--logits", ours]), "tfc run", file: file, line: line)
        let reference = try TFC.python([TFC.root.appendingPathComponent("Tests/reference/tokenformer_ref.py").path,
                                        "--config", config, "--weights", weights, "--tokens", tokenList, "--out", theirs, "--block", block])
        XCTAssertSucceeded(reference, "reference", file: file, line: line)

        let a = try Npy.read(path: ours), b = try Npy.read(path: theirs)
        XCTAssertEqual(a.shape, [tokens.count, b.shape[1]], file: file, line: line)
        XCTAssertEqual(a.shape, b.shape, file: file, line: line)
        var worst: Float = 0
        for (x, y) in zip(a.data, b.data) { worst = max(worst, abs(x - y)) }
        XCTAssertFalse(a.data.contains { !$0.isFinite }, "non-finite logits", file: file, line: line)
        // The logits are O(1): a wrong op would show up far above 1e-4.
        XCTAssertGreaterThan(b.data.map(abs).max() ?? 0, 0.05, "reference logits are degenerate", file: file, line: line)
        return worst
    }

    func specText(_ name: String) throws -> String {
        try String(contentsOf: TFC.root.appendingPathComponent(name), encoding: .utf8)
    }

    static let tokens17 = [1, 5, 9, 200, 3, 3, 77, 0, 255, 14, 15, 92, 65, 35, 89, 79, 32]

    func testTinyAllVariants() throws {
        let tiny = try specText("specs/tiny.tfs")
        for variant in ["l2_norm_gelu", "gelu_l2_norm", "softmax"] {
            let text = tiny.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \(variant)")
            let diff = try compare(specText: text, tokens: Self.tokens17)
            XCTAssertLessThanOrEqual(diff, 1e-4, variant)
        }
    }

    func testAffineFinalNormAndUntiedEmbeddings() throws {
        let tiny = try specText("specs/tiny.tfs")
            .replacingOccurrences(of: "final_norm = plain", with: "final_norm = affine")
            .replacingOccurrences(of: "tie_embeddings = true", with: "tie_embeddings = false")
        XCTAssertLessThanOrEqual(try compare(specText: tiny, tokens: Self.tokens17), 1e-4)
    }

    /// hidden 192, 6 heads, 3 layers, tokens 96/64/384, 33 input tokens, every variant.
    func testMidSizedAllVariants() throws {
        let mid = try specText("specs/examples/mid.tfs")
        let tokens = (0..<33).map { ($0 * 37 + 11) % 320 }
        for variant in ["l2_norm_gelu", "gelu_l2_norm", "softmax"] {
            let text = mid.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \(variant)")
            XCTAssertLessThanOrEqual(try compare(specText: text, tokens: tokens), 1e-4, variant)
        }
    }

    /// The fused backend against the same independent reference (it is also checked against the
    /// naive backend op by op in TFCodegenTests).
    func testFusedBackendAgainstReference() throws {
        let tiny = try specText("specs/tiny.tfs")
        for variant in ["l2_norm_gelu", "gelu_l2_norm", "softmax"] {
            let text = tiny.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \(variant)")
            XCTAssertLessThanOrEqual(try compare(specText: text, tokens: Self.tokens17, backend: "fused"), 1e-4, variant)
        }
        let mid = try specText("specs/examples/mid.tfs")
        XCTAssertLessThanOrEqual(try compare(specText: mid, tokens: (0..<33).map { ($0 * 37 + 11) % 320 }, backend: "fused"), 1e-4)
        let parallel = try specText("specs/examples/parallel.tfs")
        XCTAssertLessThanOrEqual(try compare(specText: parallel, tokens: [3, 1, 4, 1, 5, 9, 2, 6], backend: "fused", block: "parallel"), 1e-4)
    }

    func testParallelBlockAndPinnedScale() throws {
        let parallel = try specText("specs/examples/parallel.tfs")
        XCTAssertLessThanOrEqual(try compare(specText: parallel, tokens: [3, 1, 4, 1, 5, 9, 2, 6], block: "parallel"), 1e-4)
        let pinned = try specText("specs/tiny.tfs").replacingOccurrences(of: "tokens: ffn)", with: "tokens: ffn, scale: 11.5)")
        XCTAssertLessThanOrEqual(try compare(specText: pinned, tokens: Self.tokens17), 1e-4)
    }
}
