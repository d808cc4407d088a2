import XCTest
import TFSpec
@testable import TFIR

/// Lowering and semantic diagnostics: every error a user can make in a block or the model header
/// is reported at the right place with a message that says what is wrong.
final class LoweringTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func lowerFile(_ name: String) throws -> Graph {
        let source = try SourceFile.load(Self.repoRoot.appendingPathComponent(name).path)
        return try lower(try parse(source), source: source)
    }

    /// A spec with the tiny header and the given block body (and extra lets).
    func spec(_ body: String, header: String = "", lets: String = "") -> String {
        """
        model "t" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 2
            context = 8
        \(header)
        }
        \(lets)
        block(x) {
        \(body)
        }
        """
    }

    /// The rendered diagnostic's first line for a spec that must fail.
    func diagnostic(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let source = SourceFile(path: "t.tfs", text: text)
        do {
            _ = try lower(try parse(source), source: source)
            XCTFail("expected an error", file: file, line: line)
            return ""
        } catch let d as Diagnostic {
            return d.headline
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
            return ""
        }
    }

    func testTinyLowersToUnrolledLayers() throws {
        let g = try lowerFile("specs/tiny.tfs")
        XCTAssertEqual(g.config.layers, 2)
        let sites = g.pattentionSites
        XCTAssertEqual(sites.count, 10)
        XCTAssertEqual(sites.map(\.keyName).first, "layers.0.attention.query.key_param_tokens")
        XCTAssertEqual(sites.last?.valueName, "layers.1.mlp.value_param_tokens")
        XCTAssertEqual(sites.last?.tokens, 256)
        XCTAssertEqual(g.cacheSlots, 2)
        // Rotary: head_dim 16 × 0.25 = 4 dims, on q and k of each layer.
        let rotaries = g.instructions.compactMap { inst -> RotaryOp? in if case .rotary(let r) = inst.op { return r } else { return nil } }
        XCTAssertEqual(rotaries.count, 4)
        XCTAssertEqual(rotaries.first?.rotaryDims, 4)
        XCTAssertNoThrow(try g.verify())
        // Parameters: embedding + 5 sites × 2 tensors × 2 layers.
        XCTAssertEqual(g.parameters.count, 21)
        let expected = 256 * 64 + 2 * (4 * 2 * 64 * 64 + 2 * 256 * 64)
        XCTAssertEqual(g.parameterCount, expected)
    }

    func testEveryShippedSpecLowers() throws {
        let specs = try FileManager.default.contentsOfDirectory(atPath: Self.repoRoot.appendingPathComponent("specs").path).filter { $0.hasSuffix(".tfs") }
        XCTAssertGreaterThanOrEqual(specs.count, 6)
        for name in specs {
            let g = try lowerFile("specs/\(name)")
            XCTAssertGreaterThan(g.parameterCount, 0, name)
        }
        let g150 = try lowerFile("specs/tokenformer-150m.tfs")
        // 12 layers × (3·2·768·768 + 2·768·768 + 2·3072·768) + 50304·768 + the affine final norm 2·768
        XCTAssertEqual(g150.parameterCount, 12 * (6 * 768 * 768 + 2 * 768 * 768 + 2 * 3072 * 768) + 50304 * 768 + 2 * 768)
    }

    func testDifferentBlockShapesLower() throws {
        for name in ["specs/examples/parallel.tfs", "specs/examples/two-mlp.tfs", "specs/examples/mid.tfs"] {
            XCTAssertNoThrow(try lowerFile(name), name)
        }
        let g = try lowerFile("specs/examples/two-mlp.tfs")
        let up = g.pattentionSites.first { $0.site == "mlp.up" }!
        XCTAssertEqual(up.outFeatures, 80)
        XCTAssertEqual(g.pattentionSites.first { $0.site == "attention.query" }?.norm, .softmax)
        XCTAssertEqual(g.pattentionSites.first { $0.site == "attention.value" }?.scale, 3.5)
        XCTAssertTrue(g.parameters.contains { $0.name == "lm_head.weight" })
        XCTAssertTrue(g.parameters.contains { $0.name == "final_norm.bias" })
        XCTAssertFalse(g.instructions.contains { if case .rotary = $0.op { return true } else { return false } })
    }

    func testUnknownIdentifier() {
        XCTAssertEqual(diagnostic(spec("    h = layernorm(y)\n    return x + h")),
                       "t.tfs:11:19: error: unknown identifier 'y'")
        XCTAssertEqual(diagnostic(spec("    h = pattention(x, site: mlp, tokens: hiden)\n    return x + h")),
                       "t.tfs:11:42: error: unknown identifier 'hiden'; did you mean 'hidden'?")
    }

    func testUnknownOpAndWrongArity() {
        XCTAssertEqual(diagnostic(spec("    h = layernrom(x)\n    return h")),
                       "t.tfs:11:9: error: unknown op 'layernrom'; did you mean 'layernorm'?; the ops are add, attention, layernorm, pattention")
        XCTAssertEqual(diagnostic(spec("    h = layernorm(x, x)\n    return h")),
                       "t.tfs:11:9: error: layernorm expects 1 tensor argument (x), got 2")
        XCTAssertEqual(diagnostic(spec("    a = attention(x, x, heads: 2)\n    return a")),
                       "t.tfs:11:9: error: attention expects 3 tensor arguments (q, k, v), got 2")
        XCTAssertEqual(diagnostic(spec("    h = pattention(x, site: mlp)\n    return h")),
                       "t.tfs:11:9: error: pattention needs the argument 'tokens:'")
        XCTAssertEqual(diagnostic(spec("    h = pattention(x, site: mlp, tokens: 4, size: 3)\n    return h")),
                       "t.tfs:11:45: error: unknown argument 'size' for pattention; expected one of site, tokens, out, scale, norm")
    }

    func testHiddenNotDivisibleByHeads() {
        let text = spec("    return x").replacingOccurrences(of: "heads = 2", with: "heads = 3")
        XCTAssertEqual(diagnostic(text), "t.tfs:4:13: error: hidden (16) is not divisible by heads (3)")
    }

    func testShapeMismatch() {
        XCTAssertEqual(diagnostic(spec("    h = pattention(x, site: mlp, tokens: 4, out: 8)\n    return x + h")),
                       "t.tfs:12:12: error: shape mismatch: cannot add [T, 16] and [T, 8]")
        XCTAssertEqual(diagnostic(spec("    h = pattention(x, site: mlp, tokens: 4, out: 8)\n    return h")),
                       "t.tfs:12:12: error: shape mismatch: the block must return [T, 16] (hidden), but this is [T, 8]")
    }

    func testCycle() {
        XCTAssertEqual(diagnostic(spec("    a = x + b\n    b = a + x\n    return b")),
                       "t.tfs:11:5: error: cycle in block: a → b → a")
    }

    func testSiteUsedTwice() {
        XCTAssertEqual(diagnostic(spec("    a = pattention(x, site: mlp, tokens: 4)\n    b = pattention(a, site: mlp, tokens: 4)\n    return b")),
                       "t.tfs:12:29: error: site 'mlp' is already used at 11:29; each site names its own weights")
    }

    func testNegativeAndZeroCounts() {
        XCTAssertEqual(diagnostic(spec("    a = pattention(x, site: mlp, tokens: -4)\n    return a")),
                       "t.tfs:11:42: error: token count must be positive, got -4")
        XCTAssertEqual(diagnostic(spec("    a = pattention(x, site: mlp, tokens: ffn)\n    return a", lets: "let ffn = hidden - 16")),
                       "t.tfs:11:42: error: token count must be positive, got 0")
        let text = spec("    return x").replacingOccurrences(of: "layers = 2", with: "layers = -1")
        XCTAssertEqual(diagnostic(text), "t.tfs:5:14: error: 'layers' must be at least 1, got -1")
    }

    func testConstantsAndArithmetic() throws {
        let text = spec("    a = pattention(x, site: mlp, tokens: ffn)\n    return x + a", lets: "let ffn = (half + 2) * 4 % 7 + mult\nlet half = hidden / 2\nlet mult = 3")
        let source = SourceFile(path: "t.tfs", text: text)
        let g = try lower(try parse(source), source: source)
        XCTAssertEqual(g.pattentionSites.first?.tokens, (8 + 2) * 4 % 7 + 3)
        XCTAssertEqual(diagnostic(spec("    return x", lets: "let a = b + 1\nlet b = a")),
                       "t.tfs:9:5: error: constant 'a' depends on itself: a → b → a")
        XCTAssertEqual(diagnostic(spec("    return x", lets: "let a = hidden / 3")),
                       "t.tfs:9:9: error: 16 / 3 does not divide evenly")
    }

    func testUnusedValueAndModelFieldErrors() {
        XCTAssertEqual(diagnostic(spec("    h = layernorm(x)\n    return x")),
                       "t.tfs:11:5: error: 'h' is computed but never used")
        XCTAssertEqual(diagnostic(spec("    return x", header: "    vocabulary = 3")),
                       "t.tfs:7:5: error: unknown model field 'vocabulary'; the fields are vocab, hidden, heads, layers, context, tie_embeddings, pattention, norm_eps, final_norm, rotary_fraction, rotary_base, end_token, tokenizer")
        XCTAssertEqual(diagnostic(spec("    return x", header: "    pattention = l2_norm")),
                       "t.tfs:7:18: error: 'pattention' must be one of l2_norm_gelu, gelu_l2_norm, softmax, found l2_norm")
    }

    func testPrinterShowsOpsAndAttributes() throws {
        let text = try lowerFile("specs/tiny.tfs").text
        XCTAssertTrue(text.hasPrefix("graph \"tiny\"(tokens: [T] i32) -> [T, 256] f32 {"))
        XCTAssertTrue(text.contains("= pattention %"))
        XCTAssertTrue(text.contains("layers.1.mlp, tokens=256, 64->64, norm=l2_norm_gelu, scale=sqrt(256)"))
        XCTAssertTrue(text.contains("attention %"))
    }

    func testVerifierRejectsBrokenGraphs() throws {
        var g = try lowerFile("specs/tiny.tfs")
        let i = g.instructions.firstIndex { if case .add = $0.op { return true } else { return false } }!
        g.instructions[i].operands[0] = ValueID(10_000)
        XCTAssertThrowsError(try g.verify()) { error in
            XCTAssertTrue("\(error)".contains("operand %10000 is used before it is defined"), "\(error)")
            XCTAssertTrue("\(error)".contains("tiny.tfs:"), "points at the spec: \(error)")
        }
    }
}
