import XCTest
@testable import TFCodegen

/// The int8 quantiser and panel layout against float64 references written independently here.
final class Int8QuantizationTests: XCTestCase {
    /// Reference for one group: scale max|x|/127 in Double, codes round-half-even(x/scale) clamped to ±127.
    func referenceGroup(_ x: [Float]) -> (codes: [Int], scale: Double) {
        let m = x.map { abs(Double($0)) }.max() ?? 0
        let s = m / 127
        if s == 0 { return ([Int](repeating: 0, count: x.count), 0) }
        return (x.map { max(-127, min(127, Int((Double($0) / s).rounded(.toNearestOrEven)))) }, s)
    }

    /// Reference for one group of stored weights: the scale max|x|/127 rounded up to the next
    /// bf16 value (8 significant bits: a multiple of 2^(e−7) for 2^e ≤ s < 2^(e+1)), in Double;
    /// codes round-half-even(x/scale), which then need no clamping.
    func referenceWeightGroup(_ x: [Float]) -> (codes: [Int], scale: Double) {
        let s = (x.map { abs(Double($0)) }.max() ?? 0) / 127
        if s == 0 { return ([Int](repeating: 0, count: x.count), 0) }
        let step = pow(2, (log2(s)).rounded(.down) - 7)
        let stored = (s / step).rounded(.up) * step
        return (x.map { Int((Double($0) / stored).rounded(.toNearestOrEven)) }, stored)
    }

    /// A depth vector split into runs of 32 (the last shorter), each with its reference
    /// (`weights`: the stored weights' bf16 scales, else the activations' fp32 ones).
    func referenceGroups(_ x: [Float], weights: Bool = false) -> [(range: Range<Int>, codes: [Int], scale: Double)] {
        stride(from: 0, to: x.count, by: 32).map { c0 in
            let r = c0 ..< min(x.count, c0 + 32)
            let ref = weights ? referenceWeightGroup(Array(x[r])) : referenceGroup(Array(x[r]))
            return (r, ref.codes, ref.scale)
        }
    }

    /// Codes `[n, k]` of `n` depth vectors of length `k` (row-major `src`), by the weight reference.
    func referenceWeightCodes(_ src: [Float], rows n: Int, depth k: Int) -> [Int8] {
        (0..<n).flatMap { j in referenceGroups(Array(src[j * k ..< (j + 1) * k]), weights: true).flatMap { $0.codes.map { Int8($0) } } }
    }

    func testWeightScalesRoundUpToBF16() {
        // 1/127 is not a bf16 value; its stored scale is the next one above, and the codes use it.
        let x: [Float] = [1, -0.5, 0.25, 0]
        let stored = x.withUnsafeBufferPointer { Int8Quantization.storedScale($0) }
        let s = BF16.float(stored)
        XCTAssertGreaterThan(Double(s), 1.0 / 127)
        XCTAssertEqual(Double(s), referenceWeightGroup(x).scale)
        XCTAssertLessThan(Double(s), 1.0 / 127 * (1 + 1.0 / 128))
        // A scale that is already bf16 stays (127 · 2⁻⁸ gives 2⁻⁸ exactly); an all-zero group stores 0.
        let exact = [Float(127.0 / 256), 0.1]
        XCTAssertEqual(BF16.float(exact.withUnsafeBufferPointer { Int8Quantization.storedScale($0) }), 1.0 / 256)
        XCTAssertEqual([Float](repeating: 0, count: 5).withUnsafeBufferPointer { Int8Quantization.storedScale($0) }, 0)
    }

