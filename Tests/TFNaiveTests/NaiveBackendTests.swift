import XCTest
import TFIR
import TFSpec
import TFWeights
import TFTestSupport
@testable import TFNaive

/// Properties of the naive backend that the NumPy comparison does not reach: zero score rows,
/// the KV cache, thread counts.
final class NaiveBackendTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    typealias Weights = RandomWeights

    func tiny() throws -> Graph {
        let source = try SourceFile.load(Self.root.appendingPathComponent("specs/tiny.tfs").path)
        return try lower(try parse(source), source: source)
    }

    func testZeroScoreRowsGiveZerosNotNaN() throws {
        let g = try tiny()
        let w = Weights(g, seed: 2)
        // All-zero keys: every score row of every site has norm 0.
        for name in w.storage.keys where name.hasSuffix("key_param_tokens") {
            w[name].update(repeating: 0)
        }
        for norm in PattentionNorm.allCases {
            var graph = g
            graph.config.pattentionNorm = norm
            for i in graph.instructions.indices {
                if case .pattention(var p) = graph.instructions[i].op { p.norm = norm; graph.instructions[i].op = .pattention(p) }
            }
            let logits = NaiveExecutor(graph: graph, weights: w.lookup, threads: 1).forward([1, 2, 3])
            XCTAssertTrue(logits.data.allSatisfy(\.isFinite), "\(norm)")
        }
    }

    func testKVCacheDecodingMatchesFullPrefix() throws {
        let g = try tiny()
        let w = Weights(g, seed: 4)
        let tokens: [Int32] = [10, 20, 30, 40, 50, 60, 70, 80]
        let full = NaiveExecutor(graph: g, weights: w.lookup, threads: 1).forward(tokens)
        let incremental = NaiveExecutor(graph: g, weights: w.lookup, threads: 1)
        _ = incremental.forward(Array(tokens[0..<5]))
        for i in 5..<8 {
            let step = incremental.forward([tokens[i]])
            let diff = zip(step.data, full.row(i)).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-5, "position \(i)")
        }
        incremental.reset()
        XCTAssertEqual(incremental.position, 0)
        XCTAssertEqual(incremental.forward(tokens).data, full.data)
    }

    func testThreadCountDoesNotChangeResults() throws {
        let g = try tiny()
        let w = Weights(g, seed: 5)
        let tokens: [Int32] = (0..<40).map { Int32($0 * 7 % 256) }
        let one = NaiveExecutor(graph: g, weights: w.lookup, threads: 1).forward(tokens)
        let two = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(tokens)
        XCTAssertLessThanOrEqual(zip(one.data, two.data).map { abs($0 - $1) }.max()!, 1e-5)
    }
}
