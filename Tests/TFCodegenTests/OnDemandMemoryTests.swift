import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFTestSupport
@testable import TFCodegen

/// A long context costs memory only as tokens arrive: a short prompt at context 2^20 used to make
/// both backends allocate (and zero) the whole KV cache and every activation buffer up front —
/// over 1 GiB here, ~23 GB at context 2^24 — and now takes what the tokens run need: the fused
/// backend's arena is laid out for the whole context (as a compiled program's) but mapped so that
/// only the pages of the rows and positions written are taken. Longer calls after shorter ones
/// must not change the answer.
final class OnDemandMemoryTests: XCTestCase {
    static let context = 1 << 20

    func graph() throws -> Graph {
        let text = """
        model "long" {
            vocab = 64
            hidden = 64
            heads = 4
            layers = 2
            context = \(Self.context)
        }
        block(x) {
            h = layernorm(x)
            a = attention(pattention(h, site: q, tokens: 32), pattention(h, site: k, tokens: 32), pattention(h, site: v, tokens: 32), heads: heads)
            x1 = x + pattention(a, site: proj, tokens: 32)
            return x1 + pattention(layernorm(x1), site: mlp, tokens: 128)
        }
        """
        let source = SourceFile(path: "long.tfs", text: text)
        return try lower(try parse(source), source: source)
    }

    /// Resident memory of this process in bytes (Linux: /proc/self/statm).
    func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return Int(statm[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// What the KV caches alone would take if allocated for the whole context.
    var fullCacheBytes: Int { 2 /* layers */ * 2 /* k, v */ * Self.context * 64 * 4 }

    func testShortPromptsAtLongContextTakeLittleMemory() throws {
        let g = try graph()
        let w = RandomWeights(g, seed: 3)
        let cache = CompiledCodeCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("tfc-ondemand-\(getpid())").path)
        defer { try? FileManager.default.removeItem(atPath: cache.directory) }
        // Calls of growing length, continuing from the cache: the buffers grow between them.
        let calls: [[Int32]] = [[1, 2, 3], [4], Array(5..<25), (0..<40).map { Int32($0 % 64) }]

        var before = try residentBytes()
        let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2)
        let naiveLogits = calls.map { naive.forward($0) }
        let naiveGrowth = try residentBytes() - before

        before = try residentBytes()
        let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache)
        let fusedLogits = calls.map { fused.forward($0) }
        let fusedGrowth = try residentBytes() - before

        print("context \(Self.context): resident growth naive \(naiveGrowth >> 20) MiB, fused \(fusedGrowth >> 20) MiB (with its compilation); the full KV cache would be \(fullCacheBytes >> 20) MiB")
        XCTAssertLessThan(naiveGrowth, fullCacheBytes / 4)
        XCTAssertLessThan(fusedGrowth, fullCacheBytes / 4)
        XCTAssertGreaterThan(fused.layout.arenaBytes, fullCacheBytes, "the arena holds the caches and every activation buffer for the whole context")
        for (i, (a, b)) in zip(fusedLogits, naiveLogits).enumerated() {
            let scale = max(b.data.map(abs).max() ?? 1, 1e-3)
            let d = zip(a.data, b.data).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThanOrEqual(d, 1e-4, "call \(i)")
        }
        XCTAssertEqual(fused.position, 64)
        XCTAssertEqual(naive.position, 64)
    }
}
