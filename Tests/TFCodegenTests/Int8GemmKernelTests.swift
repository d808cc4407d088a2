import XCTest
@testable import TFCodegen

func runInt8Gemm(_ kernel: CompiledKernel, a: [Int8], aScale: [Float], b: Int8PanelLayout.Packed, colScale: [Float], c: inout [Float], rows: Int) {
    var a = a, aScale = aScale, codes = b.codes, colScale = colScale, sums = b.columnSums
    a.withUnsafeMutableBytes { pa in aScale.withUnsafeMutableBytes { ps in codes.withUnsafeMutableBytes { pb in
        colScale.withUnsafeMutableBytes { pcs in sums.withUnsafeMutableBytes { psum in c.withUnsafeMutableBytes { pc in
            kernel([pa.baseAddress, ps.baseAddress, pb.baseAddress, pcs.baseAddress, psum.baseAddress, pc.baseAddress], rows: rows)
        } } }
    } } }
}


/// The int8 GEMM kernels against an exact integer reference: int32 sums of the codes must match
/// exactly (unit scales), and the scaled result must match the same sums times the scales in Double.
final class Int8GemmKernelTests: XCTestCase {
    struct Case { var k: Int; var n: Int; var rows: [Int] }
    let cases = [Case(k: 5, n: 13, rows: [1, 2, 3, 4, 5, 9]), Case(k: 37, n: 40, rows: [1, 4, 7]), Case(k: 64, n: 16, rows: [3])]

    /// Activations `[T, k]` quantised per row into `[T, lda]` codes (zero-padded depth).
    func quantizedActivations(_ x: [Float], rows: Int, k: Int, lda: Int) -> ([Int8], [Float]) {
        let (q, s) = Int8Quantization.quantizeRows(x, rows: rows, cols: k)
        var padded = [Int8](repeating: 0, count: rows * lda)
        for r in 0..<rows { for c in 0..<k { padded[r * lda + c] = q[r * k + c] } }
        return (padded, s)
    }

    func check(vector: VectorTarget, vnni: Bool, accumulate: Bool) {
        for threads in [1, 2] { withThreads(threads) { checkCases(vector: vector, vnni: vnni, accumulate: accumulate) } }
    }

