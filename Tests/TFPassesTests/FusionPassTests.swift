import XCTest
import TFIR
import TFNaive
@testable import TFPasses

/// Each fusion pass, one at a time and as the whole pipeline: the rewritten graph has the shape
/// the pass promises, and the naive backend (which runs fused ops by composing their parts)
/// gives the same logits as on the unfused graph.
final class FusionPassTests: XCTestCase {
    func ops(_ g: Graph) -> [String] { g.instructions.map(\.op.name) }

    func count(_ name: String, in g: Graph) -> Int { ops(g).filter { $0 == name }.count }

    func fusedOps(_ g: Graph) -> [FusedPattentionOp] {
        g.instructions.compactMap { if case .fusedPattention(let f) = $0.op { return f } else { return nil } }
    }

    /// Logits of both graphs on the same weights and tokens.
    func assertSameLogits(_ a: Graph, _ b: Graph, tokens: [Int32], tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        let weights = RandomWeights(a)
        let x = NaiveExecutor(graph: a, weights: weights.lookup, threads: 1).forward(tokens)
        let y = NaiveExecutor(graph: b, weights: weights.lookup, threads: 1).forward(tokens)
        XCTAssertLessThanOrEqual(maxAbsDifference(x, y), tolerance, file: file, line: line)
    }

    func testPattentionFusionWrapsEverySite() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try PattentionFusion().run(g)
        XCTAssertEqual(count("pattention", in: fused), 0)
        XCTAssertEqual(count("fused_pattention", in: fused), 10)
        XCTAssertTrue(fusedOps(fused).allSatisfy { $0.sites.count == 1 && $0.prologue == nil && !$0.residual })
        assertSameLogits(g, fused, tokens: [1, 2, 3, 4, 5])
    }

    func testRotaryBecomesEpilogueOfQueryAndKey() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try RotaryEpilogue().run(try PattentionFusion().run(g))
        XCTAssertEqual(count("rotary", in: fused), 0)
        let withRotary = fusedOps(fused).filter { $0.rotary[0] != nil }.map { $0.sites[0].site }
        XCTAssertEqual(withRotary, ["attention.query", "attention.key", "attention.query", "attention.key"])
        assertSameLogits(g, fused, tokens: [9, 8, 7, 6, 5, 4])
    }

    func testResidualAddBecomesEpilogue() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try ResidualEpilogue().run(try PattentionFusion().run(g))
        XCTAssertEqual(count("add", in: fused), 0)
        XCTAssertEqual(fusedOps(fused).filter(\.residual).map { $0.sites[0].site }, ["attention.proj", "mlp", "attention.proj", "mlp"])
        assertSameLogits(g, fused, tokens: [3, 1, 4, 1, 5])
    }

    func testLayerNormBecomesPrologue() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try LayerNormPrologue().run(try PattentionFusion().run(g))
        // Only the final norm (read by the logits) is left.
        XCTAssertEqual(count("layernorm", in: fused), 1)
        XCTAssertEqual(fusedOps(fused).filter { $0.prologue != nil }.count, 8)
        assertSameLogits(g, fused, tokens: [2, 7, 1, 8, 2, 8])
    }

    func testHorizontalFusionGroupsQueryKeyValue() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try PassPipeline.fusion.run(g)
        let groups = fusedOps(fused).filter { $0.sites.count > 1 }
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(groups[0].sites.map(\.site), ["attention.query", "attention.key", "attention.value"])
        XCTAssertNotNil(groups[0].prologue)
        XCTAssertNotNil(groups[0].rotary[0])
        XCTAssertNil(groups[0].rotary[2])
        XCTAssertEqual(count("columns", in: fused), 6)
        // Per layer: one q/k/v kernel, attention, proj (+residual), mlp (+LN, +residual).
        XCTAssertEqual(count("fused_pattention", in: fused), 6)
        XCTAssertEqual(Set(ops(fused)), ["tokens", "embedding", "fused_pattention", "columns", "attention", "layernorm", "logits"])
        assertSameLogits(g, fused, tokens: Array(0..<20).map { Int32($0 * 11 % 256) })
    }

    /// Blocks of other shapes still go through every pass and compute the same function.
    func testOtherBlockShapesStayCorrect() throws {
        for spec in ["specs/examples/parallel.tfs", "specs/examples/two-mlp.tfs", "specs/examples/mid.tfs"] {
            let g = try TestModels.graph(spec)
            var dumps: [String] = []
            let fused = try PassPipeline.fusion.run(g) { name, _ in dumps.append(name) }
            XCTAssertEqual(dumps, PassPipeline.fusion.passes.map(\.name))
            XCTAssertEqual(count("pattention", in: fused), 0, spec)
            assertSameLogits(g, fused, tokens: [5, 3, 2, 9, 1, 0, 7], tolerance: 2e-5)
        }
        // two-mlp: mlp.up's output feeds mlp.down, so only mlp.down takes the residual epilogue.
        let fused = try PassPipeline.fusion.run(try TestModels.graph("specs/examples/two-mlp.tfs"))
        let residualSites = fusedOps(fused).filter(\.residual).map { $0.sites[0].site }
        XCTAssertEqual(residualSites, ["attention.proj", "mlp.down", "attention.proj", "mlp.down"])
    }

    func testDecodingWithCacheMatchesOnFusedGraph() throws {
        let g = try TestModels.graph("specs/tiny.tfs")
        let fused = try PassPipeline.fusion.run(g)
        let weights = RandomWeights(g)
        let full = NaiveExecutor(graph: g, weights: weights.lookup, threads: 1).forward([4, 8, 15, 16, 23, 42])
        let stepper = NaiveExecutor(graph: fused, weights: weights.lookup, threads: 1)
        _ = stepper.forward([4, 8, 15])
        _ = stepper.forward([16, 23])
        let last = stepper.forward([42])
        let expected = Array(full.row(5))
        XCTAssertLessThanOrEqual(zip(last.data, expected).reduce(0) { max($0, abs($1.0 - $1.1)) }, 1e-5)
    }
}
