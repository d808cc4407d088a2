import XCTest
import TFIR
import TFSpec
import TFPasses
import TFAutodiff

/// The autodiff pass itself: what it saves, which rules it uses, what it refuses.
final class DifferentiateTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func graph(_ path: String) throws -> Graph {
        let source = try SourceFile.load(Self.root.appendingPathComponent(path).path)
        return try lower(try parse(source), source: source)
    }

    func testEveryUnfusedOpHasARule() throws {
        for path in ["specs/tiny.tfs", "specs/examples/parallel.tfs", "specs/examples/two-mlp.tfs"] {
            let g = try graph(path)
            for inst in g.instructions where inst.op != .tokens {
                XCTAssertNotNil(BackwardRules.rule(for: inst.op), "\(path): \(inst.op.name)")
            }
            XCTAssertEqual(try differentiate(g).steps.count, g.instructions.count - 1, path)
        }
        XCTAssertEqual(Set(BackwardRules.all.map(\.op)).count, BackwardRules.all.count, "one rule per op")
    }

    /// Op inputs that a rule reads are saved; rotary inputs, sums and everything recomputed are not.
    func testSavesOnlyWhatRulesRead() throws {
        let g = try graph("specs/tiny.tfs")
        let grad = try differentiate(g)
        var expected = Set<ValueID>([g.output])
        for inst in g.instructions {
            switch inst.op {
            case .embedding, .layerNorm, .pattention, .logits: expected.insert(inst.operands[0])
            case .attention: inst.operands.forEach { expected.insert($0) }
            default: break
            }
        }
        XCTAssertEqual(Set(grad.saved.map(\.value)), expected)
        for inst in g.instructions { if case .rotary = inst.op { XCTAssertFalse(grad.isSaved(inst.operands[0]), "rotary input \(inst.operands[0])") } }
        XCTAssertEqual(grad.parameters.map(\.name), g.parameters.map(\.name))
        // Every weight gets its gradient from some step; the tied table from two.
        let writers = grad.steps.flatMap(\.weights)
        for p in g.parameters { XCTAssertTrue(writers.contains(p.name), p.name) }
        XCTAssertEqual(writers.filter { $0 == "embed.weight" }.count, 2)
    }

    func testRefusesTheFusedGraph() throws {
        let fused = try PassPipeline.fusion.run(try graph("specs/tiny.tfs"))
        XCTAssertThrowsError(try differentiate(fused)) { error in
            XCTAssertTrue("\(error)".contains("error: op 'fused_pattention'"), "\(error)")
            XCTAssertTrue("\(error)".contains("differentiate the unfused graph"), "\(error)")
        }
    }

    func testGradIRNamesSavedRecomputedAndEveryGradient() throws {
        let text = try differentiate(try graph("specs/examples/two-mlp.tfs")).text
        XCTAssertTrue(text.contains("// saved for the backward pass"))
        XCTAssertTrue(text.contains("recomputes S = X·Kᵀ and Θ(S) of [T, 64]"))
        XCTAssertTrue(text.contains("d[final_norm.weight]") && text.contains("d[lm_head.weight]"))
        XCTAssertTrue(text.contains("loss, d%"))
    }
}
