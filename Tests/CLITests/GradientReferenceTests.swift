import Foundation
import XCTest

/// `tfc grad` (the naive backend running the backward graph of the autodiff pass) against float64
/// central finite differences of the independent NumPy reference forward
/// (Tests/reference/tokenformer_grad_ref.py): the loss, and for every weight tensor a few elements
/// (one of them tfc's largest) and random directions over the whole tensor.
final class GradientReferenceTests: XCTestCase {
    struct Report: Decodable {
        struct Check: Decodable { var tensor: String; var check: String; var reference: Double; var ours: Double }
        var loss: Double
        var missing: [String]
        var extra: [String]
        var checks: [Check]
        var scale: [String: Double]
    }

    static let tokens = [1, 5, 9, 200, 3, 3, 77, 0, 255, 14, 15, 92, 65, 35]

    /// Runs `tfc grad` and the finite-difference reference on spec text; checks every tensor.
    func check(_ specText: String, tokens: [Int] = tokens, block: String = "tokenformer", _ what: String,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = dir.appendingPathComponent("model.tfs").path
        try specText.write(toFile: spec, atomically: true, encoding: .utf8)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", "7"]), "tfc init", file: file, line: line)
        try check(spec: spec, weights: weights, in: dir, tokens: tokens, block: block, what, file: file, line: line)
    }

    /// The same on an existing spec file and weights.
    /// `zero` names the tensors whose gradient is exactly zero by construction; every other one
    /// must have a non-zero gradient, so no check is vacuous.
    func check(spec: String, weights: String, in dir: URL, tokens: [Int] = tokens, block: String = "tokenformer", _ what: String,
               zero: (String) -> Bool = { _ in false }, file: StaticString = #filePath, line: UInt = #line) throws {
        let config = dir.appendingPathComponent("config.json").path
        let grads = dir.appendingPathComponent("g.safetensors").path
        let report = dir.appendingPathComponent("checks.json").path
        let tokenList = tokens.map(String.init).joined(separator: ",")

        let checked = try TFC.run(["check", spec, "--json"])
        XCTAssertSucceeded(checked, "tfc check", file: file, line: line)
        try checked.stdout.write(toFile: config, atomically: true, encoding: .utf8)
        let grad = try TFC.run(["grad", spec, "--weights", weights, "--tokens", tokenList, "-o", grads])
        XCTAssertSucceeded(grad, "tfc grad", file: file, line: line)
        XCTAssertSucceeded(try TFC.python([TFC.root.appendingPathComponent("Tests/reference/tokenformer_grad_ref.py").path,
                                           "--config", config, "--weights", weights, "--tokens", tokenList,
                                           "--grads", grads, "--out", report, "--block", block]), "reference", file: file, line: line)
        let result = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: report)))

        XCTAssertEqual(result.missing, [], "\(what): weights without a gradient", file: file, line: line)
        XCTAssertEqual(result.extra, [], "\(what): gradients of no weight", file: file, line: line)
        let printed = grad.stdout.split(separator: "\n").first { $0.hasPrefix("loss = ") }.flatMap { Double($0.dropFirst(7)) }
        XCTAssertNotNil(printed, "\(what): no 'loss = …' line in \(grad.stdout)", file: file, line: line)
        XCTAssertEqual(printed ?? 0, result.loss, accuracy: 1e-5, "\(what): loss", file: file, line: line)
        XCTAssertFalse(result.checks.isEmpty, file: file, line: line)
        let tensors = Set(result.checks.map(\.tensor))
        XCTAssertEqual(tensors.count, result.scale.count, "\(what): every tensor is checked", file: file, line: line)
        for c in result.checks {
            // Observed float32-vs-float64 errors are ~1e-7 of the tensor's largest gradient; a wrong
            // rule is off by the size of the gradient itself.
            let scale = result.scale[c.tensor] ?? 0
            if zero(c.tensor) {
                XCTAssertEqual(scale, 0, "\(what): \(c.tensor) should have a zero gradient", file: file, line: line)
            } else {
                XCTAssertGreaterThan(scale, 0, "\(what): \(c.tensor) has an all-zero gradient", file: file, line: line)
            }
            XCTAssertEqual(c.ours, c.reference, accuracy: 2e-5 * scale + 1e-4 * abs(c.reference),
                           "\(what): \(c.tensor) \(c.check)", file: file, line: line)
        }
    }

    func specText(_ name: String) throws -> String {
        try String(contentsOf: TFC.root.appendingPathComponent(name), encoding: .utf8)
    }

    func testTinyEveryVariant() throws {
        let tiny = try specText("specs/tiny.tfs")
        for variant in ["l2_norm_gelu", "gelu_l2_norm", "softmax"] {
            try check(tiny.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \(variant)"), "tiny \(variant)")
        }
    }

    /// Per-site variants, a softmax site and pinned τ in one block.
    func testPerSiteVariantsAndPinnedScale() throws {
        let text = try specText("specs/tiny.tfs")
            .replacingOccurrences(of: "site: attention.query, tokens: qkv)", with: "site: attention.query, tokens: qkv, norm: softmax)")
            .replacingOccurrences(of: "site: attention.key, tokens: qkv)", with: "site: attention.key, tokens: qkv, norm: gelu_l2_norm, scale: 5.0)")
            .replacingOccurrences(of: "tokens: ffn)", with: "tokens: ffn, scale: 11.5)")
        XCTAssertTrue(text.contains("norm: softmax") && text.contains("scale: 11.5"))
        try check(text, "tiny per-site")
    }

    func testAffineFinalNormAndUntiedHead() throws {
        let text = try specText("specs/tiny.tfs")
            .replacingOccurrences(of: "final_norm = plain", with: "final_norm = affine")
            .replacingOccurrences(of: "tie_embeddings = true", with: "tie_embeddings = false")
        try check(text, "tiny affine untied")
    }

    func testParallelBlock() throws {
        try check(try specText("specs/examples/parallel.tfs"), tokens: [3, 1, 4, 1, 5, 9, 2, 6, 199, 0], block: "parallel", "parallel")
    }

    /// No rotary, per-site variants (softmax, pinned τ), a two-Pattention MLP, affine final norm, untied head.
    func testTwoMLP() throws {
        try check(try specText("specs/examples/two-mlp.tfs"), tokens: [3, 1, 4, 1, 5, 9, 2, 6, 149, 0, 77], block: "two-mlp", "two-mlp")
    }

    /// After `tfc grow` (tokens doubled at every site with zero keys and pinned τ, one zero-valued
    /// layer inserted): the grown model's gradients, new tokens and layer included.
    func testAfterGrowth() throws {
        let dir = try TFC.temporaryDirectory(self)
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path, grownSpec = dir.appendingPathComponent("grown.tfs").path
        let grownWeights = dir.appendingPathComponent("grown.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", tiny, "-o", weights, "--seed", "7"]), "tfc init")
        XCTAssertSucceeded(try TFC.run(["grow", tiny, "--weights", weights, "-o", grownSpec, "--out-weights", grownWeights,
                                        "--tokens", "all=x2", "--layers", "+1", "--at", "1", "--backend", "naive"]), "tfc grow")
        // The inserted layer 1 has zero proj and mlp values: nothing upstream of them in that layer
        // reaches the loss, so only those two value tensors get a gradient there.
        let live: Set = ["layers.1.attention.proj.value_param_tokens", "layers.1.mlp.value_param_tokens"]
        try check(spec: grownSpec, weights: grownWeights, in: dir, "grown tiny",
                  zero: { $0.hasPrefix("layers.1.") && !live.contains($0) })
    }
}
