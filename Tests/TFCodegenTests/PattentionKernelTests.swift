import XCTest
@testable import TFCodegen

/// Scalar Double reference of a Pattention site (see docs/tokenformer-semantics.md).
func referencePattention(x: [Float], T: Int, dIn: Int, eps: Float?, k: [Float], v: [Float], site: PattentionSite,
                         y0: [Float]?, p0: Int, bf16Activations: Bool = false) -> [Double] {
    let n = site.tokens, dOut = site.dOut
    var out = [Double](repeating: 0, count: T * dOut)
    /// What the vdpbf16ps kernels multiply: the value rounded to fp32, then to bf16 (nearest-even).
    func activation(_ z: Double) -> Double { bf16Activations ? Double(BF16.float(BF16.round(Float(z)))) : z }
    for t in 0..<T {
        let row: [Double] = (eps.map { layerNormRow(x[t * dIn ..< (t + 1) * dIn], eps: Double($0)) } ?? x[t * dIn ..< (t + 1) * dIn].map(Double.init)).map(activation)
        var s = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var acc = 0.0
            for c in 0..<dIn { acc += row[c] * Double(k[j * dIn + c]) }
            s[j] = acc
        }
        func gelu(_ z: Double) -> Double { 0.5 * z * (1 + erf(z / 2.0.squareRoot())) }
        let tau = Double(site.tau)
        var a: [Double]
        switch site.activation {
        case .l2NormGelu:
            let norm = s.map { $0 * $0 }.reduce(0, +).squareRoot()
            a = s.map { gelu(norm > 0 ? $0 / norm * tau : 0) }
        case .geluL2Norm:
            let g = s.map(gelu)
            let norm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
            a = g.map { norm > 0 ? $0 / norm * tau : 0 }
        case .softmax:
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            a = e.map { $0 / sum * Double(n) }
        }
        a = a.map(activation)
        var o = [Double](repeating: 0, count: dOut)
        for j in 0..<n where a[j] != 0 {
            for c in 0..<dOut { o[c] += a[j] * Double(v[j * dOut + c]) }
        }
        if let r = site.rotary {
            let inv = r.inverseFrequencies
            let half = r.rotaryDims / 2
            for h in 0..<r.heads {
                let b = h * r.headDim
                let orig = o
                for j in 0..<half {
                    let theta = Double(Float(p0 + t) * inv[j])
                    let c = cos(theta), sn = sin(theta)
                    o[b + j] = orig[b + j] * c - orig[b + j + half] * sn
                    o[b + j + half] = orig[b + j + half] * c + orig[b + j] * sn
                }
            }
        }
        for c in 0..<dOut { out[t * dOut + c] = o[c] + (y0.map { Double($0[t * dOut + c]) } ?? 0) }
    }
    return out
}

final class PattentionKernelTests: XCTestCase {
    struct SiteData {
        var k: [Float]
        var v: [Float]
        var kp: AlignedBuffer
        var vp: AlignedBuffer
    }

    /// Runs `spec` for each T (threads 1 and 2) and compares every site with the reference.
    /// On every runnable target, with the schedules each one's cost model chooses (AVX2: `spec`
    /// as given); `vectors: [.avx2]` keeps `spec`'s own schedules.
    func check(_ spec: PattentionKernelSpec, rows: [Int], p0: Int = 0, zeroInput: Bool = false, tolerance: Double = 2e-5,
               vectors: [VectorTarget] = TestJIT.runnable, file: StaticString = #filePath, line: UInt = #line) {
        for vector in vectors {
            check(vector == .avx2 ? spec : spec.withChosenSchedules(for: vector), on: vector, rows: rows, p0: p0, zeroInput: zeroInput,
                  tolerance: tolerance, file: file, line: line)
        }
    }

