import XCTest
@testable import TFCodegen

final class GemmKernelTests: XCTestCase {
    func reference(x: [Float], w: [Float], T: Int, k: Int, n: Int, eps: Float?) -> [Double] {
        var out = [Double](repeating: 0, count: T * n)
        for t in 0..<T {
            let row: [Double] = eps.map { layerNormRow(x[t * k ..< (t + 1) * k], eps: Double($0)) } ?? x[t * k ..< (t + 1) * k].map(Double.init)
            for j in 0..<n {
                var s = 0.0
                for kk in 0..<k { s += row[kk] * Double(w[j * k + kk]) }
                out[t * n + j] = s
            }
        }
        return out
    }

    /// On every runnable target (default) with the schedule each chooses, or on `vectors` with `schedule`.
    func check(k: Int, n: Int, rows: [Int], eps: Float? = nil, accumulate: Bool = false, schedule: GemmSchedule? = nil,
               parallelism: GemmKernelSpec.Parallelism = .automatic, vectors: [VectorTarget] = TestJIT.runnable,
               file: StaticString = #filePath, line: UInt = #line) {
        for vector in vectors {
            check(k: k, n: n, rows: rows, spec: GemmKernelSpec(k: k, n: n, layerNormEps: eps, accumulate: accumulate, schedule: schedule,
                                                               parallelism: parallelism, for: vector),
                  vector: vector, file: file, line: line)
        }
    }

