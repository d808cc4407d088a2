import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFWeights
import TFTestSupport
@testable import TFCodegen

/// The fused backend (fusion passes + generated program + JIT) against the naive backend on the
/// same weights: shipped specs, every Pattention variant, odd sizes, T = 1, 2 and the context,
/// random small specs, KV-cache decoding, thread counts, zero rows, the compiled-code cache.
final class FusedBackendTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// One cache for the whole test run, so each distinct model compiles once.
    static let cache = CompiledCodeCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("tfc-test-cache-\(getpid())").path)

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: cache.directory)
        super.tearDown()
    }

    typealias Weights = RandomWeights

    func graph(_ text: String, path: String = "test.tfs") throws -> Graph {
        let source = SourceFile(path: path, text: text)
        return try lower(try parse(source), source: source)
    }

    func graph(file: String) throws -> Graph {
        let source = try SourceFile.load(Self.root.appendingPathComponent(file).path)
        return try lower(try parse(source), source: source)
    }

    /// max |fused − naive| divided by the largest |naive| logit (the logit scale).
    func relativeDifference(_ a: Matrix, _ b: Matrix) -> Float {
        XCTAssertEqual(a.rows, b.rows)
        XCTAssertEqual(a.columns, b.columns)
        let scale = max(b.data.map(abs).max() ?? 1, 1e-3)
        return zip(a.data, b.data).map { abs($0 - $1) }.max()! / scale
    }

    /// On every vector target this CPU can execute (AVX2, and AVX-512 where present); returns the
    /// largest difference.
    @discardableResult
    func assertFusedMatchesNaive(_ g: Graph, tokens: [Int32], seed: UInt64 = 1, scale: Float = 1, threads: Int = 2,
                                 tolerance: Float = 1e-4, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let w = Weights(g, seed: seed, scale: scale)
        let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: threads).forward(tokens)
        var worst: Float = 0
        for vector in TestJIT.runnable {
            let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: threads, cache: Self.cache, target: .host(vector)).forward(tokens)
            XCTAssertTrue(fused.data.allSatisfy(\.isFinite), "\(what) on \(vector.name): non-finite logits", file: file, line: line)
            let d = relativeDifference(fused, naive)
            XCTAssertLessThanOrEqual(d, tolerance, "\(what) on \(vector.name)", file: file, line: line)
            worst = max(worst, d)
        }
        return worst
    }

    func tokens(_ count: Int, vocab: Int, seed: Int = 7) -> [Int32] {
        (0..<count).map { Int32(($0 * 2654435761 + seed * 40503) % vocab) }
    }

    func testShippedSmallSpecsAllVariants() throws {
        for file in ["specs/tiny.tfs", "specs/examples/mid.tfs"] {
            let text = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
            for variant in PattentionNorm.allCases {
                let g = try graph(text.replacingOccurrences(of: "pattention = l2_norm_gelu", with: "pattention = \(variant.rawValue)"))
                try assertFusedMatchesNaive(g, tokens: tokens(33, vocab: g.config.vocab), "\(file) \(variant.rawValue)")
            }
        }
    }

    func testOtherBlockShapes() throws {
        for file in ["specs/examples/parallel.tfs", "specs/examples/two-mlp.tfs"] {
            let g = try graph(file: file)
            try assertFusedMatchesNaive(g, tokens: tokens(19, vocab: g.config.vocab), file)
        }
    }

    /// hidden 72, 3 heads, tokens 37/53/101: nothing is a multiple of the vector width or a tile.
    static func oddSpec(_ variant: PattentionNorm, context: Int = 40) -> String {
        """
        model "odd" {
            vocab = 97
            hidden = 72
            heads = 3
            layers = 2
            context = \(context)
            pattention = \(variant.rawValue)
            final_norm = affine
        }
        block(x) {
            h = layernorm(x)
            q = pattention(h, site: attention.query, tokens: 37)
            k = pattention(h, site: attention.key, tokens: 37)
            v = pattention(h, site: attention.value, tokens: 53)
            a = attention(q, k, v, heads: 3)
            x1 = x + pattention(a, site: attention.proj, tokens: 53)
            return x1 + pattention(layernorm(x1), site: mlp, tokens: 101)
        }
        """
    }

    func testOddSizesAtT1T2AndContext() throws {
        for variant in PattentionNorm.allCases {
            let g = try graph(Self.oddSpec(variant))
            for t in [1, 2, 3, 40] {
                try assertFusedMatchesNaive(g, tokens: tokens(t, vocab: 97), "odd \(variant.rawValue) T=\(t)")
            }
        }
    }

    func test150MAtAShortSequence() throws {
        let g = try graph(file: "specs/tokenformer-150m.tfs")
        try assertFusedMatchesNaive(g, tokens: tokens(9, vocab: g.config.vocab), "150M T=9")
    }

    func testRandomSmallSpecs() throws {
        var seed = UInt64(0x7fc0_ffee)
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        for trial in 0..<6 {
            let heads = 1 + next(4)
            let headDim = 4 * (1 + next(6))
            let hidden = heads * headDim
            let variants = PattentionNorm.allCases
            let parallel = next(2) == 0
            let t = 1 + next(20)
            let body = parallel
                ? """
                    h = layernorm(x)
                    a = attention(pattention(h, site: attention.query, tokens: \(1 + next(50)), norm: \(variants[next(3)].rawValue)),
                                  pattention(h, site: attention.key, tokens: \(1 + next(50))),
                                  pattention(h, site: attention.value, tokens: \(1 + next(50))), heads: \(heads), rotary: \(next(2) == 0))
                    return x + pattention(a, site: attention.proj, tokens: \(1 + next(50))) + pattention(h, site: mlp, tokens: \(1 + next(90)))
                """
                : """
                    h = layernorm(x)
                    a = attention(pattention(h, site: attention.query, tokens: \(1 + next(50))),
                                  pattention(h, site: attention.key, tokens: \(1 + next(50)), norm: \(variants[next(3)].rawValue)),
                                  pattention(h, site: attention.value, tokens: \(1 + next(50))), heads: \(heads))
                    x1 = x + pattention(a, site: attention.proj, tokens: \(1 + next(50)))
                    return x1 + pattention(layernorm(x1), site: mlp, tokens: \(1 + next(90)), norm: \(variants[next(3)].rawValue))
                """
            let text = """
            model "random\(trial)" {
                vocab = \(10 + next(200))
                hidden = \(hidden)
                heads = \(heads)
                layers = \(1 + next(2))
                context = 32
                pattention = \(variants[next(3)].rawValue)
                rotary_fraction = 0.5
            }
            block(x) {
            \(body)
            }
            """
            let g = try graph(text)
            try assertFusedMatchesNaive(g, tokens: tokens(t, vocab: g.config.vocab, seed: trial), seed: UInt64(trial), "random spec \(trial):\n\(text)")
        }
    }

    func testKVCacheDecodingMatchesRecomputingThePrefix() throws {
        let g = try graph(file: "specs/tiny.tfs")
        let w = Weights(g, seed: 3)
        let all = tokens(12, vocab: 256)
        let full = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(all)
        let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache)
        _ = fused.forward(Array(all[0..<5]))
        for i in 5..<12 {
            let step = fused.forward([all[i]])
            let d = zip(step.data, full.row(i)).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(d, 1e-4, "position \(i)")
        }
        fused.reset()
        _ = fused.forward(Array(all[0..<11]))
        let last = fused.forwardLast([all[11]])
        XCTAssertLessThanOrEqual(zip(last, full.row(11)).map { abs($0 - $1) }.max()!, 1e-4)
        fused.reset()
        let lastOfPrefill = fused.forwardLast(all)
        XCTAssertLessThanOrEqual(zip(lastOfPrefill, full.row(11)).map { abs($0 - $1) }.max()!, 1e-4)
    }

    func testThreadCountDoesNotChangeResults() throws {
        let g = try graph(file: "specs/examples/mid.tfs")
        let w = Weights(g, seed: 5)
        let ids = tokens(40, vocab: g.config.vocab)
        let one = try FusedExecutor(graph: g, weights: w.lookup, threads: 1, cache: Self.cache).forward(ids)
        let two = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache).forward(ids)
        XCTAssertLessThanOrEqual(zip(one.data, two.data).map { abs($0 - $1) }.max()!, 1e-5)
    }

    func testZeroRowsDoNotMakeNaN() throws {
        // Zero keys: every score row has norm 0, for every variant.
        for variant in PattentionNorm.allCases {
            let g = try graph(Self.oddSpec(variant))
            let w = Weights(g, seed: 2)
            for (name, buffer) in w.storage where name.hasSuffix("key_param_tokens") { buffer.update(repeating: 0) }
            let fused = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache).forward(tokens(5, vocab: 97))
            XCTAssertTrue(fused.data.allSatisfy(\.isFinite), variant.rawValue)
            let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(tokens(5, vocab: 97))
            XCTAssertLessThanOrEqual(relativeDifference(fused, naive), 1e-4, variant.rawValue)
        }
    }

    func testCompiledCodeCacheHitsAndRebuildsDamagedEntries() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-cache-test-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = CompiledCodeCache(directory: dir)
        let g = try graph(Self.oddSpec(.l2NormGelu))
        let w = Weights(g, seed: 1)
        let ids = tokens(6, vocab: 97)
        let first = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache)
        XCTAssertFalse(first.cacheHit)
        let expected = first.forward(ids)
        let second = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache)
        XCTAssertTrue(second.cacheHit)
        XCTAssertEqual(second.forward(ids).data, expected.data)

        // Damage the entry: flip a byte of the payload, then truncate it.
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tfcobj") }
        XCTAssertEqual(entries.count, 1)
        let path = dir + "/" + entries[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 100] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var notes: [String] = []
        let third = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache) { notes.append($0) }
        XCTAssertFalse(third.cacheHit)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes[0].contains("checksum mismatch"), notes[0])
        XCTAssertEqual(third.forward(ids).data, expected.data)
        try Data(bytes.prefix(50)).write(to: URL(fileURLWithPath: path))
        notes = []
        let fourth = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache) { notes.append($0) }
        XCTAssertFalse(fourth.cacheHit)
        XCTAssertTrue(notes.first?.contains("invalid") ?? false)
        XCTAssertTrue(try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: cache).cacheHit, "rebuilt entry is used")
    }
}
