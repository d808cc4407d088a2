import XCTest
@testable import TFCodegen

/// The bf16 micro-kernels against a float64 reference on bf16-rounded weights (and, for
/// `vdpbf16ps`, bf16-rounded activations), on every (target, bf16 kernel) this CPU can run.
/// Products and sums are fp32 in the kernels, so the bound is the fp32 kernels' 2e-5 for the
/// widening kernel; the vdpbf16ps kernels round activations in fp32 first, and a value within
/// an fp32 ulp of a bf16 rounding boundary could land one bf16 ulp (0.4%) away from the
/// reference's (about 7e-5 relative for one such element in a 53-wide row), so their bound is
/// 1e-4. Measured (fixed seeds): widening ≤ 6.0e-7, vdpbf16ps ≤ 2.2e-7; a wrong layout or pair
/// order is O(1).
final class BF16KernelTests: XCTestCase {
    /// The bf16 kernels each runnable target can execute: widening everywhere, vdpbf16ps on
    /// AVX-512 when the CPU has AVX512_BF16.
    static var cases: [(VectorTarget, MicroKernelKind)] {
        TestJIT.runnable.flatMap { vector -> [(VectorTarget, MicroKernelKind)] in
            var kinds: [MicroKernelKind] = [.bf16WidenFMA]
            if vector.isa == .avx512 && TargetHost.host.has("avx512bf16") { kinds.append(.bf16DotBF16) }
            return kinds.map { (vector, $0) }
        }
    }

    func bf16(_ x: Float) -> Float { BF16.float(BF16.round(x)) }

    /// Bound on the relative error for `kernel` (see the class comment).
    func tolerance(_ kernel: MicroKernelKind) -> Double { kernel == .bf16DotBF16 ? 1e-4 : 2e-5 }

    func packedBF16(_ layout: PanelLayout, transposed src: [Float]) -> AlignedBuffer {
        let b = AlignedBuffer(count: (layout.byteCount + 3) / 4)
        src.withUnsafeBufferPointer { s in
            layout.packTransposedBF16(s.baseAddress!, into: UnsafeMutableRawPointer(b.pointer).assumingMemoryBound(to: UInt16.self))
        }
        return b
    }

    func packedBF16(_ layout: PanelLayout, _ src: [Float]) -> AlignedBuffer {
        let b = AlignedBuffer(count: (layout.byteCount + 3) / 4)
        src.withUnsafeBufferPointer { s in
            layout.packBF16(s.baseAddress!, into: UnsafeMutableRawPointer(b.pointer).assumingMemoryBound(to: UInt16.self))
        }
        return b
    }