    func check(k: Int, n: Int, rows: [Int], spec: GemmKernelSpec, vector: VectorTarget, file: StaticString, line: UInt) {
        let eps = spec.layerNormEps, accumulate = spec.accumulate
        let kernel = TestJIT.compile(for: vector) { [$0.addGemm(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: UInt64(k * 1000 + n))
        let w = rng.array(n * k)
        let packed = spec.weightLayout.packedTransposed(w)
        for T in rows {
            let x = rng.array(T * k, scale: 2)
            let c0 = rng.array(T * n)
            var ref = reference(x: x, w: w, T: T, k: k, n: n, eps: eps)
            if accumulate { for i in 0..<ref.count { ref[i] += Double(c0[i]) } }
            for threads in [1, 2] {
                let X = AlignedBuffer(x), C = AlignedBuffer(c0)
                withThreads(threads) { kernel([X.raw, packed.raw, C.raw], rows: T) }
                let err = relativeError(C.array, ref)
                XCTAssertLessThan(err, 1e-5, "gemm k=\(k) n=\(n) T=\(T) threads=\(threads) \(spec) on \(vector.name)", file: file, line: line)
            }
        }
    }

    func testOddShapes() {
        check(k: 72, n: 37, rows: [1, 2, 3, 7, 33, 130])
        check(k: 37, n: 101, rows: [1, 5, 64])
        check(k: 8, n: 16, rows: [6, 12])
    }

    func testLayerNormPrologueAndAccumulate() {
        check(k: 72, n: 53, rows: [1, 3, 33], eps: 1e-5)
        check(k: 72, n: 53, rows: [2, 40], accumulate: true)
    }

    func testSchedulesAndPaths() {
        let schedules: [(VectorTarget, [String])] = [
            (.avx2, ["mr=4 nr=24 kc=20 rowBlock=8", "mr=8 nr=8 kc=7 rowBlock=16 unroll=2", "mr=1 nr=16 kc=64 rowBlock=3 unroll=1",
                     "kc=16 loop=depthOuter prefetch=0", "mr=5 rowBlock=45 kc=9 loop=panelsOuter prefetch=256"]),
            (.avx512, ["mr=14 nr=32 kc=20 rowBlock=28", "mr=9 nr=48 kc=7 rowBlock=18 unroll=2", "mr=6 nr=64 kc=64 rowBlock=6 unroll=1",
                       "mr=16 nr=16 kc=16 rowBlock=16 loop=depthOuter prefetch=0", "mr=5 rowBlock=45 kc=9 loop=panelsOuter prefetch=256"]),
        ]
        for (vector, list) in schedules where TestJIT.runnable.contains(vector) {
            for s in list {
                check(k: 45, n: 70, rows: [1, 9, 50], schedule: try! GemmSchedule(parsing: s, for: vector), vectors: [vector])
            }
        }
        check(k: 40, n: 77, rows: [1, 20, 70], parallelism: .columns)
        check(k: 40, n: 77, rows: [1, 20, 70], parallelism: .rows)
    }

    /// Tiles narrower than the packed panels (`panel=`, how a compiled program's AVX2 variant
    /// reads the AVX-512 variants' 32-column panels): the first and second tile of a panel, a
    /// partial last panel whose second tile is the partial one (n = 56 with 32-column panels),
    /// both loop orders, the row and column paths.
    func testTilesNarrowerThanThePanels() {
        let schedules: [(VectorTarget, [String])] = [
            (.avx2, ["mr=6 nr=16 panel=32", "mr=4 nr=8 kc=20 panel=24 loop=depthOuter", "mr=6 nr=16 kc=9 panel=64 prefetch=0"]),
            (.avx512, ["mr=12 nr=16 panel=32", "mr=6 nr=32 kc=20 panel=64 loop=depthOuter"]),
        ]
        for (vector, list) in schedules where TestJIT.runnable.contains(vector) {
            for text in list {
                let s = try! GemmSchedule(parsing: text, for: vector)
                XCTAssertEqual(GemmKernelSpec(k: 45, n: 56, schedule: s, for: vector).weightLayout.nr, s.panel, text)
                for n in [56, 70, 13] {
                    check(k: 45, n: n, rows: [1, 9, 50], schedule: s, vectors: [vector])
                    check(k: 45, n: n, rows: [1, 9, 50], schedule: s, parallelism: .columns, vectors: [vector])
                }
            }
        }
        XCTAssertThrowsError(try GemmSchedule(parsing: "nr=16 panel=24", for: .avx2)) { error in
            XCTAssertEqual("\(error)", "codegen: schedule: panel must be 0 or a positive multiple of nr (16), got 24")
        }
    }

    /// The cost model's tiles: the widest reuse that keeps the FMA pipes fed within the target's
    /// tile registers, padding counted.
    func testCostModelChoosesATilePerTarget() {
        let avx2 = GemmSchedule.choose(k: 768, n: 768, for: .avx2)
        XCTAssertEqual([avx2.mr, avx2.nr, avx2.rowBlock, avx2.kc], [6, 16, 48, 256])
        let avx512 = GemmSchedule.choose(k: 768, n: 3072, for: .avx512)
        XCTAssertEqual([avx512.mr, avx512.nr, avx512.rowBlock], [12, 32, 48])
        for v in VectorTarget.all {
            for n in [7, 37, 72, 768, 50304] {
                let t = GemmTileCost.best(n: n, for: v)
                XCTAssertNil(GemmSchedule.choose(k: 100, n: n, for: v).validate(for: v), "\(v.name) n=\(n)")
                XCTAssertLessThanOrEqual(t.mr * (t.nr / v.lanes) + t.nr / v.lanes + 1, v.tileRegisters)
                XCTAssertEqual(t.issue, 1, "\(v.name) n=\(n): \(t)")
            }
        }
        // 72 columns: 24-wide panels waste none, 16-wide ones a tenth.
        XCTAssertEqual(GemmTileCost.best(n: 72, for: .avx2).nr, 24)
        XCTAssertEqual(GemmTileCost(mr: 6, nr: 16, n: 72, for: .avx2).columnUse, 0.9, accuracy: 1e-12)
    }

    func testScheduleParsingErrors() {
        XCTAssertThrowsError(try GemmSchedule(parsing: "nr=12", for: .avx2))
        XCTAssertThrowsError(try GemmSchedule(parsing: "mr=8 nr=16", for: .avx2))
        XCTAssertThrowsError(try GemmSchedule(parsing: "bogus=1", for: .avx2))
        XCTAssertEqual(try GemmSchedule(parsing: "mr=4,nr=24", for: .avx2).mr, 4)
        // AVX-512: panels of whole zmm vectors, tiles within 32 registers.
        XCTAssertThrowsError(try GemmSchedule(parsing: "mr=4 nr=24", for: .avx512)) { error in
            XCTAssertEqual("\(error)", "codegen: schedule: nr must be a positive multiple of 16 for avx512 (got 24)")
        }
        XCTAssertThrowsError(try GemmSchedule(parsing: "mr=15 nr=32", for: .avx512)) { error in
            XCTAssertEqual("\(error)", "codegen: schedule: an 15x32 tile needs more than the 32 zmm registers")
        }
        XCTAssertEqual(try GemmSchedule(parsing: "mr=14 nr=32", for: .avx512).mr, 14)
        XCTAssertThrowsError(try GemmSchedule(parsing: "mr=14 nr=32", for: .avx2))
    }
}
