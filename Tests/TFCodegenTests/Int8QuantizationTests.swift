import XCTest
@testable import TFCodegen

/// The int8 quantiser and panel layout against float64 references written independently here.
final class Int8QuantizationTests: XCTestCase {
    /// Reference: scale max|x|/127 in Double, codes round-half-even(x/scale) clamped to ±127.
    func referenceRow(_ x: [Float]) -> (codes: [Int], scale: Double) {
        let m = x.map { abs(Double($0)) }.max() ?? 0
        let s = m / 127
        if s == 0 { return ([Int](repeating: 0, count: x.count), 0) }
        return (x.map { max(-127, min(127, Int((Double($0) / s).rounded(.toNearestOrEven)))) }, s)
    }

    func testRowsMatchFloat64ReferenceAndBoundTheError() {
        var rng = TestRandom(seed: 12)
        let rows = 7, cols = 37
        var x = rng.array(rows * cols, scale: 3)
        for c in 0..<cols { x[2 * cols + c] = 0 }          // an all-zero row
        x[4 * cols + 5] = -50                               // an outlier sets its row's scale
        let (q, s) = Int8Quantization.quantizeRows(x, rows: rows, cols: cols)
        for r in 0..<rows {
            let row = Array(x[r * cols ..< (r + 1) * cols])
            let ref = referenceRow(row)
            XCTAssertEqual(Double(s[r]), ref.scale, accuracy: ref.scale * 1e-6, "row \(r) scale")
            var mismatches = 0
            for c in 0..<cols {
                let code = Int(q[r * cols + c])
                XCTAssert((-127...127).contains(code))
                // Float vs Double division may differ only at an exact .5 tie: allow one code off there.
                if code != ref.codes[c] { mismatches += 1; XCTAssertEqual(code, ref.codes[c], accuracy: 1) }
                // Reconstruction error at most half a step (plus float rounding).
                XCTAssertLessThanOrEqual(abs(Double(row[c]) - Double(code) * ref.scale), ref.scale * 0.5 + 1e-6, "row \(r) col \(c)")
            }
            XCTAssertLessThanOrEqual(mismatches, 1, "row \(r)")
        }
        XCTAssertEqual(s[2], 0)
        XCTAssert(q[2 * cols ..< 3 * cols].allSatisfy { $0 == 0 })
        XCTAssertEqual(q[4 * cols + 5], -127)
    }

    /// The layout walked in its own loop order (panel, quad, column, byte) against logical B.
    func checkLayout(_ p: Int8PanelLayout.Packed, logical: (Int, Int) -> Int8, file: StaticString = #filePath, line: UInt = #line) {
        let l = p.layout
        var i = 0
        for panel in 0..<l.panels {
            for g in 0..<l.quads {
                for c in 0..<l.nr {
                    for b in 0..<4 {
                        let kk = 4 * g + b, j = panel * l.nr + c
                        let want: Int8 = (kk < l.k && j < l.n) ? logical(kk, j) : 0
                        if p.codes[i] != want { XCTFail("byte \(i): B[\(kk), \(j)] = \(p.codes[i]), want \(want)", file: file, line: line); return }
                        i += 1
                    }
                }
            }
        }
        XCTAssertEqual(i, l.byteCount, file: file, line: line)
        for j in 0..<l.paddedN {
            let want = j < l.n ? (0..<l.k).reduce(Int32(0)) { $0 + Int32(logical($1, j)) } : 0
            XCTAssertEqual(p.columnSums[j], want, "column sum \(j)", file: file, line: line)
        }
    }

    func testKeysPackPerParameterTokenColumnScales() {
        // k not a multiple of 4, n not a multiple of nr, one all-zero key.
        for (k, n, nr) in [(5, 11, 8), (13, 40, 16), (3, 1, 8)] {
            var rng = TestRandom(seed: UInt64(k * 100 + n))
            var keys = rng.array(n * k, scale: 2)   // K[n, k]: B = Kᵀ
            for c in 0..<k { keys[(n / 2) * k + c] = 0 }
            let layout = Int8PanelLayout(k: k, n: n, nr: nr)
            let p = layout.packTransposed(keys)
            for j in 0..<n {
                let ref = referenceRow(Array(keys[j * k ..< (j + 1) * k]))
                XCTAssertEqual(Double(p.columnScales[j]), ref.scale, accuracy: ref.scale * 1e-6)
                for kk in 0..<k {
                    XCTAssertEqual(Double(p.value(kk, j)), Double(keys[j * k + kk]), accuracy: ref.scale * 0.5 + 1e-6)
                }
            }
            XCTAssert(p.depthScales.allSatisfy { $0 == 1 })
            let (q, _) = Int8Quantization.quantizeRows(keys, rows: n, cols: k)
            checkLayout(p) { kk, j in q[j * k + kk] }
        }
    }

    func testValuesPackPerParameterTokenDepthScales() {
        for (k, n, nr) in [(6, 9, 8), (17, 33, 16)] {
            var rng = TestRandom(seed: UInt64(k * 7 + n))
            let values = rng.array(k * n, scale: 0.5)  // V[k, n]: B = V, depth = parameter token
            let layout = Int8PanelLayout(k: k, n: n, nr: nr)
            let p = layout.pack(values)
            for kk in 0..<k {
                let ref = referenceRow(Array(values[kk * n ..< (kk + 1) * n]))
                XCTAssertEqual(Double(p.depthScales[kk]), ref.scale, accuracy: ref.scale * 1e-6)
                for j in 0..<n { XCTAssertEqual(Double(p.value(kk, j)), Double(values[kk * n + j]), accuracy: ref.scale * 0.5 + 1e-6) }
            }
            XCTAssert(p.columnScales[0..<n].allSatisfy { $0 == 1 })
            let (q, _) = Int8Quantization.quantizeRows(values, rows: k, cols: n)
            checkLayout(p) { kk, j in q[kk * n + j] }
        }
    }

    /// The embedding lookup from the logits' packed table: row j dequantised is within half a
    /// step of the fp32 row, and equals codes × scale of the per-row reference.
    func testEmbeddingRowsFromTheLogitsTable() {
        let vocab = 29, d = 18
        var rng = TestRandom(seed: 29)
        let embedding = rng.array(vocab * d)
        let p = Int8PanelLayout(k: d, n: vocab, nr: 16).packTransposed(embedding)
        var row = [Float](repeating: .nan, count: d)
        for j in 0..<vocab {
            row.withUnsafeMutableBufferPointer { p.dequantizedColumn(j, into: $0.baseAddress!) }
            let ref = referenceRow(Array(embedding[j * d ..< (j + 1) * d]))
            for c in 0..<d {
                // Float rounding of the scale and of the product: a few ulp of the value.
                let want = Double(ref.codes[c]) * ref.scale
                XCTAssertEqual(Double(row[c]), want, accuracy: abs(want) * 1e-6 + 1e-30, "token \(j) col \(c)")
                XCTAssertEqual(Double(row[c]), Double(embedding[j * d + c]), accuracy: ref.scale * 0.5 + 1e-6)
            }
        }
    }
}
