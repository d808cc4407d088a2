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

    static let tokens = GradientSpecVariants.tokens

    /// Runs `tfc grad` and the finite-difference reference on spec text; checks every tensor.
    func check(_ specText: String, tokens: [Int] = tokens, block: String = "tokenformer", _ what: String,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TFC.temporaryDirectory(self)
        let (spec, weights) = try GradientSpecVariants.materialize(specText, in: dir, file: file, line: line)
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

    func specText(_ name: String) throws -> String { try GradientSpecVariants.text(name) }

    func testTinyEveryVariant() throws {
        for (text, what) in try GradientSpecVariants.tinyEveryNorm() { try check(text, what) }
    }

    /// Per-site variants, a softmax site and pinned τ in one block.
    func testPerSiteVariantsAndPinnedScale() throws {
        try check(try GradientSpecVariants.perSiteVariantsAndPinnedScale(), "tiny per-site")
    }

    func testAffineFinalNormAndUntiedHead() throws {
        try check(try GradientSpecVariants.affineFinalNormAndUntiedHead(), "tiny affine untied")
    }

    func testParallelBlock() throws {
        try check(try specText("specs/examples/parallel.tfs"), tokens: GradientSpecVariants.parallelTokens, block: "parallel", "parallel")
    }

    /// No rotary, per-site variants (softmax, pinned τ), a two-Pattention MLP, affine final norm, untied head.
    func testTwoMLP() throws {
        try check(try specText("specs/examples/two-mlp.tfs"), tokens: GradientSpecVariants.twoMLPTokens, block: "two-mlp", "two-mlp")
    }

    /// After `tfc grow` (tokens doubled at every site with zero keys and pinned τ, one zero-valued
    /// layer inserted): the grown model's gradients, new tokens and layer included.
    func testAfterGrowth() throws {
        let dir = try TFC.temporaryDirectory(self)
        let grown = try GradientSpecVariants.grownTiny(in: dir)
        try check(spec: grown.spec, weights: grown.weights, in: dir, "grown tiny", zero: grown.zero)
    }
}
