import XCTest
import TFSpec
@testable import TFIR

/// Sizes and constants that used to trap (integer overflow in the evaluator or in a tensor's
/// element count) are refused while lowering, with an error at the spec text that caused them.
final class OverflowTests: XCTestCase {
    /// The tiny header with `replace` applied, a few lets and a one-site block.
    func spec(_ replacements: [(String, String)] = [], lets: String = "let ffn = 4 * hidden") -> String {
        var header = """
        model "t" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 2
            context = 8
        }
        """
        for (old, new) in replacements { header = header.replacingOccurrences(of: old, with: new) }
        return header + "\n" + lets + """

        block(x) {
            h = layernorm(x)
            a = attention(h, h, h, heads: heads)
            return x + a + pattention(h, site: mlp, tokens: ffn)
        }
        """
    }

    /// The headline of the error lowering `text` gives, or nil when it lowers.
    func headline(_ text: String, memory: Int? = nil) -> String? {
        let source = SourceFile(path: "t.tfs", text: text)
        do {
            _ = try lower(try parse(source), source: source, memory: memory)
            return nil
        } catch let d as Diagnostic {
            return d.headline
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    func testConstantArithmeticOverflowIsAnError() {
        let min = "(-9223372036854775807 - 1)"
        let cases: [(lets: String, expected: String)] = [
            ("let ffn = 16 + 0 * (\(min) / (-1))", "t.tfs:8:20: error: integer overflow in -9223372036854775808 / -1"),
            ("let ffn = 16 + 0 * -\(min)", "t.tfs:8:20: error: integer overflow in -(-9223372036854775808)"),
            ("let ffn = 9223372036854775807 + 1", "t.tfs:8:11: error: integer overflow in 9223372036854775807 + 1"),
            ("let ffn = 4611686018427387904 * 2", "t.tfs:8:11: error: integer overflow in 4611686018427387904 * 2"),
            ("let ffn = \(min) - 1", "t.tfs:8:11: error: integer overflow in -9223372036854775808 - 1"),
            ("let ffn = 16 / 0", "t.tfs:8:11: error: division by zero"),
            ("let ffn = 16 % 0", "t.tfs:8:11: error: division by zero"),
        ]
        for c in cases {
            XCTAssertEqual(headline(spec(lets: c.lets)), c.expected, c.lets)
        }
    }

    /// `Int.min % -1` is 0 (Swift's `%` traps on it); `Int.min / 1` is fine.
    func testExtremeButValidArithmetic() throws {
        let text = spec(lets: "let ffn = 16 + (-9223372036854775807 - 1) % (-1) + 0 * ((-9223372036854775807 - 1) / 1)")
        let source = SourceFile(path: "t.tfs", text: text)
        let graph = try lower(try parse(source), source: source, memory: nil)
        XCTAssertEqual(graph.pattentionSites.map(\.tokens), [16, 16])
    }

    func testDimensionsAreBounded() {
        let max = SizeLimits.maximumDimension
        let cases: [(replacements: [(String, String)], lets: String, expected: String)] = [
            ([("hidden = 16", "hidden = 1099511627776")], "let ffn = 16", "t.tfs:3:14: error: 'hidden' must be at most \(max), got 1099511627776"),
            ([("hidden = 16", "hidden = 2147483648")], "let ffn = 16", "t.tfs:3:14: error: 'hidden' must be at most \(max), got 2147483648"),
            ([("hidden = 16", "hidden = 4294967296")], "let ffn = 16", "t.tfs:3:14: error: 'hidden' must be at most \(max), got 4294967296"),
            ([("vocab = 32", "vocab = 1152921504606846976")], "let ffn = 16", "t.tfs:2:13: error: 'vocab' must be at most \(max), got 1152921504606846976"),
            ([("context = 8", "context = 4611686018427387904")], "let ffn = 16", "t.tfs:6:15: error: 'context' must be at most \(max), got 4611686018427387904"),
            ([("layers = 2", "layers = 10000000")], "let ffn = 16", "t.tfs:5:14: error: 'layers' must be at most \(SizeLimits.maximumLayers), got 10000000"),
            ([], "let ffn = 1000000000000 * hidden", "t.tfs:12:53: error: token count must be at most \(max), got 16000000000000"),
        ]
        for c in cases {
            XCTAssertEqual(headline(spec(c.replacements, lets: c.lets)), c.expected, "\(c.replacements) \(c.lets)")
        }
    }

    /// A tensor above the per-tensor limit is refused at the op that reads it, whatever the machine.
    func testTensorElementLimit() {
        // ffn tokens × hidden = 2^30 · 2^5 > 2^34.
        let text = spec([("hidden = 16", "hidden = 32")], lets: "let ffn = 1073741824")
        let expected = "t.tfs:12:20: error: parameter 'layers.0.mlp.key_param_tokens' [1073741824, 32] has 3.44e+10 elements, more than the limit of \(SizeLimits.maximumTensorElements) (64.0 GiB as float32) for one tensor"
        XCTAssertEqual(headline(text), expected)
    }

    /// Weights, KV cache and activations at `context` are checked against the memory given, with
    /// the numbers in the message.
    func testMachineMemoryBound() {
        // 2 layers × (k, v) × 2^24 positions × 16 floats × 4 bytes = 4 GiB of cache; logits 2 GiB.
        let longContext = spec([("context = 8", "context = 16777216")], lets: "let ffn = 16")
        XCTAssertEqual(headline(longContext, memory: 1 << 30),
                       "t.tfs:6:15: error: at context 16777216 the model needs 6.0 GiB of memory (weights 6.0 KiB, KV cache 4.0 GiB, activations 2.0 GiB); this machine has 1.0 GiB; lower 'context'")
        XCTAssertNil(headline(longContext, memory: 8 << 30))
        // 2 layers × 2 tensors × 2^26 tokens × 16 + the 32 × 16 embedding = 2^32 + 512 floats: 16 GiB.
        let wide = spec(lets: "let ffn = 67108864")
        let parameters = 2 * 2 * 67_108_864 * 16 + 32 * 16
        XCTAssertEqual(headline(wide, memory: 1 << 30),
                       "t.tfs:1:1: error: the model needs 16.0 GiB of weights (\(parameters) parameters as float32); this machine has 1.0 GiB of memory")
        XCTAssertNil(headline(wide, memory: nil))
    }

    /// `Parameter.elementCount` and the parameter total cannot overflow once a spec has lowered:
    /// the largest dimensions allowed still multiply inside an Int.
    func testLargestAllowedSizesMultiply() {
        let d = SizeLimits.maximumDimension
        XCTAssertFalse(d.multipliedReportingOverflow(by: d).overflow)
        XCTAssertFalse((SizeLimits.maximumTensorElements * 4).multipliedReportingOverflow(by: 16 * SizeLimits.maximumLayers).overflow)
    }
}
