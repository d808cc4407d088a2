import XCTest
import TFSpec
@testable import TFIR

/// One negative test per verifier rule: a small graph that holds every op kind passes, and each
/// mutation breaks exactly one rule and must be reported with that rule's message.
final class VerifierTests: XCTestCase {
    static let config = ModelConfig(name: "v", vocab: 32, hidden: 16, heads: 2, layers: 1, context: 8)
    static let here = SourceLocation(file: "v.tfs", line: 3, column: 5)

    func site(_ name: String, tokens: Int = 4, in inFeatures: Int = 16, out: Int = 16) -> PattentionOp {
        PattentionOp(site: name, layer: 0, tokens: tokens, inFeatures: inFeatures, outFeatures: out, norm: .l2NormGelu, scale: nil)
    }

    /// tokens → embedding → layernorm → q (pattention + rotary), k/v (one fused op, column views)
    /// → attention → residual add → fused MLP with a residual epilogue → logits.
    func validGraph() -> Graph {
        var b = GraphBuilder()
        let a16 = TensorType.activations(16)
        let t = b.emit(.tokens, [], .tokenIDs)
        let x = b.emit(.embedding(table: "embed"), [t], a16)
        let h = b.emit(.layerNorm(LayerNormOp(eps: 1e-5)), [x], a16)
        let q0 = b.emit(.pattention(site("attention.query")), [h], a16, at: Self.here)
        let q = b.emit(.rotary(RotaryOp(heads: 2, headDim: 8, rotaryDims: 2, base: 10000)), [q0], a16)
        let kv = b.emit(.fusedPattention(FusedPattentionOp(prologue: nil, sites: [site("attention.key"), site("attention.value")],
                                                           rotary: [nil, nil], residual: false)), [h], .activations(32))
        let k = b.emit(.columns(start: 0, count: 16), [kv], a16)
        let v = b.emit(.columns(start: 16, count: 16), [kv], a16)
        let att = b.emit(.attention(AttentionOp(heads: 2, headDim: 8, causal: true, cacheSlot: 0)), [q, k, v], a16)
        let x1 = b.emit(.add, [x, att], a16)
        let x2 = b.emit(.fusedPattention(FusedPattentionOp(prologue: LayerNormOp(eps: 1e-5), sites: [site("mlp")], rotary: [nil], residual: true)),
                        [x1, x1], a16)
        let logits = b.emit(.logits(table: "embed"), [x2], .activations(32))
        return Graph(config: Self.config, instructions: b.instructions, output: logits, source: "v.tfs")
    }

    func index(_ g: Graph, _ name: String, _ nth: Int = 0) -> Int {
        g.instructions.indices.filter { g.instructions[$0].op.name == name }[nth]
    }

