import XCTest
@testable import TFCodegen

/// Runs an int8 GEMM kernel: activation codes `[T, lda]` with their group scales and code sums
/// (`[T, groups]`), B's packed bytes with its scales replaced by `groupScales` (`[groups, paddedN]`,
/// bf16 values, as the panels store them).
func runInt8Gemm(_ kernel: CompiledKernel, a: [Int8], aScale: [Float], aSums: [Int32], b: Int8PanelLayout.Packed, groupScales: [Float], c: inout [Float], rows: Int) {
    var a = a, aScale = aScale, aSums = aSums, bytes = b.bytes
    let l = b.layout
    bytes.withUnsafeMutableBytes { raw in
        for g in 0..<l.groups {
            for j in 0..<l.paddedN {
                let scale = groupScales[g * l.paddedN + j]
                precondition(BF16.float(BF16.round(scale)) == scale, "a test scale that bf16 cannot hold")
                raw.storeBytes(of: BF16.round(scale), toByteOffset: l.scaleOffset(g, j), as: UInt16.self)
            }
        }
    }
    a.withUnsafeMutableBytes { pa in aScale.withUnsafeMutableBytes { ps in aSums.withUnsafeMutableBytes { psum in
        bytes.withUnsafeMutableBytes { pb in c.withUnsafeMutableBytes { pc in
            kernel([pa.baseAddress, ps.baseAddress, psum.baseAddress, pb.baseAddress, pc.baseAddress], rows: rows)
        } }
    } } }
}

extension Int8PanelLayout.Packed {
    /// The scales as a `[groups, paddedN]` array.
    var groupScales: [Float] { (0..<layout.groups * layout.paddedN).map { groupScale($0 / layout.paddedN, $0 % layout.paddedN) } }
}

/// Each row's code sum per depth group of 32 (what the quantiser hands the VNNI kernel).
func groupCodeSums(_ codes: [Int8], rows: Int, lda: Int, k: Int) -> [Int32] {
    let groups = Int8Quantization.groups(k)
    return (0..<rows * groups).map { i in
        let r = i / groups, g = i % groups
        return (g * 32 ..< min(k, g * 32 + 32)).reduce(Int32(0)) { $0 + Int32(codes[r * lda + $1]) }
    }
}

/// The int8 GEMM kernels against an exact integer reference: the int32 sums of each depth group
/// must match exactly (unit scales), and the scaled result must match the group sums times both
/// groups' scales in Double.
final class Int8GemmKernelTests: XCTestCase {
    struct Case { var k: Int; var n: Int; var rows: [Int] }
    // Depths inside one group, over two groups with a partial tail, and exactly two groups.
    let cases = [Case(k: 5, n: 13, rows: [1, 2, 3, 4, 5, 9]), Case(k: 37, n: 40, rows: [1, 4, 7]), Case(k: 64, n: 16, rows: [3]),
                 Case(k: 101, n: 70, rows: [2, 5])]

