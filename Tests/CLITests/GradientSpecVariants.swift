import Foundation
import XCTest

/// The spec variants every gradient test runs on (the reference check against finite differences
/// and the fused-vs-naive check): one place, so both cover the same models.
enum GradientSpecVariants {
    static let tokens = [1, 5, 9, 200, 3, 3, 77, 0, 255, 14, 15, 92, 65, 35]

    static func text(_ name: String) throws -> String {
        try String(contentsOf: TFC.root.appendingPathComponent(name), encoding: .utf8)
    }

    /// Writes spec text into `dir` as model.tfs and initialises its weights (`tfc init --seed 7`);
    /// returns both paths.
    static func materialize(_ specText: String, in dir: URL,
                            file: StaticString = #filePath, line: UInt = #line) throws -> (spec: String, weights: String) {
        let spec = dir.appendingPathComponent("model.tfs").path
        try specText.write(toFile: spec, atomically: true, encoding: .utf8)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", "7"]), "tfc init", file: file, line: line)
        return (spec, weights)
    }

    /// tiny with every Pattention norm in turn: (spec text, name).
    static func tinyEveryNorm() throws -> [(String, String)] {
        let tiny = try text("specs/tiny.tfs")
        return ["l2_norm_gelu", "gelu_l2_norm", "softmax"].map {
            (tiny.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \($0)"), "tiny \($0)")
        }
    }

    /// Per-site variants, a softmax site and pinned τ in one block.
    static func perSiteVariantsAndPinnedScale() throws -> String {
        let text = try text("specs/tiny.tfs")
            .replacingOccurrences(of: "site: attention.query, tokens: qkv)", with: "site: attention.query, tokens: qkv, norm: softmax)")
            .replacingOccurrences(of: "site: attention.key, tokens: qkv)", with: "site: attention.key, tokens: qkv, norm: gelu_l2_norm, scale: 5.0)")
            .replacingOccurrences(of: "tokens: ffn)", with: "tokens: ffn, scale: 11.5)")
        XCTAssertTrue(text.contains("norm: softmax") && text.contains("scale: 11.5"))
        return text
    }

    static func affineFinalNormAndUntiedHead() throws -> String {
        let text = try text("specs/tiny.tfs")
            .replacingOccurrences(of: "final_norm = plain", with: "final_norm = affine")
            .replacingOccurrences(of: "tie_embeddings = true", with: "tie_embeddings = false")
        XCTAssertTrue(text.contains("final_norm = affine") && text.contains("tie_embeddings = false"))
        return text
    }

    static let parallelTokens = [3, 1, 4, 1, 5, 9, 2, 6, 199, 0]
    static let twoMLPTokens = [3, 1, 4, 1, 5, 9, 2, 6, 149, 0, 77]

    /// tiny grown with `tfc grow` (tokens doubled at every site with zero keys and pinned τ, one
    /// zero-valued layer inserted at 1), in `dir`: the spec, the weights, and the tensors whose
    /// gradient is exactly zero by construction (the inserted layer's, except its proj and mlp
    /// values: nothing upstream of those two in that layer reaches the loss).
    static func grownTiny(in dir: URL) throws -> (spec: String, weights: String, zero: (String) -> Bool) {
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path, grownSpec = dir.appendingPathComponent("grown.tfs").path
        let grownWeights = dir.appendingPathComponent("grown.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", tiny, "-o", weights, "--seed", "7"]), "tfc init")
        XCTAssertSucceeded(try TFC.run(["grow", tiny, "--weights", weights, "-o", grownSpec, "--out-weights", grownWeights,
                                        "--tokens", "all=x2", "--layers", "+1", "--at", "1", "--backend", "naive"]), "tfc grow")
        let live: Set = ["layers.1.attention.proj.value_param_tokens", "layers.1.mlp.value_param_tokens"]
        return (grownSpec, grownWeights, { $0.hasPrefix("layers.1.") && !live.contains($0) })
    }
}
