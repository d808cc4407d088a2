import XCTest
@testable import TFCodegen

/// The weight-format interface: option parsing, bf16 rounding and the k-pair panel layout,
/// and the micro-kernel table.
final class WeightFormatTests: XCTestCase {
    /// Independent round-to-nearest-even: the two bf16 neighbours of x, compared in float64.
    func referenceRound(_ x: Float) -> Float {
        let t = x.bitPattern & 0xffff_0000
        let lo = Float(bitPattern: t), hi = Float(bitPattern: t &+ 0x1_0000)
        let dlo = abs(Double(x) - Double(lo)), dhi = abs(Double(x) - Double(hi))
        if dlo < dhi { return lo }
        if dhi < dlo { return hi }
        return (t >> 16) & 1 == 0 ? lo : hi
    }

    func testRoundingIsNearestEvenAndKeepsNaN() {
        var rng = SystemRandomNumberGenerator()
        var values: [Float] = [0, -0, 1, -1, 1.00390625, 1.01171875, 3.14159, 65504, 1e-30, -2.5e-3, .greatestFiniteMagnitude]
        // Exact ties: the bits below bf16 precision are 0x8000.
        values += [Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0xbf80_8000)]
        for _ in 0..<20000 { values.append(Float(bitPattern: UInt32.random(in: 0..<0x7f80_0000, using: &rng)) * (Bool.random() ? 1 : -1)) }
        for x in values {
            let got = BF16.float(BF16.round(x))
            if x.isFinite && abs(x) < Float.greatestFiniteMagnitude * 0.99 {
                XCTAssertEqual(got.bitPattern, referenceRound(x).bitPattern, "round(\(x))")
            }
        }
        XCTAssertEqual(BF16.float(BF16.round(Float(bitPattern: 0x3f80_8000))), 1)          // tie to even (down)
        XCTAssertEqual(BF16.float(BF16.round(Float(bitPattern: 0x3f81_8000))), 1.015625)   // tie to even (up)
        XCTAssertTrue(BF16.float(BF16.round(.nan)).isNaN)
        XCTAssertTrue(BF16.float(BF16.round(Float(bitPattern: 0x7f80_0001))).isNaN)       // low-bit NaN not turned into Inf
        XCTAssertEqual(BF16.float(BF16.round(.infinity)), .infinity)
    }

    func testBF16PanelsAreKPairInterleaved() {
        let k = 5, n = 19
        let layout = PanelLayout(k: k, n: n, nr: 16, format: .bf16)
        XCTAssertEqual(layout.paddedK, 6)
        XCTAssertEqual(layout.count, 2 * 16 * 6)
        XCTAssertEqual(layout.byteCount, layout.count * 2)
        let src = (0..<(n * k)).map { Float($0) * 0.37 - 11 }   // [n, k] row-major
        var packed = [UInt16](repeating: 0xffff, count: layout.count)
        src.withUnsafeBufferPointer { s in packed.withUnsafeMutableBufferPointer { layout.packTransposedBF16(s.baseAddress!, into: $0.baseAddress!) } }
        // Raw positions: panel p, pair kp, column c → [B[2kp, j], B[2kp+1, j]].
        for j in 0..<32 {
            for kk in 0..<6 {
                let raw = packed[(j / 16) * 16 * 6 + ((kk / 2) * 16 + j % 16) * 2 + kk % 2]
                let want: Float = (j < n && kk < k) ? referenceRound(src[j * k + kk]) : 0
                XCTAssertEqual(BF16.float(raw).bitPattern, want.bitPattern, "B[\(kk), \(j)]")
            }
        }
        // The [k, n] packing gives the same panels for the transposed source.
        var srcKN = [Float](repeating: 0, count: n * k)
        for j in 0..<n { for kk in 0..<k { srcKN[kk * n + j] = src[j * k + kk] } }
        var packed2 = [UInt16](repeating: 0xffff, count: layout.count)
        srcKN.withUnsafeBufferPointer { s in packed2.withUnsafeMutableBufferPointer { layout.packBF16(s.baseAddress!, into: $0.baseAddress!) } }
        XCTAssertEqual(packed, packed2)
    }

    func testOptionParsing() throws {
        XCTAssertEqual(try WeightFormat.parse("bf16"), .bf16)
        XCTAssertEqual(try WeightFormat.parseList("f32,bf16"), [.f32, .bf16])
        XCTAssertThrowsError(try WeightFormat.parse("fp8")) {
            XCTAssertEqual("\($0)", "codegen: --weights-format: unknown format 'fp8'; use f32, bf16, int8")
        }
        XCTAssertEqual(try WeightFormat.parse("int8"), .int8)
        XCTAssertEqual(try WeightFormat.parseList("all"), [.f32, .bf16, .int8])
        XCTAssertThrowsError(try WeightFormat.parseList("f32,,bf16"))
    }

    func testMicroKernelTablePicksByCPU() throws {
        let none: (String) -> Bool = { _ in false }
        let bf16CPU: (String) -> Bool = { $0 == "avx512bf16" }
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .f32, isa: .avx2, has: none).kernel, .f32FMA)
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .bf16, isa: .avx2, has: bf16CPU).kernel, .bf16WidenFMA)
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .bf16, isa: .avx512, has: none).kernel, .bf16WidenFMA)
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .bf16, isa: .avx512, has: bf16CPU).kernel, .bf16DotBF16)
        let vnniCPU: (String) -> Bool = { $0 == "avx512vnni" }
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .int8, isa: .avx2, has: vnniCPU).kernel, .int8Pairs)
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .int8, isa: .avx512, has: none).kernel, .int8Pairs)
        XCTAssertEqual(try MicroKernelTable.lookup(weights: .int8, isa: .avx512, has: vnniCPU).kernel, .int8VNNI)
    }
}