    func checkGemm(k: Int, n: Int, rows: [Int], eps: Float?, schedule: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(Self.cases.isEmpty)
        for (vector, kind) in Self.cases {
            let chosen = try! schedule.map { try GemmSchedule(parsing: $0, base: GemmSchedule.choose(k: k, n: n, for: vector), for: vector) }
            let spec = GemmKernelSpec(k: k, n: n, layerNormEps: eps, schedule: chosen, microKernel: kind, for: vector)
            XCTAssertEqual(spec.weightLayout.format, .bf16)
            let kernel = TestJIT.compile(for: vector) { [$0.addGemm(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(k * 31 + n))
            let w = rng.array(n * k)
            let packed = packedBF16(spec.weightLayout, transposed: w)
            let w16 = w.map(bf16)
            for T in rows {
                let x = rng.array(T * k, scale: 2)
                var ref = [Double](repeating: 0, count: T * n)
                for t in 0..<T {
                    var row = eps.map { layerNormRow(x[t * k ..< (t + 1) * k], eps: Double($0)) } ?? x[t * k ..< (t + 1) * k].map(Double.init)
                    if kind == .bf16DotBF16 { row = row.map { Double(bf16(Float($0))) } }
                    for j in 0..<n {
                        var s = 0.0
                        for kk in 0..<k { s += row[kk] * Double(w16[j * k + kk]) }
                        ref[t * n + j] = s
                    }
                }
                for threads in [1, 2] {
                    let X = AlignedBuffer(x), C = AlignedBuffer(count: T * n)
                    withThreads(threads) { kernel([X.raw, packed.raw, C.raw], rows: T) }
                    let err = relativeError(C.array, ref)
                    XCTAssertLessThan(err, tolerance(kind), "k=\(k) n=\(n) T=\(T) threads=\(threads) \(kind.name) on \(vector.name)", file: file, line: line)
                }
            }
        }
    }

    func testGemmEvenAndOddDepth() {
        checkGemm(k: 72, n: 53, rows: [1, 3, 33, 130], eps: nil)
        checkGemm(k: 37, n: 40, rows: [1, 7, 64], eps: 1e-5)
        checkGemm(k: 600, n: 96, rows: [5, 50], eps: nil)  // several depth blocks
        checkGemm(k: 45, n: 40, rows: [3, 20], eps: 1e-5, schedule: "kc=9")  // odd kc: blocks of 10, an odd last one
        // 16-column tiles out of 32-column panels (a compiled program's AVX2 variant): odd depth,
        // a partial last panel whose second tile is the partial one.
        checkGemm(k: 37, n: 56, rows: [1, 7, 64], eps: 1e-5, schedule: "nr=16 panel=32 kc=9")
    }

    /// `schedule`: `key=value` pairs applied to the score and the value GEMMs' chosen schedules.
    func checkPattention(dIn: Int, sites: [PattentionSite], eps: Float?, rows: [Int], schedule: String? = nil,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(Self.cases.isEmpty)
        for (vector, kind) in Self.cases {
            let chosen = PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, microKernel: kind, for: vector)
            let spec = try! schedule.map {
                PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites,
                                     schedule: try GemmSchedule(parsing: $0, base: chosen.schedule, for: vector),
                                     valueSchedule: try GemmSchedule(parsing: $0, base: chosen.valueSchedule, for: vector),
                                     microKernel: kind, for: vector)
            } ?? chosen
            let kernel = TestJIT.compile(for: vector) { [$0.addPattention(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(dIn * 131 + sites.count))
            let ks = sites.map { rng.array($0.tokens * dIn, scale: 0.5) }
            let vs = sites.map { rng.array($0.tokens * $0.dOut) }
            let kp = sites.indices.map { packedBF16(spec.keyLayout($0), transposed: ks[$0]) }
            let vp = sites.indices.map { packedBF16(spec.valueLayout($0), vs[$0]) }
            for T in rows {
                let x = rng.array(T * dIn, scale: 1.5)
                let y0 = sites.map { rng.array(T * $0.dOut) }
                for threads in [1, 2] {
                    let X = AlignedBuffer(x)
                    let Ys = sites.indices.map { AlignedBuffer(y0[$0]) }
                    var args: [UnsafeMutableRawPointer?] = [X.raw]
                    for i in sites.indices { args += [kp[i].raw, vp[i].raw, Ys[i].raw] }
                    withThreads(threads) { kernel(args, rows: T, position: 3) }
                    for (i, site) in sites.enumerated() {
                        let ref = referencePattention(x: x, T: T, dIn: dIn, eps: eps, k: ks[i].map(bf16), v: vs[i].map(bf16), site: site,
                                                      y0: site.residual ? y0[i] : nil, p0: 3, bf16Activations: kind == .bf16DotBF16)
                        let err = relativeError(Ys[i].array, ref)
                        XCTAssertLessThan(err, tolerance(kind), "T=\(T) threads=\(threads) site \(i) \(site) \(kind.name) on \(vector.name)",
                                          file: file, line: line)
                    }
                }
            }
        }
    }

    /// Odd depths and token counts (zero pads in both operands), the row path (many rows) and the
    /// column path (few rows, 2 threads), residual and rotary epilogues, several sites.
    func testPattentionSites() {
        checkPattention(dIn: 72, sites: [PattentionSite(tokens: 53, dOut: 72, residual: true)], eps: 1e-5, rows: [1, 2, 33, 130])
        checkPattention(dIn: 37, sites: [PattentionSite(tokens: 64, dOut: 40, activation: .softmax)], eps: nil, rows: [1, 7, 64])
        checkPattention(dIn: 64, sites: [PattentionSite(tokens: 41, dOut: 64, rotary: RotaryEmbedding(heads: 4, headDim: 16)),
                                         PattentionSite(tokens: 41, dOut: 64), PattentionSite(tokens: 30, dOut: 32, activation: .geluL2Norm)],
                        eps: 1e-5, rows: [1, 5, 70])
        // 16-column tiles out of 32-column panels, keys and values: 53 tokens (the value GEMM's
        // depth) leave a partial second tile in the last key panel.
        checkPattention(dIn: 72, sites: [PattentionSite(tokens: 53, dOut: 56, residual: true)], eps: 1e-5, rows: [1, 2, 33, 130],
                        schedule: "nr=16 panel=32")
    }

    /// vdpbf16ps where it is selected, never on AVX2; bf16 panels are half the bytes.
    func testEmittedInstructionsAndPanelBytes() throws {
        let f32 = GemmKernelSpec(k: 64, n: 64, for: .avx512), bf = GemmKernelSpec(k: 64, n: 64, microKernel: .bf16WidenFMA, for: .avx512)
        XCTAssertEqual(bf.weightLayout.byteCount * 2, f32.weightLayout.byteCount)
        let dot = GemmKernelSpec(k: 64, n: 64, microKernel: .bf16DotBF16, for: .avx512)
        let m = try KernelModule(name: "bf16asm", target: TargetHost(triple: TargetHost.host.triple, cpu: "x86-64-v4", features: "+avx512bf16", vector: .avx512))
        m.addGemm(dot)
        let asm = try m.assembly()
        XCTAssertTrue(asm.contains("vdpbf16ps"), "the dot kernel uses vdpbf16ps")
        XCTAssertTrue(asm.contains("vcvtneps2bf16"), "activations are rounded with vcvtneps2bf16")
        let w = try KernelModule(name: "bf16widen", target: .portable(.avx2))
        w.addGemm(GemmKernelSpec(k: 64, n: 64, microKernel: .bf16WidenFMA, for: .avx2))
        let wasm = try w.assembly()
        XCTAssertFalse(wasm.contains("vdpbf16ps"))
        XCTAssertTrue(wasm.contains("vpslld"), "the widening kernel shifts the even halves up")
    }
}