    func testRowsMatchFloat64ReferenceInGroupsOf32() {
        var rng = TestRandom(seed: 12)
        let rows = 7, cols = 77            // groups 0..<32, 32..<64, 64..<77
        var x = rng.array(rows * cols, scale: 3)
        for c in 0..<cols { x[2 * cols + c] = 0 }          // an all-zero row
        for c in 32..<64 { x[5 * cols + c] = 0 }            // an all-zero group in a non-zero row
        x[4 * cols + 40] = -50                              // an outlier sets only its group's scale
        let (q, s) = Int8Quantization.quantizeRows(x, rows: rows, cols: cols)
        XCTAssertEqual(s.count, rows * 3)
        for r in 0..<rows {
            let row = Array(x[r * cols ..< (r + 1) * cols])
            for (g, ref) in referenceGroups(row).enumerated() {
                XCTAssertEqual(Double(s[r * 3 + g]), ref.scale, accuracy: ref.scale * 1e-6, "row \(r) group \(g) scale")
                var mismatches = 0
                for (i, c) in ref.range.enumerated() {
                    let code = Int(q[r * cols + c])
                    XCTAssert((-127...127).contains(code))
                    // Float vs Double division may differ only at an exact .5 tie: allow one code off there.
                    if code != ref.codes[i] { mismatches += 1; XCTAssertEqual(code, ref.codes[i], accuracy: 1) }
                    // Reconstruction error at most half a step of the group (plus float rounding).
                    XCTAssertLessThanOrEqual(abs(Double(row[c]) - Double(code) * ref.scale), ref.scale * 0.5 + 1e-6, "row \(r) col \(c)")
                }
                XCTAssertLessThanOrEqual(mismatches, 1, "row \(r) group \(g)")
            }
        }
        XCTAssert(s[6 ..< 9].allSatisfy { $0 == 0 })
        XCTAssert(q[2 * cols ..< 3 * cols].allSatisfy { $0 == 0 })
        XCTAssertEqual(s[5 * 3 + 1], 0)
        XCTAssertGreaterThan(s[5 * 3], 0)
        XCTAssertEqual(q[4 * cols + 40], -127)
        XCTAssertEqual(Double(s[4 * 3 + 1]), 50.0 / 127, accuracy: 1e-6)
        XCTAssertLessThan(s[4 * 3], 3.0 / 127 + 1e-6, "the outlier leaves the other groups' scales alone")
    }

    /// The stored bytes walked in their own order — panel, depth group, (quad, column, byte) codes,
    /// then the group's `nr` scales — against logical B and the given scales.
    func checkLayout(_ p: Int8PanelLayout.Packed, logical: (Int, Int) -> Int8, file: StaticString = #filePath, line: UInt = #line) {
        let l = p.layout
        var i = 0
        p.bytes.withUnsafeBytes { raw in
            for panel in 0..<l.panels {
                for g in 0..<l.groups {
                    for q in 0..<min(8, l.quads - 8 * g) {
                        for c in 0..<l.nr {
                            for b in 0..<4 {
                                let kk = 32 * g + 4 * q + b, j = panel * l.nr + c
                                let want: Int8 = (kk < l.k && j < l.n) ? logical(kk, j) : 0
                                let got = Int8(bitPattern: raw[i])
                                if got != want { XCTFail("byte \(i): B[\(kk), \(j)] = \(got), want \(want)", file: file, line: line); return }
                                i += 1
                            }
                        }
                    }
                    for c in 0..<l.nr {
                        XCTAssertEqual(BF16.float(raw.loadUnaligned(fromByteOffset: i, as: UInt16.self)), p.groupScale(g, panel * l.nr + c), file: file, line: line)
                        i += 2
                    }
                }
            }
        }
        XCTAssertEqual(i, l.byteCount, file: file, line: line)
    }

    /// Column j of logical B (`at(kk, j)`) against its groups' references: scales, codes, values.
    func checkColumns(_ p: Int8PanelLayout.Packed, at: (Int, Int) -> Float, file: StaticString = #filePath, line: UInt = #line) {
        let l = p.layout
        for j in 0..<l.n {
            let column = (0..<l.k).map { at($0, j) }
            for (g, ref) in referenceGroups(column, weights: true).enumerated() {
                XCTAssertEqual(Double(p.groupScale(g, j)), ref.scale, accuracy: ref.scale * 1e-6, "column \(j) group \(g)", file: file, line: line)
                for (i, kk) in ref.range.enumerated() {
                    XCTAssertEqual(Int(p.code(kk, j)), ref.codes[i], accuracy: 1, file: file, line: line)
                    XCTAssertEqual(Double(p.value(kk, j)), Double(column[kk]), accuracy: ref.scale * 0.5 + 1e-6, "B[\(kk), \(j)]", file: file, line: line)
                }
            }
        }
        for j in l.n ..< l.paddedN { for g in 0..<l.groups { XCTAssertEqual(p.groupScale(g, j), 0, file: file, line: line) } }
    }