    /// The verifier's message for a graph that must fail.
    func message(_ g: Graph, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try g.verify()
            XCTFail("the verifier accepted a broken graph", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    func expect(_ g: Graph, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        let m = message(g, file: file, line: line)
        XCTAssertTrue(m.contains(fragment), "expected “\(fragment)” in “\(m)”", file: file, line: line)
    }

    func testTheValidGraphPasses() {
        XCTAssertNoThrow(try validGraph().verify())
    }

    func testValueDefinedTwice() {
        var g = validGraph()
        let i = index(g, "add")
        g.instructions[i].result = g.instructions[i - 1].result
        expect(g, "%8 = add: value %8 is defined twice")
    }

    func testOperandUsedBeforeItIsDefined() {
        var g = validGraph()
        g.instructions.swapAt(index(g, "layernorm"), index(g, "embedding"))
        expect(g, "%2 = layernorm: operand %1 is used before it is defined")
    }

    func testOperandCount() {
        var g = validGraph()
        g.instructions[index(g, "add")].operands.removeLast()
        expect(g, "%9 = add: expects 2 operands, has 1")
        g = validGraph()
        g.instructions[index(g, "fused_pattention", 1)].operands.removeLast()  // residual without its operand
        expect(g, "%10 = fused_pattention: expects 2 operands, has 1")
    }

    func testTokensResultType() {
        var g = validGraph()
        g.instructions[0].type = .activations(1)
        expect(g, "%0 = tokens: result must be [T] i32")
    }

    func testEmbeddingReadsTokenIDs() {
        // A second, valid embedding %97 of the tokens; the model's embedding then reads it.
        var g = validGraph()
        g.instructions.insert(Instruction(result: ValueID(97), op: .embedding(table: "embed"), operands: [ValueID(0)],
                                          type: .activations(16), location: nil), at: 1)
        g.instructions[index(g, "embedding", 1)].operands = [ValueID(97)]
        expect(g, "%1 = embedding: operand must be token ids")
    }

    func testWidthsOfEveryOp() {
        let cases: [(String, Int, (inout Instruction) -> Void, String)] = [
            ("embedding", 0, { $0.type = .activations(15) }, "%1 = embedding: result has type [T, 15] f32, expected [T, 16] f32"),
            ("layernorm", 0, { $0.type = .activations(15) }, "%2 = layernorm: operand has type [T, 16] f32, expected [T, 15] f32"),
            ("pattention", 0, { if case .pattention(var p) = $0.op { p.inFeatures = 8; $0.op = .pattention(p) } },
             "%3 = pattention: input has type [T, 16] f32, expected [T, 8] f32"),
            ("pattention", 0, { if case .pattention(var p) = $0.op { p.outFeatures = 8; $0.op = .pattention(p) } },
             "%3 = pattention: result has type [T, 16] f32, expected [T, 8] f32"),
            ("rotary", 0, { $0.op = .rotary(RotaryOp(heads: 1, headDim: 8, rotaryDims: 2, base: 10000)) },
             "%4 = rotary: input has type [T, 16] f32, expected [T, 8] f32"),
            ("attention", 0, { $0.op = .attention(AttentionOp(heads: 4, headDim: 8, causal: true, cacheSlot: 0)) },
             "%8 = attention: q/k/v has type [T, 16] f32, expected [T, 32] f32"),
            ("logits", 0, { $0.type = .activations(31) }, "%11 = logits: result has type [T, 31] f32, expected [T, 32] f32"),
            ("columns", 0, { $0.type = .activations(8) }, "%6 = columns: result has type [T, 8] f32, expected [T, 16] f32"),
            ("fused_pattention", 0, { $0.type = .activations(16) }, "%5 = fused_pattention: result has type [T, 16] f32, expected [T, 32] f32"),
            ("fused_pattention", 1, { $0.operands[1] = ValueID(5) }, "%10 = fused_pattention: residual has type [T, 32] f32, expected [T, 16] f32"),
        ]
        for (name, nth, mutate, fragment) in cases {
            var g = validGraph()
            mutate(&g.instructions[index(g, name, nth)])
            expect(g, fragment)
        }
    }

    func testTokenCountMustBePositive() {
        var g = validGraph()
        let i = index(g, "pattention")
        guard case .pattention(var p) = g.instructions[i].op else { return XCTFail() }
        p.tokens = 0
        g.instructions[i].op = .pattention(p)
        let m = message(g)
        XCTAssertTrue(m.contains("%3 = pattention: token count must be positive"), m)
        XCTAssertTrue(m.hasPrefix("v.tfs:3:5: error: IR verifier:"), "points at the spec: \(m)")
    }

    func testRotaryDims() {
        for dims in [3, 10] {
            var g = validGraph()
            g.instructions[index(g, "rotary")].op = .rotary(RotaryOp(heads: 2, headDim: 8, rotaryDims: dims, base: 10000))
            expect(g, "%4 = rotary: rotary dims \(dims) must be even and ≤ head_dim 8")
        }
    }

    func testKVCacheSlotUsedTwice() {
        var g = validGraph()
        let i = index(g, "attention")
        var second = g.instructions[i]
        second.result = ValueID(50)
        g.instructions.insert(second, at: i + 1)
        expect(g, "%50 = attention: KV cache slot 0 is used twice")
    }

    func testColumnsOutOfRange() {
        for (start, count) in [(24, 16), (-1, 4), (0, 0)] {
            var g = validGraph()
            let i = index(g, "columns")
            g.instructions[i].op = .columns(start: start, count: count)
            g.instructions[i].type = .activations(max(count, 1))
            expect(g, "%6 = columns: columns \(start)..<\(start + count) out of range of [T, 32] f32")
        }
    }

    func testMalformedSiteList() {
        var g = validGraph()
        let i = index(g, "fused_pattention")
        g.instructions[i].op = .fusedPattention(FusedPattentionOp(prologue: nil, sites: [site("attention.key"), site("attention.value")],
                                                                  rotary: [nil], residual: false))
        expect(g, "%5 = fused_pattention: malformed site list")
        g.instructions[i].op = .fusedPattention(FusedPattentionOp(prologue: nil, sites: [], rotary: [], residual: false))
        expect(g, "%5 = fused_pattention: malformed site list")
    }

    func testOutputMustBeDefined() {
        var g = validGraph()
        g.output = ValueID(77)
        XCTAssertEqual(message(g), "error: IR verifier: output %77 is not defined")
    }

    func testOutputMustBeLogits() {
        var g = validGraph()
        g.output = ValueID(10)
        XCTAssertEqual(message(g), "error: IR verifier: output has type [T, 16] f32, expected [T, 32] f32")
    }
}