    func check(_ spec: PattentionKernelSpec, on vector: VectorTarget, rows: [Int], p0: Int, zeroInput: Bool, tolerance: Double,
               file: StaticString, line: UInt) {
        let kernel = TestJIT.compile(for: vector) { [$0.addPattention(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: UInt64(spec.dIn * 7919 + spec.sites.count))
        let data: [SiteData] = spec.sites.enumerated().map { i, s in
            let k = rng.array(s.tokens * spec.dIn, scale: 0.5)
            let v = rng.array(s.tokens * s.dOut)
            return SiteData(k: k, v: v, kp: spec.keyLayout(i).packedTransposed(k), vp: spec.valueLayout(i).packed(v))
        }
        for T in rows {
            let x = zeroInput ? [Float](repeating: 0, count: T * spec.dIn) : rng.array(T * spec.dIn, scale: 1.5)
            let y0s = spec.sites.map { rng.array(T * $0.dOut) }
            var results: [[[Float]]] = []
            for threads in [1, 2] {
                let X = AlignedBuffer(x)
                let Ys = spec.sites.indices.map { AlignedBuffer(y0s[$0]) }
                var args: [UnsafeMutableRawPointer?] = [X.raw]
                for i in spec.sites.indices { args += [data[i].kp.raw, data[i].vp.raw, Ys[i].raw] }
                withThreads(threads) { kernel(args, rows: T, position: p0) }
                XCTAssertEqual(X.array, x, "X must not be modified", file: file, line: line)
                results.append(Ys.map(\.array))
                for (i, site) in spec.sites.enumerated() {
                    let ref = referencePattention(x: x, T: T, dIn: spec.dIn, eps: spec.layerNormEps, k: data[i].k, v: data[i].v, site: site,
                                                  y0: site.residual ? y0s[i] : nil, p0: p0)
                    let err = relativeError(Ys[i].array, ref)
                    XCTAssertLessThan(err, tolerance, "T=\(T) threads=\(threads) site \(i): \(site) on \(vector.name)", file: file, line: line)
                }
            }
            for i in spec.sites.indices {
                let diff = zip(results[0][i], results[1][i]).map { abs($0 - $1) }.max() ?? 0
                let mag = results[0][i].map { abs($0) }.max() ?? 0
                XCTAssertLessThanOrEqual(Double(diff), 1e-5 * max(1, Double(mag)), "threads 1 vs 2, T=\(T)", file: file, line: line)
            }
        }
    }

    let oddRows = [1, 2, 3, 33, 130]

    func testVariantsOddSizes() {
        for act in PattentionActivation.allCases {
            check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 37, dOut: 72, activation: act)), rows: oddRows)
            check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 101, dOut: 40, activation: act)), rows: [1, 7, 64])
        }
    }

    func testPinnedTauAndLayerNormPrologue() {
        check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 53, dOut: 72, tau: 5), layerNormEps: 1e-5), rows: oddRows)
    }

    func testResidualEpilogue() {
        check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 53, dOut: 72, residual: true), layerNormEps: 1e-5), rows: [1, 3, 33])
    }

    /// x += Pattention(LN(x)) with Y aliasing X (how the residual stream is updated).
    func testInPlaceResidualUpdate() {
        let spec = PattentionKernelSpec(dIn: 40, site: PattentionSite(tokens: 29, dOut: 40, residual: true), layerNormEps: 1e-5)
        let kernel = TestJIT.compile { [$0.addPattention(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: 9)
        let k = rng.array(29 * 40), v = rng.array(29 * 40)
        let kp = spec.keyLayout(0).packedTransposed(k), vp = spec.valueLayout(0).packed(v)
        for T in [1, 5, 70] {
            let x = rng.array(T * 40)
            for threads in [1, 2] {
                let X = AlignedBuffer(x)
                withThreads(threads) { kernel([X.raw, kp.raw, vp.raw, X.raw], rows: T) }
                let ref = referencePattention(x: x, T: T, dIn: 40, eps: 1e-5, k: k, v: v, site: spec.sites[0], y0: x, p0: 0)
                XCTAssertLessThan(relativeError(X.array, ref), 2e-5, "T=\(T) threads=\(threads)")
            }
        }
    }

    func testRotaryEpilogue() {
        let rot = RotaryEmbedding(heads: 3, headDim: 24, fraction: 0.5, base: 10000)
        check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 37, dOut: 72, rotary: rot)), rows: [1, 5, 70], p0: 0)
        check(PattentionKernelSpec(dIn: 72, site: PattentionSite(tokens: 37, dOut: 72, rotary: rot)), rows: [1, 40], p0: 1000)
    }

    func testHorizontalFusionQKV() {
        let rot = RotaryEmbedding(heads: 4, headDim: 16, fraction: 0.25, base: 10000)
        let sites = [PattentionSite(tokens: 37, dOut: 64, rotary: rot), PattentionSite(tokens: 53, dOut: 64, rotary: rot),
                     PattentionSite(tokens: 29, dOut: 40, activation: .softmax)]
        check(PattentionKernelSpec(dIn: 72, layerNormEps: 1e-5, sites: sites), rows: [1, 2, 17, 130], p0: 7)
    }

    /// Sites writing side by side into one `[T, Σ d_out]` buffer, reading X with a row stride.
    func testSideBySideOutputsAndStridedInput() {
        let rot = RotaryEmbedding(heads: 2, headDim: 16, fraction: 0.5)
        let total = 32 + 32 + 24, ldx = 50
        let sites = [PattentionSite(tokens: 30, dOut: 32, rotary: rot, ldy: total), PattentionSite(tokens: 30, dOut: 32, rotary: rot, ldy: total),
                     PattentionSite(tokens: 19, dOut: 24, ldy: total)]
        let spec = PattentionKernelSpec(dIn: 40, layerNormEps: 1e-5, sites: sites, ldx: ldx)
        let kernel = TestJIT.compile { [$0.addPattention(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: 21)
        let ks = sites.map { rng.array($0.tokens * 40) }, vs = sites.map { rng.array($0.tokens * $0.dOut) }
        let kps = sites.indices.map { spec.keyLayout($0).packedTransposed(ks[$0]) }, vps = sites.indices.map { spec.valueLayout($0).packed(vs[$0]) }
        for T in [1, 6, 45] {
            let xw = rng.array(T * ldx)
            let x = (0..<T).flatMap { Array(xw[$0 * ldx ..< $0 * ldx + 40]) }
            for threads in [1, 2] {
                let X = AlignedBuffer(xw), Y = AlignedBuffer(count: T * total)
                var args: [UnsafeMutableRawPointer?] = [X.raw]
                var offset = 0
                for i in sites.indices {
                    args += [kps[i].raw, vps[i].raw, Y.raw + offset * 4]
                    offset += sites[i].dOut
                }
                withThreads(threads) { kernel(args, rows: T, position: 4) }
                offset = 0
                for (i, site) in sites.enumerated() {
                    let ref = referencePattention(x: x, T: T, dIn: 40, eps: 1e-5, k: ks[i], v: vs[i], site: site, y0: nil, p0: 4)
                    let got = (0..<T).flatMap { t in (0..<site.dOut).map { Y[t * total + offset + $0] } }
                    XCTAssertLessThan(relativeError(got, ref), 2e-5, "site \(i) T=\(T) threads=\(threads)")
                    offset += site.dOut
                }
            }
        }
    }

    func testZeroRowsGiveZerosNotNaN() {
        for act in [PattentionActivation.l2NormGelu, .geluL2Norm] {
            check(PattentionKernelSpec(dIn: 24, site: PattentionSite(tokens: 19, dOut: 24, activation: act)), rows: [1, 9, 40], zeroInput: true)
            // LayerNorm of a zero row is zero too (variance 0, eps > 0).
            check(PattentionKernelSpec(dIn: 24, site: PattentionSite(tokens: 19, dOut: 24, activation: act), layerNormEps: 1e-5), rows: [3], zeroInput: true)
        }
    }

    func testScheduleOverrides() {
        let s = try! GemmSchedule(parsing: "mr=4 nr=24 kc=30 rowBlock=8 smallRows=4", for: .avx2)
        let v = try! GemmSchedule(parsing: "mr=8 nr=8 kc=16 loop=depthOuter", for: .avx2)
        check(PattentionKernelSpec(dIn: 72, layerNormEps: 1e-5, sites: [PattentionSite(tokens: 45, dOut: 33)], schedule: s, valueSchedule: v),
              rows: [1, 4, 5, 31], vectors: [.avx2])
        // Tiles narrower than the panels (a compiled program's AVX2 variant): keys and values.
        let narrow = try! GemmSchedule(parsing: "mr=6 nr=16 panel=32", for: .avx2)
        check(PattentionKernelSpec(dIn: 72, layerNormEps: 1e-5, sites: [PattentionSite(tokens: 53, dOut: 56, residual: true)],
                                   schedule: narrow, valueSchedule: narrow), rows: [1, 4, 5, 31, 100], vectors: [.avx2])
        if TestJIT.runnable.contains(.avx512) {
            let s = try! GemmSchedule(parsing: "mr=9 nr=48 kc=30 rowBlock=18 smallRows=4", for: .avx512)
            let v = try! GemmSchedule(parsing: "mr=14 nr=16 kc=16 loop=depthOuter", for: .avx512)
            check(PattentionKernelSpec(dIn: 72, layerNormEps: 1e-5, sites: [PattentionSite(tokens: 45, dOut: 33)], schedule: s, valueSchedule: v),
                  rows: [1, 4, 5, 31], vectors: [.avx512])
        }
    }
}