    func testKeysPackInGroupsOfEachParameterToken() {
        // k below, at and above a group, not a multiple of 4; n not a multiple of nr; one all-zero key.
        for (k, n, nr) in [(5, 11, 8), (45, 40, 16), (3, 1, 8), (70, 9, 32)] {
            var rng = TestRandom(seed: UInt64(k * 100 + n))
            var keys = rng.array(n * k, scale: 2)   // K[n, k]: B = Kᵀ
            for c in 0..<k { keys[(n / 2) * k + c] = 0 }
            let layout = Int8PanelLayout(k: k, n: n, nr: nr)
            let p = layout.packTransposed(keys)
            checkColumns(p) { kk, j in keys[j * k + kk] }
            let q = referenceWeightCodes(keys, rows: n, depth: k)
            checkLayout(p) { kk, j in q[j * k + kk] }
        }
    }

    func testValuesPackInGroupsOfParameterTokensPerFeature() {
        for (k, n, nr) in [(6, 9, 8), (77, 33, 16)] {
            var rng = TestRandom(seed: UInt64(k * 7 + n))
            let values = rng.array(k * n, scale: 0.5)  // V[k, n]: B = V, depth = parameter token
            let layout = Int8PanelLayout(k: k, n: n, nr: nr)
            let p = layout.pack(values)
            checkColumns(p) { kk, j in values[kk * n + j] }
            let vT = (0..<n * k).map { values[($0 % k) * n + $0 / k] }       // vT[j, kk] = V[kk, j]
            let q = referenceWeightCodes(vT, rows: n, depth: k)
            checkLayout(p) { kk, j in q[j * k + kk] }
        }
    }

    /// The stored form is the packed bytes (codes and scales interleaved), padded to 64 bytes.
    func testStoredFormIsThePackedBytes() {
        let layout = PanelLayout(k: 45, n: 20, nr: 32, format: .int8)
        var rng = TestRandom(seed: 3)
        let keys = rng.array(20 * 45)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: layout.storedBytes, alignment: 64)
        defer { bytes.deallocate() }
        keys.withUnsafeBufferPointer { layout.packStored($0.baseAddress!, transposed: true, into: bytes) }
        let p = Int8PanelLayout(layout).packTransposed(keys)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: bytes.assumingMemoryBound(to: UInt8.self), count: p.bytes.count)), p.bytes)
        // One panel of 32 columns: a full group (8 quads) and a group of 4 quads (k 32..<48, 45..<48 zero), each with 32 bf16 scales.
        XCTAssertEqual(p.bytes.count, (8 * 32 * 4 + 32 * 2) + (4 * 32 * 4 + 32 * 2))
        XCTAssertEqual(layout.storedBytes % 64, 0)
        XCTAssertGreaterThanOrEqual(layout.storedBytes, p.bytes.count)
    }

    /// The embedding lookup from the logits' packed table: row j dequantised is within half a
    /// step of the fp32 row, and equals codes × group scale of the reference.
    func testEmbeddingRowsFromTheLogitsTable() {
        let vocab = 29, d = 50
        var rng = TestRandom(seed: 29)
        let embedding = rng.array(vocab * d)
        let p = Int8PanelLayout(k: d, n: vocab, nr: 16).packTransposed(embedding)
        var row = [Float](repeating: .nan, count: d)
        for j in 0..<vocab {
            row.withUnsafeMutableBufferPointer { p.dequantizedColumn(j, into: $0.baseAddress!) }
            for ref in referenceGroups(Array(embedding[j * d ..< (j + 1) * d]), weights: true) {
                for (i, c) in ref.range.enumerated() {
                    // Float rounding of the scale and of the product: a few ulp of the value.
                    let want = Double(ref.codes[i]) * ref.scale
                    XCTAssertEqual(Double(row[c]), want, accuracy: abs(want) * 1e-6 + 1e-30, "token \(j) col \(c)")
                    XCTAssertEqual(Double(row[c]), Double(embedding[j * d + c]), accuracy: ref.scale * 0.5 + 1e-6)
                }
            }
        }
    }
}
