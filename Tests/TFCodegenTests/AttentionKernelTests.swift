import XCTest
@testable import TFCodegen

final class AttentionKernelTests: XCTestCase {
    /// Feeds a sequence in chunks (prefill then decode steps) and checks every chunk's output.
    /// On every runnable target (the cache's key blocks are the target's vector width).
    func check(_ spec: AttentionKernelSpec, chunks: [Int], file: StaticString = #filePath, line: UInt = #line) {
        for vector in TestJIT.runnable {
            var s = spec
            s.keyBlock = vector.lanes
            check(s, on: vector, chunks: chunks, file: file, line: line)
        }
    }

    func check(_ spec: AttentionKernelSpec, on vector: VectorTarget, chunks: [Int], file: StaticString, line: UInt) {
        let kernel = TestJIT.compile(for: vector) { [$0.addAttention(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: UInt64(spec.heads * 100 + spec.headDim))
        for threads in [1, 2] {
            let (kc, vc, keys, values) = feedAttentionChunks(kernel, spec, chunks: chunks, threads: threads, rng: &rng,
                                                             what: "\(spec) on \(vector.name)", file: file, line: line)
            // The cache holds every key and value at the documented index.
            for (pos, key) in keys.enumerated() {
                for h in 0..<spec.heads {
                    for d in 0..<spec.headDim {
                        XCTAssertEqual(kc[spec.keyIndex(head: h, position: pos, dim: d)], key[h * spec.headDim + d])
                        XCTAssertEqual(vc[spec.valueIndex(head: h, position: pos, dim: d)], values[pos][h * spec.headDim + d])
                    }
                }
            }
        }
    }

    func testPrefillThenDecode() {
        check(AttentionKernelSpec(heads: 3, headDim: 16, context: 64), chunks: [13, 1, 1, 3, 1, 9])
    }

    func testOddHeadDimAndRowGroups() {
        check(AttentionKernelSpec(heads: 2, headDim: 12, context: 40, queryRows: 3), chunks: [1, 2, 17, 1])
        check(AttentionKernelSpec(heads: 1, headDim: 7, context: 20, queryRows: 1), chunks: [5, 1, 1])
    }

    /// Non-causal: every row of a chunk sees every key cached so far, its own chunk's included.
    func testNonCausal() {
        check(AttentionKernelSpec(heads: 3, headDim: 16, context: 64, causal: false), chunks: [13, 1, 3, 1, 30])
        check(AttentionKernelSpec(heads: 2, headDim: 12, context: 40, queryRows: 3, causal: false), chunks: [1, 2, 17])
        check(AttentionKernelSpec(heads: 1, headDim: 7, context: 20, queryRows: 1, causal: false), chunks: [20])
    }

    func testLongPrefill() {
        check(AttentionKernelSpec(heads: 2, headDim: 32, context: 140), chunks: [130, 1])
    }

    /// q, k, v as column slices of one [T, 3D] buffer; output with its own stride.
    func testStridedInputsAndOutput() {
        let plain = AttentionKernelSpec(heads: 2, headDim: 8, context: 16)
        let strided = AttentionKernelSpec(heads: 2, headDim: 8, context: 16, ldInput: 48, ldOutput: 20)
        let ks = TestJIT.compile { [$0.addAttention(plain), $0.addAttention(strided)] }
        var rng = TestRandom(seed: 4)
        let T = 6
        let qkv = rng.array(T * 48)
        func slice(_ c: Int) -> [Float] {
            var out: [Float] = []
            for t in 0..<T { out += qkv[t * 48 + c ..< t * 48 + c + 16] }
            return out
        }
        let Q = AlignedBuffer(slice(0)), K = AlignedBuffer(slice(16)), V = AlignedBuffer(slice(32)), O = AlignedBuffer(count: T * 16)
        let kc1 = AlignedBuffer(count: plain.cacheFloats), vc1 = AlignedBuffer(count: plain.cacheFloats)
        ks[plain.symbol]!([Q.raw, K.raw, V.raw, O.raw, kc1.raw, vc1.raw], rows: T)
        let B = AlignedBuffer(qkv), O2 = AlignedBuffer(count: T * 20)
        let kc2 = AlignedBuffer(count: strided.cacheFloats), vc2 = AlignedBuffer(count: strided.cacheFloats)
        ks[strided.symbol]!([B.raw, B.raw + 16 * 4, B.raw + 32 * 4, O2.raw, kc2.raw, vc2.raw], rows: T)
        for t in 0..<T { for c in 0..<16 { XCTAssertEqual(O2[t * 20 + c], O[t * 16 + c]) } }
        XCTAssertEqual(kc1.array, kc2.array)
    }

    /// A cache imported with storeCache continues exactly like one the kernel filled.
    func testStoreAndLoadCache() {
        let spec = AttentionKernelSpec(heads: 2, headDim: 8, context: 24)
        let kernel = TestJIT.compile { [$0.addAttention(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: 8)
        let T = 10, D = 16
        let q = rng.array(T * D), k = rng.array(T * D), v = rng.array(T * D)
        let kc = AlignedBuffer(count: spec.cacheFloats), vc = AlignedBuffer(count: spec.cacheFloats)
        let O = AlignedBuffer(count: T * D)
        let Q = AlignedBuffer(q), K = AlignedBuffer(k), V = AlignedBuffer(v)
        kernel([Q.raw, K.raw, V.raw, O.raw, kc.raw, vc.raw], rows: T)
        // Import the first 9 rows, then let the kernel append the 10th.
        let kc2 = AlignedBuffer(count: spec.cacheFloats), vc2 = AlignedBuffer(count: spec.cacheFloats)
        spec.storeCache(keys: K.pointer, values: V.pointer, rows: 9, position: 0, keyCache: kc2.pointer, valueCache: vc2.pointer)
        let O2 = AlignedBuffer(count: D)
        kernel([Q.raw + 9 * D * 4, K.raw + 9 * D * 4, V.raw + 9 * D * 4, O2.raw, kc2.raw, vc2.raw], rows: 1, position: 9)
        XCTAssertEqual(O2.array, Array(O.array[9 * D ..< 10 * D]))
        let K3 = AlignedBuffer(count: T * D), V3 = AlignedBuffer(count: T * D)
        spec.loadCache(keyCache: kc2.pointer, valueCache: vc2.pointer, rows: T, position: 0, keys: K3.pointer, values: V3.pointer)
        XCTAssertEqual(K3.array, k)
        XCTAssertEqual(V3.array, v)
    }

    func testOutOfRangeDoesNothing() {
        let spec = AttentionKernelSpec(heads: 1, headDim: 8, context: 4)
        let kernel = TestJIT.compile { [$0.addAttention(spec)] }[spec.symbol]!
        let q = AlignedBuffer(count: 8 * 8), o = AlignedBuffer([Float](repeating: 7, count: 64))
        let kc = AlignedBuffer(count: spec.cacheFloats), vc = AlignedBuffer(count: spec.cacheFloats)
        kernel([q.raw, q.raw, q.raw, o.raw, kc.raw, vc.raw], rows: 2, position: 3)
        XCTAssertEqual(o.array, [Float](repeating: 7, count: 64))
    }
}
