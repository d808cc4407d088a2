import XCTest
import TFRuntime

/// The C runtime's memory and sampling pieces (the safetensors reader is tested through WeightFile).
final class ArenaTests: XCTestCase {
    func testAlignedAllocation() throws {
        for size in [0, 1, 63, 64, 1000] {
            let p = try XCTUnwrap(tfc_aligned_alloc(size))
            XCTAssertEqual(Int(bitPattern: p) % 64, 0)
            tfc_aligned_free(p)
        }
        tfc_aligned_free(nil)
    }

    func testBumpAllocationResetAndExhaustion() throws {
        let arena = try XCTUnwrap(tfc_arena_create(1024))
        defer { tfc_arena_destroy(arena) }
        let a = try XCTUnwrap(tfc_arena_alloc(arena, 10, 0))
        let b = try XCTUnwrap(tfc_arena_alloc(arena, 100, 0))
        XCTAssertEqual(Int(bitPattern: a) % 64, 0)
        XCTAssertEqual(Int(bitPattern: b) % 64, 0)
        XCTAssertEqual(b - a, 64)
        let c = try XCTUnwrap(tfc_arena_alloc(arena, 4, 4))
        XCTAssertEqual(c - b, 100)
        XCTAssertNil(tfc_arena_alloc(arena, 1000, 0))  // does not fit: nil, not a crash
        XCTAssertNil(tfc_arena_alloc(arena, 1, 3))     // not a power of two
        XCTAssertEqual(arena.pointee.used, 168)
        tfc_arena_reset(arena)
        XCTAssertEqual(tfc_arena_alloc(arena, 1024, 0), a)  // the whole block again
        XCTAssertEqual(arena.pointee.high_water, 1024)
        XCTAssertNil(tfc_arena_alloc(arena, 1, 1))
    }
}

final class SamplingTests: XCTestCase {
    let logits: [Float] = [1.0, 3.0, 2.5, 3.0, -1.0, .nan, 0.5]

    func sample(_ t: Float, _ k: Int32, _ p: Float, _ state: inout UInt64) -> Int32 {
        tfc_sample(logits, Int32(logits.count), t, k, p, &state)
    }

    func testGreedyTakesTheFirstMaximumAndLeavesTheRNGAlone() {
        var state: UInt64 = 123
        XCTAssertEqual(sample(0, 0, 1, &state), 1)
        XCTAssertEqual(sample(-1, 5, 0.5, &state), 1)
        XCTAssertEqual(state, 123)
        XCTAssertEqual(tfc_argmax(logits, Int32(logits.count)), 1)
        XCTAssertEqual(tfc_sample(logits, 0, 1, 0, 1, &state), -1)
    }

    func testTopKOneAndTinyTopPAreGreedy() {
        var state: UInt64 = 9
        for _ in 0..<50 {
            XCTAssertEqual(sample(1, 1, 1, &state), 1)
            XCTAssertEqual(sample(1, 0, 1e-6, &state), 1)
        }
    }

    func testSameSeedSameTokens() {
        var s1: UInt64 = 2024, s2: UInt64 = 2024, s3: UInt64 = 2025
        let a = (0..<200).map { _ in sample(1.3, 0, 0.95, &s1) }
        let b = (0..<200).map { _ in sample(1.3, 0, 0.95, &s2) }
        let c = (0..<200).map { _ in sample(1.3, 0, 0.95, &s3) }
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    func testFrequenciesFollowTheTemperedSoftmax() {
        var state: UInt64 = 1
        let n = 40_000
        var counts = [Int](repeating: 0, count: logits.count)
        for _ in 0..<n { counts[Int(sample(0.8, 0, 1, &state))] += 1 }
        XCTAssertEqual(counts[5], 0, "NaN is never chosen")
        let weights = logits.map { $0.isNaN ? 0 : Double(exp(($0 - 3) / 0.8)) }
        let total = weights.reduce(0, +)
        for i in logits.indices {
            let expected = weights[i] / total
            XCTAssertEqual(Double(counts[i]) / Double(n), expected, accuracy: 0.01, "token \(i)")
        }
    }

    func testTopKAndTopPRestrictTheCandidates() {
        var state: UInt64 = 77
        var seenK = Set<Int32>(), seenP = Set<Int32>()
        for _ in 0..<2000 {
            seenK.insert(sample(5, 2, 1, &state))
            // Probabilities at T = 1 over {1, 3, 2, 0, 6, 4}: 0.38, 0.38, 0.23, …; top_p 0.7 keeps ids 1 and 3 (mass 0.76).
            seenP.insert(sample(1, 0, 0.7, &state))
        }
        XCTAssertEqual(seenK, [1, 3])
        XCTAssertEqual(seenP, [1, 3])
    }

    func testScratchVariantMatches() {
        var s1: UInt64 = 5, s2: UInt64 = 5
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: tfc_sample_scratch_size(Int32(logits.count)), alignment: 8)
        defer { scratch.deallocate() }
        for _ in 0..<100 {
            XCTAssertEqual(tfc_sample(logits, Int32(logits.count), 1, 4, 0.9, &s1),
                           tfc_sample_with_scratch(logits, Int32(logits.count), 1, 4, 0.9, &s2, scratch))
        }
    }

    func testAllMinusInfinityFallsBackToTheFirst() {
        var state: UInt64 = 3
        let dead: [Float] = [-.infinity, -.infinity, -.infinity]
        XCTAssertEqual(tfc_sample(dead, 3, 1, 0, 1, &state), 0)
    }

    func testRNGIsSplitMix64() {
        // Reference values of splitmix64 seeded with 0 (as in Vigna's splitmix64.c).
        var state: UInt64 = 0
        XCTAssertEqual(tfc_rng_next(&state), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(tfc_rng_next(&state), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(tfc_rng_next(&state), 0x06C4_5D18_8009_454F)
    }
}
