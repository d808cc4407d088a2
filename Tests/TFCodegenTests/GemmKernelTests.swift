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

    func check(k: Int, n: Int, rows: [Int], eps: Float? = nil, accumulate: Bool = false, schedule: GemmSchedule? = nil,
               parallelism: GemmKernelSpec.Parallelism = .automatic, file: StaticString = #filePath, line: UInt = #line) {
        let spec = GemmKernelSpec(k: k, n: n, layerNormEps: eps, accumulate: accumulate, schedule: schedule, parallelism: parallelism)
        let kernel = TestJIT.compile { [$0.addGemm(spec)] }[spec.symbol]!
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
                XCTAssertLessThan(err, 1e-5, "gemm k=\(k) n=\(n) T=\(T) threads=\(threads) \(spec)", file: file, line: line)
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
        for s in ["mr=4 nr=24 kc=20 rowBlock=8", "mr=8 nr=8 kc=7 rowBlock=16 unroll=2", "mr=1 nr=16 kc=64 rowBlock=3 unroll=1", "kc=16 loop=depthOuter prefetch=0", "mr=5 rowBlock=45 kc=9 loop=panelsOuter prefetch=256"] {
            let sched = try! GemmSchedule(parsing: s)
            check(k: 45, n: 70, rows: [1, 9, 50], schedule: sched)
        }
        check(k: 40, n: 77, rows: [1, 20, 70], parallelism: .columns)
        check(k: 40, n: 77, rows: [1, 20, 70], parallelism: .rows)
    }

    func testScheduleParsingErrors() {
        XCTAssertThrowsError(try GemmSchedule(parsing: "nr=12"))
        XCTAssertThrowsError(try GemmSchedule(parsing: "mr=8 nr=16"))
        XCTAssertThrowsError(try GemmSchedule(parsing: "bogus=1"))
        XCTAssertEqual(try GemmSchedule(parsing: "mr=4,nr=24").mr, 4)
    }
}