    /// Activations `[T, k]` quantised in groups into `[T, lda]` codes (zero-padded depth).
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
            let groups = spec.groups, paddedN = spec.layout.paddedN
            var rng = TestRandom(seed: UInt64(cs.k * 31 + cs.n))
            var keys = rng.array(cs.n * cs.k, scale: 2)
            for c in 0..<cs.k { keys[(cs.n - 1) * cs.k + c] = 0 }     // an all-zero parameter token
            let packed = spec.layout.packTransposed(keys)
            let (kq, _) = Int8Quantization.quantizeWeightRows(keys, rows: cs.n, cols: cs.k)
            for T in cs.rows {
                var x = rng.array(T * cs.k, scale: 3)
                for c in 0..<cs.k { x[(T / 2) * cs.k + c] = 0 }          // an all-zero activation row
                let (aq, aScale) = quantizedActivations(x, rows: T, k: cs.k, lda: spec.lda)
                let aSums = groupCodeSums(aq, rows: T, lda: spec.lda, k: cs.k)
                // Exact integer sums per group from the unpadded codes.
                var sums = [Int](repeating: 0, count: T * cs.n * groups)
                for t in 0..<T { for j in 0..<cs.n { for kk in 0..<cs.k {
                    sums[(t * cs.n + j) * groups + kk / 32] += Int(aq[t * spec.lda + kk]) * Int(kq[j * cs.k + kk])
                } } }
                let c0 = rng.array(T * cs.n)
                // 1. Unit scales: the int32 sums exactly.
                var c = accumulate ? c0 : [Float](repeating: .nan, count: T * cs.n)
                runInt8Gemm(kernel, a: aq, aScale: [Float](repeating: 1, count: T * groups), aSums: aSums, b: packed,
                            groupScales: [Float](repeating: 1, count: groups * paddedN), c: &c, rows: T)
                for i in 0..<c.count {
                    let want = Double(sums[i * groups ..< (i + 1) * groups].reduce(0, +)) + (accumulate ? Double(c0[i]) : 0)
                    XCTAssertEqual(Double(c[i]), want, accuracy: accumulate ? abs(want) * 1e-6 : 0, "\(vector.name) vnni=\(vnni) k=\(cs.k) n=\(cs.n) T=\(T) i=\(i)")
                }
                // 2. The real scales: Σ_g sum_g · aScale[t, g] · groupScale[g, j].
                c = accumulate ? c0 : [Float](repeating: .nan, count: T * cs.n)
                runInt8Gemm(kernel, a: aq, aScale: aScale, aSums: aSums, b: packed, groupScales: packed.groupScales, c: &c, rows: T)
                for t in 0..<T { for j in 0..<cs.n {
                    let i = t * cs.n + j
                    var want = accumulate ? Double(c0[i]) : 0, mag = abs(want)
                    for g in 0..<groups {
                        let term = Double(sums[i * groups + g]) * Double(aScale[t * groups + g]) * Double(packed.groupScales[g * paddedN + j])
                        want += term
                        mag += abs(term)
                    }
                    XCTAssertEqual(Double(c[i]), want, accuracy: mag * 1e-6 + 1e-30, "\(vector.name) scaled k=\(cs.k) n=\(cs.n) T=\(T) (\(t), \(j))")
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
        // vpmovzxwd: the bf16 group scales widened to fp32 (zero-extend, then shift).
        for insn in ["vpsignb", "vpmaddubsw", "vpmaddwd", "vmaskmovps", "vpmovzxwd"] { XCTAssertTrue(asm2.contains(insn), "AVX2 int8 kernel lacks \(insn)") }
        XCTAssertFalse(asm2.contains("%zmm"))
        let host = TargetHost.host
        let vnniTarget = TargetHost(triple: host.triple, cpu: "x86-64-v4", features: "+avx512vnni", vector: .avx512)
        let vnni = try KernelModule(name: "i8_vnni", target: vnniTarget)
        _ = vnni.addInt8Gemm(Int8GemmKernelSpec(k: 37, n: 40, vnni: true, for: .avx512))
        let asm = try vnni.assembly()
        XCTAssertTrue(asm.contains("vpdpbusd"), "VNNI int8 kernel lacks vpdpbusd")
        XCTAssertTrue(asm.contains("vpmovzxwd"), "VNNI int8 kernel does not widen bf16 scales")
        XCTAssertTrue(asm.contains("%zmm"))
        XCTAssertFalse(asm.contains("vpmaddubsw"))
    }
}

/// The emitted activation quantiser against `Int8Quantization` (itself checked against float64),
/// and both products through quantiser + int8 kernel against float64 products.
final class Int8ActivationQuantizerTests: XCTestCase {
    func quantize(_ kernel: CompiledKernel, _ x: [Float], rows: Int, spec: Int8ActivationQuantizerSpec) -> ([Int8], [Float], [Int32]) {
        var x = x
        var q = [Int8](repeating: 99, count: rows * spec.lda), s = [Float](repeating: .nan, count: rows * spec.groups)
        var sums = [Int32](repeating: -1, count: rows * spec.groups)
        x.withUnsafeMutableBytes { px in q.withUnsafeMutableBytes { pq in s.withUnsafeMutableBytes { ps in sums.withUnsafeMutableBytes { psum in
            kernel([px.baseAddress, pq.baseAddress, ps.baseAddress, psum.baseAddress], rows: rows)
        } } } }
        return (q, s, sums)
    }

    func testEmittedQuantizerMatchesSwiftQuantizer() {
        for vector in TestJIT.runnable {
            for (k, ldx) in [(5, 5), (37, 40), (64, 64), (3, 3), (100, 112)] {
                let spec = Int8ActivationQuantizerSpec(k: k, ldx: ldx)
                let kernel = TestJIT.compile(for: vector) { [$0.addInt8ActivationQuantizer(spec)] }[spec.symbol]!
                var rng = TestRandom(seed: UInt64(k + ldx))
                let rows = 6
                var x = rng.array(rows * ldx, scale: 4)
                for c in 0..<ldx { x[2 * ldx + c] = 0 }
                let (q, s, sums) = quantize(kernel, x, rows: rows, spec: spec)
                var dense = [Float](repeating: 0, count: rows * k)
                for r in 0..<rows { for c in 0..<k { dense[r * k + c] = x[r * ldx + c] } }
                let (rq, rs) = Int8Quantization.quantizeRows(dense, rows: rows, cols: k)
                XCTAssertEqual(s, rs, "\(vector.name) k=\(k) scales")
                XCTAssertEqual(sums, groupCodeSums(q, rows: rows, lda: spec.lda, k: k), "\(vector.name) k=\(k) group code sums")
                for r in 0..<rows {
                    XCTAssertEqual(Array(q[r * spec.lda ..< r * spec.lda + k]), Array(rq[r * k ..< (r + 1) * k]), "\(vector.name) k=\(k) row \(r)")
                    XCTAssert(q[r * spec.lda + k ..< (r + 1) * spec.lda].allSatisfy { $0 == 0 }, "padding")
                }
            }
        }
    }

    /// `A · B` through the quantiser and the kernel (every int8 kernel this CPU runs) against a
    /// float64 product; `transposed` packs B from `[n, k]` (keys), else from `[k, n]` (values).
    func checkProduct(k: Int, n: Int, rows: Int, ldx: Int, ldc: Int, transposed: Bool, seed: UInt64) {
        for vector in TestJIT.runnable {
          let qspec = Int8ActivationQuantizerSpec(k: k, ldx: ldx)
          let vnnis = vector.isa == .avx512 && TargetHost.host.has("avx512vnni") ? [false, true] : [false]
          let gspecs = vnnis.map { Int8GemmKernelSpec(k: k, n: n, ldc: ldc, vnni: $0, for: vector) }
          let kernels = TestJIT.compile(for: vector) { m in [m.addInt8ActivationQuantizer(qspec)] + gspecs.map { m.addInt8Gemm($0) } }
          for (vnni, gspec) in zip(vnnis, gspecs) {
            var rng = TestRandom(seed: seed)
            let x = rng.array(rows * ldx, scale: 2), w = rng.array(k * n)
            let packed = transposed ? gspec.layout.packTransposed(w) : gspec.layout.pack(w)
            let (xq, xs, sums) = quantize(kernels[qspec.symbol]!, x, rows: rows, spec: qspec)
            for threads in [1, 2] {
                var c = [Float](repeating: -7, count: rows * ldc)
                withThreads(threads) { runInt8Gemm(kernels[gspec.symbol]!, a: xq, aScale: xs, aSums: sums, b: packed, groupScales: packed.groupScales, c: &c, rows: rows) }
                var err = 0.0, mag = 0.0
                for t in 0..<rows {
                    for j in 0..<n {
                        var ref = 0.0
                        for kk in 0..<k { ref += Double(x[t * ldx + kk]) * Double(transposed ? w[j * k + kk] : w[kk * n + j]) }
                        err += (Double(c[t * ldc + j]) - ref) * (Double(c[t * ldc + j]) - ref)
                        mag += ref * ref
                    }
                    XCTAssert(c[t * ldc + n ..< t * ldc + ldc].allSatisfy { $0 == -7 }, "columns past n untouched")
                }
                // Uniform data: each factor's rounding error is ~ (max/127)/√12 against an RMS of
                // max/√3, 0.39% each, ~0.55% combined in the product; 1.5% leaves room but catches a
                // wrong scale.
                let rel = (err / mag).squareRoot()
                XCTAssertLessThan(rel, 0.015, "\(vector.name) vnni=\(vnni) threads \(threads) k=\(k) relative RMS error \(rel)")
                XCTAssertGreaterThan(rel, 0, "int8 is not exact: the check would be vacuous")
                print("int8 product k=\(k) relative RMS error (\(vector.name), vnni=\(vnni), \(threads) threads): \(rel)")
            }
          }
        }
    }

    func testValuesProductIsWithinQuantizationError() {
        checkProduct(k: 96, n: 40, rows: 7, ldx: 96, ldc: 40, transposed: false, seed: 7)
    }

    /// The scores side `X · Kᵀ` at an awkward k and n, strided X and C.
    func testKeysProductIsWithinQuantizationError() {
        checkProduct(k: 75, n: 53, rows: 9, ldx: 80, ldc: 60, transposed: true, seed: 75)
    }

    /// A group with an outlier no longer spoils the rest of the row: the product error stays near
    /// the uniform case although one activation per row is 40× the others.
    func testAnOutlierCostsOnlyItsGroup() {
        for vector in TestJIT.runnable {
            let k = 256, n = 32, rows = 4
            let qspec = Int8ActivationQuantizerSpec(k: k)
            let gspec = Int8GemmKernelSpec(k: k, n: n, for: vector)
            let kernels = TestJIT.compile(for: vector) { [$0.addInt8ActivationQuantizer(qspec), $0.addInt8Gemm(gspec)] }
            var rng = TestRandom(seed: 40)
            var x = rng.array(rows * k), w = rng.array(k * n)
            for t in 0..<rows { x[t * k + 3] = 40 }
            for j in 0..<n { w[3 * n + j] = 0 }      // the outlier's weight row is zero: the error is the rest's
            let packed = gspec.layout.pack(w)
            let (xq, xs, sums) = quantize(kernels[qspec.symbol]!, x, rows: rows, spec: qspec)
            var c = [Float](repeating: 0, count: rows * n)
            runInt8Gemm(kernels[gspec.symbol]!, a: xq, aScale: xs, aSums: sums, b: packed, groupScales: packed.groupScales, c: &c, rows: rows)
            var err = 0.0, mag = 0.0
            for t in 0..<rows { for j in 0..<n {
                var ref = 0.0
                for kk in 0..<k { ref += Double(x[t * k + kk]) * Double(w[kk * n + j]) }
                err += (Double(c[t * n + j]) - ref) * (Double(c[t * n + j]) - ref)
                mag += ref * ref
            } }
            // Predicted (step²/12 against Σx²w²): one scale per row puts all 255 other values on a
            // 40/127 step, ≈ 16% error; groups put only the outlier's 31 neighbours there, ≈ 5.5%.
            let rel = (err / mag).squareRoot()
            XCTAssertLessThan(rel, 0.08, "\(vector.name)")
            print("int8 product with an outlier, relative RMS error (\(vector.name)): \(rel)")
        }
    }
}
