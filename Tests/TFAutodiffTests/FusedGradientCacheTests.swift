import XCTest
import Foundation
import TFIR
import TFSpec
import TFAutodiff
import TFNaive
import TFTraining
import TFCodegen
import TFTestSupport

/// The fused backend's kernels through the compiled-code cache: a first run compiles and stores
/// them, a second loads them and computes the same bits, a damaged entry is noted and rebuilt.
final class FusedGradientCacheTests: XCTestCase {
    func testSecondRunLoadsTheSameKernelsFromTheCache() throws {
        let source = try SourceFile.load(DifferentiateTests.root.appendingPathComponent("specs/tiny.tfs").path)
        let graph = try lower(try parse(source), source: source)
        let grad = try differentiate(graph)
        let weights = RandomWeights(graph, seed: 5)
        let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 11) % 256) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-fused-cache-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = CompiledCodeCache(directory: directory)

        let first = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, cache: cache)
        XCTAssertFalse(first.cacheHit, "an empty cache cannot hit")
        let entries = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tfcobj") }
        XCTAssertEqual(entries.count, 1, "the training module is stored once: \(entries)")
        let compiled = first.run(tokens)
        let naive = NaiveGradient(grad: grad, weights: weights.lookup, threads: 1).run(tokens)
        XCTAssertEqual(compiled.loss, naive.loss, accuracy: 1e-5)

        let second = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, cache: cache)
        XCTAssertTrue(second.cacheHit, "the same model and target load the stored object")
        let loaded = second.run(tokens)
        XCTAssertEqual(loaded.loss.bitPattern, compiled.loss.bitPattern)
        for (name, g) in compiled.gradients { XCTAssertEqual(loaded.gradients[name]!.map(\.bitPattern), g.map(\.bitPattern), name) }

        // A damaged entry: noted, rebuilt, and the result is unchanged.
        let path = directory + "/" + entries[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: path))
        var notes: [String] = []
        let third = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, cache: cache, notes: { notes.append($0) })
        XCTAssertFalse(third.cacheHit)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes.first?.hasPrefix("note: compiled-code cache entry \(path) is invalid") ?? false, "\(notes)")
        XCTAssertEqual(third.run(tokens).loss.bitPattern, compiled.loss.bitPattern)
    }
}
