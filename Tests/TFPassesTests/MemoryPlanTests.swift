import XCTest
import TFIR
@testable import TFPasses

/// The memory plan never lets two live values overlap, reuses buffers, and runs residual
/// epilogues in place.
final class MemoryPlanTests: XCTestCase {
    /// Checks the plan against liveness computed here: a value is live from its definition to its
    /// last read; two live values may share a buffer only as views of one another (same root).
    func assertNoOverlap(_ graph: Graph, _ plan: MemoryPlan, file: StaticString = #filePath, line: UInt = #line) {
        var lastUse: [ValueID: Int] = [:]
        var defined: [ValueID: Int] = [:]
        var root: [ValueID: ValueID] = [:]
        for (i, inst) in graph.instructions.enumerated() {
            defined[inst.result] = i
            for operand in inst.operands { lastUse[operand] = i }
            switch inst.op {
            case .columns: root[inst.result] = root[inst.operands[0]] ?? inst.operands[0]
            case .fusedPattention(let f) where f.residual && plan.inPlace.contains(inst.result):
                root[inst.result] = root[inst.operands[1]] ?? inst.operands[1]
            default: root[inst.result] = inst.result
            }
        }
        lastUse[graph.output] = graph.instructions.count
        let values = graph.instructions.filter { $0.type.element == .f32 }
        for a in values {
            XCTAssertNotNil(plan.locations[a.result], "\(a.result) has no buffer", file: file, line: line)
        }
        // Live range of each group of aliasing values (a root and its views / in-place updates).
        var range: [ValueID: (start: Int, end: Int, buffer: Int)] = [:]
        for a in values {
            let r = root[a.result]!
            let start = defined[a.result]!, end = lastUse[a.result] ?? start
            let buffer = plan.locations[a.result]!.buffer
            if let existing = range[r] {
                XCTAssertEqual(existing.buffer, buffer, "views of \(r) in different buffers", file: file, line: line)
                range[r] = (min(existing.start, start), max(existing.end, end), buffer)
            } else {
                range[r] = (start, end, buffer)
            }
        }
        let groups = Array(range)
        for (i, (ra, a)) in groups.enumerated() {
            for (rb, b) in groups[(i + 1)...] where a.buffer == b.buffer {
                // Strict: a buffer is handed on only after its last reader has run.
                XCTAssertTrue(a.end < b.start || b.end < a.start,
                              "\(ra) [\(a.start), \(a.end)] and \(rb) [\(b.start), \(b.end)] overlap in buffer \(a.buffer)", file: file, line: line)
            }
        }
    }

    func testTinyFusedPlan() throws {
        let graph = try PassPipeline.fusion.run(try TestModels.graph("specs/tiny.tfs"))
        let plan = MemoryPlan(graph)
        assertNoOverlap(graph, plan)
        // The residual stream is updated in place by proj and mlp of each layer.
        XCTAssertEqual(plan.inPlace.count, 4)
        // Fewer buffers than values: reuse happens.
        XCTAssertLessThan(plan.bufferColumns.count, graph.instructions.count / 2)
        XCTAssertTrue(plan.text(for: graph, rows: 128).contains("(in place)"))
    }

    func testUnfusedAndOtherShapes() throws {
        for spec in ["specs/tiny.tfs", "specs/examples/parallel.tfs", "specs/examples/two-mlp.tfs", "specs/tokenformer-150m.tfs"] {
            let unfused = try TestModels.graph(spec)
            assertNoOverlap(unfused, MemoryPlan(unfused))
            let fused = try PassPipeline.fusion.run(unfused)
            assertNoOverlap(fused, MemoryPlan(fused))
        }
    }

    func testPeakDoesNotGrowWithDepth() throws {
        let shallow = try PassPipeline.fusion.run(try TestModels.graph("specs/tokenformer-150m.tfs"))
        let deep = try PassPipeline.fusion.run(try TestModels.graph("specs/tokenformer-1.5b.tfs"))
        let a = MemoryPlan(shallow), b = MemoryPlan(deep)
        // 12 vs 40 layers: the same handful of buffers (wider model, not more buffers).
        XCTAssertEqual(a.bufferColumns.count, b.bufferColumns.count)
    }
}