    func checkCases(vector: VectorTarget, vnni: Bool, accumulate: Bool) {
        for cs in cases {
            let spec = Int8GemmKernelSpec(k: cs.k, n: cs.n, accumulate: accumulate, vnni: vnni, for: vector)
            let kernel = TestJIT.compile(for: vector) { [$0.addInt8Gemm(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(cs.k * 31 + cs.n))
            var keys = rng.array(cs.n * cs.k, scale: 2)
            for c in 0..<cs.k { keys[(cs.n - 1) * cs.k + c] = 0 }     // an all-zero parameter token
            let packed = spec.layout.packTransposed(keys)
            let (kq, _) = Int8Quantization.quantizeRows(keys, rows: cs.n, cols: cs.k)
            for T in cs.rows {
                var x = rng.array(T * cs.k, scale: 3)
                for c in 0..<cs.k { x[(T / 2) * cs.k + c] = 0 }          // an all-zero activation row
                let (aq, aScale) = quantizedActivations(x, rows: T, k: cs.k, lda: spec.lda)
                // Exact integer sums from the unpadded codes.
                var sums = [Int](repeating: 0, count: T * cs.n)
                for t in 0..<T { for j in 0..<cs.n { for kk in 0..<cs.k {
                    sums[t * cs.n + j] += Int(aq[t * spec.lda + kk]) * Int(kq[j * cs.k + kk])
                } } }
                let c0 = rng.array(T * cs.n)
                // 1. Unit scales: the int32 sums exactly.
                var c = accumulate ? c0 : [Float](repeating: .nan, count: T * cs.n)
                runInt8Gemm(kernel, a: aq, aScale: [Float](repeating: 1, count: T), b: packed,
                    colScale: [Float](repeating: 1, count: spec.layout.paddedN), c: &c, rows: T)
                for i in 0..<c.count {
                    let want = Double(sums[i]) + (accumulate ? Double(c0[i]) : 0)
                    XCTAssertEqual(Double(c[i]), want, accuracy: accumulate ? abs(want) * 1e-6 : 0, "\(vector.name) vnni=\(vnni) k=\(cs.k) n=\(cs.n) T=\(T) i=\(i)")
                }
                // 2. The real scales.
                c = accumulate ? c0 : [Float](repeating: .nan, count: T * cs.n)
                runInt8Gemm(kernel, a: aq, aScale: aScale, b: packed, colScale: packed.columnScales, c: &c, rows: T)
                for t in 0..<T { for j in 0..<cs.n {
                    let i = t * cs.n + j
                    let want = Double(sums[i]) * Double(aScale[t]) * Double(packed.columnScales[j]) + (accumulate ? Double(c0[i]) : 0)
                    XCTAssertEqual(Double(c[i]), want, accuracy: abs(want) * 1e-6 + 1e-30, "\(vector.name) scaled k=\(cs.k) n=\(cs.n) T=\(T) (\(t), \(j))")
                } }
                if T > 1 { XCTAssert((0..<cs.n).allSatisfy { c[(T / 2) * cs.n + $0] == (accumulate ? c0[(T / 2) * cs.n + $0] : 0) }) }
            }
        }
    }

    func testAVX2PairsMatchExactIntegerReference() throws {
        try XCTSkipUnless(TestJIT.runnable.contains(.avx2), "AVX2 not available")
        check(vector: .avx2, vnni: false, accumulate: false)
        check(vector: .avx2, vnni: false, accumulate: true)
    }

    /// AVX-512 CPUs without VNNI take the pairs kernel, 512 bits wide (the sign by compare/select).
    func testAVX512PairsMatchExactIntegerReference() throws {
        try XCTSkipUnless(TestJIT.runnable.contains(.avx512), "AVX-512 not available")
        check(vector: .avx512, vnni: false, accumulate: false)
        check(vector: .avx512, vnni: false, accumulate: true)
    }

    func testVNNIMatchesExactIntegerReferenceWhereTheCPUHasIt() throws {
        try XCTSkipUnless(TestJIT.runnable.contains(.avx512) && TargetHost.host.has("avx512vnni"), "no AVX512_VNNI on this CPU (emitted code checked in testEmittedInstructions)")
        check(vector: .avx512, vnni: true, accumulate: false)
        check(vector: .avx512, vnni: true, accumulate: true)
    }

    func testEmittedInstructions() throws {
        let avx2 = try KernelModule(name: "i8_avx2", target: .portable(.avx2))
        _ = avx2.addInt8Gemm(Int8GemmKernelSpec(k: 37, n: 40, for: .avx2))
        let asm2 = try avx2.assembly()
        for insn in ["vpsignb", "vpmaddubsw", "vpmaddwd", "vmaskmovps"] { XCTAssertTrue(asm2.contains(insn), "AVX2 int8 kernel lacks \(insn)") }
        XCTAssertFalse(asm2.contains("%zmm"))
        let host = TargetHost.host
        let vnniTarget = TargetHost(triple: host.triple, cpu: "x86-64-v4", features: "+avx512vnni", vector: .avx512)
        let vnni = try KernelModule(name: "i8_vnni", target: vnniTarget)
        _ = vnni.addInt8Gemm(Int8GemmKernelSpec(k: 37, n: 40, vnni: true, for: .avx512))
        let asm = try vnni.assembly()
        XCTAssertTrue(asm.contains("vpdpbusd"), "VNNI int8 kernel lacks vpdpbusd")
        XCTAssertTrue(asm.contains("%zmm"))
        XCTAssertFalse(asm.contains("vpmaddubsw"))
    }
}

/// The emitted per-row activation quantiser against `Int8Quantization` (itself checked against
/// float64), and the values-side product `A · V` (depth scales folded into the activations)
/// through quantiser + int8 kernel against a float64 product.
final class Int8ActivationQuantizerTests: XCTestCase {
    func quantize(_ kernel: CompiledKernel, _ x: [Float], depthScales: [Float], rows: Int, lda: Int) -> ([Int8], [Float]) {
        var x = x, ds = depthScales
        var q = [Int8](repeating: 99, count: rows * lda), s = [Float](repeating: .nan, count: rows)
        x.withUnsafeMutableBytes { px in ds.withUnsafeMutableBytes { pd in q.withUnsafeMutableBytes { pq in s.withUnsafeMutableBytes { ps in
            kernel([px.baseAddress, pd.baseAddress, pq.baseAddress, ps.baseAddress], rows: rows)
        } } } }
        return (q, s)
    }

    func testEmittedQuantizerMatchesSwiftQuantizer() {
        for vector in TestJIT.runnable {
            for (k, ldx, scaled) in [(5, 5, false), (37, 40, true), (64, 64, false), (3, 3, true)] {
                let spec = Int8ActivationQuantizerSpec(k: k, ldx: ldx, depthScaled: scaled)
                let kernel = TestJIT.compile(for: vector) { [$0.addInt8ActivationQuantizer(spec)] }[spec.symbol]!
                var rng = TestRandom(seed: UInt64(k + ldx))
                let rows = 6
                var x = rng.array(rows * ldx, scale: 4)
                for c in 0..<ldx { x[2 * ldx + c] = 0 }
                let ds = scaled ? rng.array(k).map { abs($0) + 0.01 } : [Float](repeating: 1, count: k)
                let (q, s) = quantize(kernel, x, depthScales: ds, rows: rows, lda: spec.lda)
                var dense = [Float](repeating: 0, count: rows * k)
                for r in 0..<rows { for c in 0..<k { dense[r * k + c] = x[r * ldx + c] * ds[c] } }
                let (rq, rs) = Int8Quantization.quantizeRows(dense, rows: rows, cols: k)
                XCTAssertEqual(s, rs, "\(vector.name) k=\(k) scales")
                for r in 0..<rows {
                    XCTAssertEqual(Array(q[r * spec.lda ..< r * spec.lda + k]), Array(rq[r * k ..< (r + 1) * k]), "\(vector.name) k=\(k) row \(r)")
                    XCTAssert(q[r * spec.lda + k ..< (r + 1) * spec.lda].allSatisfy { $0 == 0 }, "padding")
                }
            }
        }
    }

    func testValuesProductWithFoldedDepthScalesIsWithinQuantizationError() {
        for vector in TestJIT.runnable {
            let k = 96, n = 40, rows = 7
            let qspec = Int8ActivationQuantizerSpec(k: k, depthScaled: true)
            let gspec = Int8GemmKernelSpec(k: k, n: n, for: vector)
            let kernels = TestJIT.compile(for: vector) { [$0.addInt8ActivationQuantizer(qspec), $0.addInt8Gemm(gspec)] }
            var rng = TestRandom(seed: 7)
            let a = rng.array(rows * k, scale: 2), v = rng.array(k * n)
            let packed = gspec.layout.pack(v)
            let (aq, as_) = quantize(kernels[qspec.symbol]!, a, depthScales: packed.depthScales, rows: rows, lda: qspec.lda)
            var c = [Float](repeating: .nan, count: rows * n)
            runInt8Gemm(kernels[gspec.symbol]!, a: aq, aScale: as_, b: packed, colScale: packed.columnScales, c: &c, rows: rows)
            var err = 0.0, mag = 0.0
            for t in 0..<rows { for j in 0..<n {
                var ref = 0.0
                for kk in 0..<k { ref += Double(a[t * k + kk]) * Double(v[kk * n + j]) }
                err += (Double(c[t * n + j]) - ref) * (Double(c[t * n + j]) - ref)
                mag += ref * ref
            } }
            // Uniform data: each factor's rounding error is ~ (max/127)/√12 against an RMS of max/√3,
            // 0.39% each, ~0.55% combined in the product; 1.5% leaves room but catches a wrong scale.
            let rel = (err / mag).squareRoot()
            XCTAssertLessThan(rel, 0.015, "\(vector.name) relative RMS error \(rel)")
            XCTAssertGreaterThan(rel, 0, "int8 is not exact: the check would be vacuous")
            print("int8 values product relative RMS error (\(vector.name)): \(rel)")
        }
    }

    /// The scores side `X · Kᵀ` (per-key column scales, X quantised per row without depth scales)
    /// at an awkward k and n, 1 and 2 threads.
    func testKeysProductIsWithinQuantizationError() {
        for vector in TestJIT.runnable {
            let k = 75, n = 53, rows = 9
            let qspec = Int8ActivationQuantizerSpec(k: k, ldx: 80)
            let gspec = Int8GemmKernelSpec(k: k, n: n, ldc: 60, for: vector)
            let kernels = TestJIT.compile(for: vector) { [$0.addInt8ActivationQuantizer(qspec), $0.addInt8Gemm(gspec)] }
            var rng = TestRandom(seed: 75)
            let x = rng.array(rows * 80, scale: 2), keys = rng.array(n * k)
            let packed = gspec.layout.packTransposed(keys)
            let (xq, xs) = quantize(kernels[qspec.symbol]!, x, depthScales: [Float](repeating: 1, count: k), rows: rows, lda: qspec.lda)
            for threads in [1, 2] {
                var c = [Float](repeating: -7, count: rows * 60)
                withThreads(threads) { runInt8Gemm(kernels[gspec.symbol]!, a: xq, aScale: xs, b: packed, colScale: packed.columnScales, c: &c, rows: rows) }
                var err = 0.0, mag = 0.0
                for t in 0..<rows {
                    for j in 0..<n {
                        var ref = 0.0
                        for kk in 0..<k { ref += Double(x[t * 80 + kk]) * Double(keys[j * k + kk]) }
                        err += (Double(c[t * 60 + j]) - ref) * (Double(c[t * 60 + j]) - ref)
                        mag += ref * ref
                    }
                    XCTAssert(c[t * 60 + n ..< t * 60 + 60].allSatisfy { $0 == -7 }, "columns past n untouched")
                }
                let rel = (err / mag).squareRoot()
                XCTAssertLessThan(rel, 0.015, "\(vector.name) threads \(threads) relative RMS error \(rel)")
                XCTAssertGreaterThan(rel, 0)
                print("int8 keys product relative RMS error (\(vector.name), \(threads) threads): \(rel)")
            }
        }
    }
}
