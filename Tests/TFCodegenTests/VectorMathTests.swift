import XCTest
@testable import TFCodegen
#if canImport(Glibc)
import Glibc
#endif

final class VectorMathTests: XCTestCase {
    /// The probes compiled for every vector target this CPU runs.
    static let kernels: [(VectorTarget, [VectorMathFunction: CompiledKernel])] = TestJIT.runnable.map { vector in
        let names = VectorMathFunction.allCases.map { f in (f, "tfc_probe_\(f.rawValue)_\(vector.name)") }
        let ks = TestJIT.compile(for: vector) { m in names.map { m.addVectorMathProbe($0.0, name: $0.1) } }
        return (vector, Dictionary(uniqueKeysWithValues: names.map { ($0.0, ks[$0.1]!) }))
    }

    /// `f` over `xs` on the AVX2 target; every other target must give the same bits (the same
    /// operations per lane), so the checks against the reference cover them too.
    func run(_ f: VectorMathFunction, _ xs: [Float], file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        var results: [(VectorTarget, [Float])] = []
        for (vector, ks) in Self.kernels {
            var input = xs
            var output = [Float](repeating: .nan, count: xs.count)
            input.withUnsafeMutableBytes { ip in
                output.withUnsafeMutableBytes { op in
                    ks[f]!([ip.baseAddress, op.baseAddress], rows: xs.count)
                }
            }
            results.append((vector, output))
        }
        for (vector, out) in results.dropFirst() {
            let mismatch = out.indices.first { out[$0].bitPattern != results[0].1[$0].bitPattern }
            XCTAssertNil(mismatch, "\(f) on \(vector.name) differs from \(results[0].0.name) at x = \(mismatch.map { xs[$0] } ?? 0)", file: file, line: line)
        }
        return results[0].1
    }

    func sweep(_ lo: Float, _ hi: Float, _ n: Int) -> [Float] {
        (0..<n).map { lo + (hi - lo) * Float($0) / Float(n - 1) }
    }

    func testExpRelativeErrorWithinTwoUlp() {
        let xs = sweep(-87, 88, 400_003)
        let ys = run(.exp, xs)
        var worst = 0.0, at: Float = 0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.exp(Double(x))
            let ulp = Double(Float(ref).ulp)
            let e = abs(Double(y) - ref) / ulp
            if e > worst { worst = e; at = x }
        }
        XCTAssertLessThanOrEqual(worst, 2.0, "exp worst \(worst) ulp at \(at)")
        print("exp: worst \(worst) ulp at \(at)")
        let edge = run(.exp, [-100, -87.5, 0, 1, 89, 200, -Float.infinity])
        XCTAssertEqual(edge[0], 0)
        XCTAssertEqual(edge[2], 1)
        XCTAssertEqual(edge[3], Float(M_E), accuracy: 1e-6)
        XCTAssertEqual(edge[4], .infinity)
        XCTAssertEqual(edge[6], 0)
    }

    func testErfAbsoluteError() {
        let xs = sweep(-6, 6, 600_001) + [0, -0.0, 1e-20, -1e-30, 0.7, -0.7, 3.92, 3.9200001, 100, -100]
        let ys = run(.erf, xs)
        var worst = 0.0, at: Float = 0
        for (x, y) in zip(xs, ys) {
            let e = abs(Double(y) - Foundation.erf(Double(x)))
            if e > worst { worst = e; at = x }
        }
        XCTAssertLessThanOrEqual(worst, 2e-7, "erf worst abs error \(worst) at \(at)")
        print("erf: worst abs error \(worst) at \(at)")
        // Relative accuracy near 0 (the small branch is x·P(x²)).
        let tiny = run(.erf, [1e-20, 1e-6, -1e-3])
        XCTAssertEqual(Double(tiny[0]) / (2 / Double.pi.squareRoot() * 1e-20), 1, accuracy: 1e-6)
        XCTAssertEqual(Double(tiny[2]) / Foundation.erf(Double(Float(-1e-3))), 1, accuracy: 3e-7)
    }

    func testGeluExactErfForm() {
        let xs = sweep(-12, 12, 240_001)
        let ys = run(.gelu, xs)
        var worst = 0.0, at: Float = 0
        for (x, y) in zip(xs, ys) {
            let xd = Double(x)
            let ref = 0.5 * xd * (1 + Foundation.erf(xd / 2.0.squareRoot()))
            let e = abs(Double(y) - ref) / max(1, abs(ref))
            if e > worst { worst = e; at = x }
        }
        XCTAssertLessThanOrEqual(worst, 3e-7, "gelu worst error \(worst) at \(at)")
        print("gelu: worst error \(worst) at \(at)")
        XCTAssertEqual(run(.gelu, [0])[0], 0)
    }

    func testOddCountsUseMaskedTail() {
        for n in [1, 7, 9, 13] {
            let xs = (0..<n).map { Float($0) * 0.25 - 1 }
            let ys = run(.exp, xs)
            for (x, y) in zip(xs, ys) { XCTAssertEqual(Double(y), Foundation.exp(Double(x)), accuracy: 1e-6) }
        }
    }
}
