import XCTest
@testable import TFCodegen

/// The weight-gradient GEMM `C += Aᵀ·B` against a double loop: shapes that are not multiples of
/// the register tile, row strides wider than the matrices, several row blocks and a partial one,
/// and accumulation into what C held; for every vector target this CPU runs (the packing of
/// part-vector row tiles: 6 of AVX2's 8 lanes, 12 of AVX-512's 16).
final class TransposedGemmTests: XCTestCase {
    func testAgainstDoubleLoop() {
        for vector in TestJIT.runnable { check(vector) }
    }

    func check(_ vector: VectorTarget) {
        for (m, n, lda, ldb, ldc, rows) in [(13, 21, 13, 21, 21, 300), (64, 64, 70, 64, 80, 5), (1, 8, 3, 9, 8, 129), (256, 64, 256, 64, 64, 128)] {
            let spec = TransposedGemmSpec(m: m, n: n, lda: lda, ldb: ldb, ldc: ldc)
            let kernel = TestJIT.compile(for: vector) { [$0.addTransposedGemm(spec)] }[spec.symbol]!
            var random = TestRandom(seed: UInt64(m * 1000 + rows))
            let a = random.array(rows * lda), b = random.array(rows * ldb)
            var c = random.array(m * ldc)
            var expected = c.map(Double.init)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for r in 0..<rows { sum += Double(a[r * lda + i]) * Double(b[r * ldb + j]) }
                    expected[i * ldc + j] += sum
                }
            }
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                kernel([UnsafeMutableRawPointer(mutating: ap.baseAddress!), UnsafeMutableRawPointer(mutating: bp.baseAddress!),
                        UnsafeMutableRawPointer(cp.baseAddress!)], rows: rows)
            } } }
            XCTAssertLessThan(relativeError(c, expected), 1e-5, "\(vector.name): \(spec) R=\(rows)")
            // Columns past n in each row of C are left alone.
            for i in 0..<m { for j in n..<ldc { XCTAssertEqual(Double(c[i * ldc + j]), expected[i * ldc + j], "\(vector.name): \(spec) padding (\(i), \(j))") } }
        }
    }
}
