import XCTest
@testable import TFCodegen

/// The attention kernel with a bf16 KV cache (`--kv bf16`), on every vector target the host runs:
/// the cache holds exactly `BF16.round` of each appended key and value, and the output equals a
/// float64 attention computed here over those rounded keys and values (the kernel's arithmetic
/// is fp32, so the bound is fp32 rounding's, as for the f32 cache).
final class BF16KVCacheTests: XCTestCase {
    func rounded(_ x: [Float]) -> [Float] { x.map { BF16.float(BF16.round($0)) } }

    func check(heads: Int, headDim: Int, context: Int, queryRows: Int = 4, causal: Bool = true, chunks: [Int],
               file: StaticString = #filePath, line: UInt = #line) {
        for vector in TestJIT.runnable {
            let spec = AttentionKernelSpec(heads: heads, headDim: headDim, context: context, queryRows: queryRows, causal: causal,
                                           kvFormat: .bf16, for: vector)
            XCTAssertEqual(spec.cacheBytes, spec.cacheElements * 2, file: file, line: line)
            let kernel = TestJIT.compile(for: vector) { [$0.addAttention(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(heads * 100 + headDim))
            for threads in [1, 2] {
                let (kc, vc, keys, values) = feedAttentionChunks(kernel, spec, chunks: chunks, threads: threads, rng: &rng, cached: rounded,
                                                                 what: "\(spec) on \(vector.name)", file: file, line: line)
                // The cache holds each key and value rounded to bf16, at the documented element index.
                let kBits = kc.raw.assumingMemoryBound(to: UInt16.self), vBits = vc.raw.assumingMemoryBound(to: UInt16.self)
                var mismatches = 0
                for (pos, key) in keys.enumerated() {
                    for h in 0..<heads {
                        for d in 0..<headDim {
                            if kBits[spec.keyIndex(head: h, position: pos, dim: d)] != BF16.round(key[h * headDim + d]) { mismatches += 1 }
                            if vBits[spec.valueIndex(head: h, position: pos, dim: d)] != BF16.round(values[pos][h * headDim + d]) { mismatches += 1 }
                        }
                    }
                }
                XCTAssertEqual(mismatches, 0, "cache elements not BF16.round of the appended rows, \(spec) on \(vector.name)", file: file, line: line)
            }
        }
    }

    func testPrefillThenDecode() {
        check(heads: 3, headDim: 16, context: 64, chunks: [13, 1, 1, 3, 1, 9])
    }

    /// Head dims that are not a multiple of the vector width read each value row's tail masked.
    func testOddHeadDimAndRowGroups() {
        check(heads: 2, headDim: 12, context: 40, queryRows: 3, chunks: [1, 2, 17, 1])
        check(heads: 1, headDim: 7, context: 20, queryRows: 1, chunks: [5, 1, 1, 13])
        check(heads: 2, headDim: 20, context: 33, chunks: [32, 1])
    }

    func testNonCausal() {
        check(heads: 3, headDim: 16, context: 64, causal: false, chunks: [13, 1, 30])
    }

    func testLongPrefill() {
        check(heads: 2, headDim: 64, context: 140, chunks: [130, 1])
    }

    /// The kernel rounds like `BF16.round` on values chosen to exercise it: exact ties (to even,
    /// both ways), values just off a tie, the largest finite floats (round to infinity), infinities,
    /// subnormals, signed zeros, NaN.
    func testRoundingMatchesHostRounding() {
        var specials: [Float] = [
            Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0xbf80_8000), Float(bitPattern: 0xbf81_8000),
            Float(bitPattern: 0x3f80_8001), Float(bitPattern: 0x3f80_7fff), .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .infinity, -.infinity, Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x0001_8000), .leastNonzeroMagnitude, 0, -0.0, .nan,
        ]
        var rng = TestRandom(seed: 77)
        while specials.count < 64 {
            _ = rng.next()
            specials.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.state >> 11)))  // any bit pattern
        }
        for vector in TestJIT.runnable {
            let spec = AttentionKernelSpec(heads: 1, headDim: 16, context: 4, kvFormat: .bf16, for: vector)
            let kernel = TestJIT.compile(for: vector) { [$0.addAttention(spec)] }[spec.symbol]!
            let T = specials.count / 16
            let Q = AlignedBuffer(count: T * 16), K = AlignedBuffer(specials), V = AlignedBuffer(specials.reversed()), O = AlignedBuffer(count: T * 16)
            let kc = AlignedBuffer(count: spec.cacheFloats), vc = AlignedBuffer(count: spec.cacheFloats)
            kernel([Q.raw, K.raw, V.raw, O.raw, kc.raw, vc.raw], rows: T, position: 0)
            let kBits = kc.raw.assumingMemoryBound(to: UInt16.self), vBits = vc.raw.assumingMemoryBound(to: UInt16.self)
            let reversed = Array(specials.reversed())
            for t in 0..<T {
                for d in 0..<16 {
                    let x = specials[t * 16 + d], y = reversed[t * 16 + d]
                    XCTAssertEqual(kBits[spec.keyIndex(head: 0, position: t, dim: d)], BF16.round(x), "key \(x) (0x\(String(x.bitPattern, radix: 16))) on \(vector.name)")
                    XCTAssertEqual(vBits[spec.valueIndex(head: 0, position: t, dim: d)], BF16.round(y), "value \(y) on \(vector.name)")
                }
            }
        }
    }

    /// A bf16 cache is a distinct kernel (its own symbol) and half the bytes of the f32 one.
    func testSpecNamesAndSizes() {
        let f32 = AttentionKernelSpec(heads: 2, headDim: 12, context: 37, for: .avx512)
        let bf16 = AttentionKernelSpec(heads: 2, headDim: 12, context: 37, kvFormat: .bf16, for: .avx512)
        XCTAssertNotEqual(f32.symbol, bf16.symbol)
        XCTAssertTrue(bf16.description.hasSuffix(" kv bf16"), bf16.description)
        XCTAssertEqual(f32.cacheBytes, 2 * 48 * 12 * 4)
        XCTAssertEqual(bf16.cacheBytes, 2 * 48 * 12 * 2)
        XCTAssertEqual(bf16.cacheFloats, 2 * 48 * 12 / 2)
    }
}
