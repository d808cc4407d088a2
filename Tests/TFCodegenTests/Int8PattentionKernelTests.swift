import XCTest
@testable import TFCodegen

/// The int8 Pattention, logits and embedding kernels, on every (target, int8 kernel) this CPU
/// runs, against (1) a Swift emulation of the same quantised arithmetic (`Int8Quantization`,
/// float64 sums: only fp32 rounding and rare one-code quantisation flips differ) and (2) the
/// float64 reference without quantisation, within the int8 error budget.
final class Int8PattentionKernelTests: XCTestCase {
    static var cases: [(VectorTarget, vnni: Bool)] {
        TestJIT.runnable.flatMap { v -> [(VectorTarget, vnni: Bool)] in
            v.isa == .avx512 && TargetHost.host.has("avx512vnni") ? [(v, false), (v, true)] : [(v, false)]
        }
    }

    func stored(_ layout: PanelLayout, _ src: [Float], transposed: Bool) -> AlignedBuffer {
        let b = AlignedBuffer(count: layout.storedBytes / 4)
        src.withUnsafeBufferPointer { layout.packStored($0.baseAddress!, transposed: transposed, into: b.raw) }
        return b
    }

    /// The kernel's arithmetic in Swift: X, K, Θ(S) and V quantised in groups of 32 along each
    /// product's depth (K per parameter token over d_in, V per output feature over the tokens;
    /// their scales the stored bf16 ones), int sums per group scaled by both groups' scales. No rotary.
    func emulated(x: [Float], T: Int, dIn: Int, eps: Float?, k: [Float], v: [Float], site: PattentionSite, y0: [Float]?) -> [Double] {
        let n = site.tokens, dOut = site.dOut, gd = Int8Quantization.groupDepth
        let gIn = Int8Quantization.groups(dIn), gN = Int8Quantization.groups(n)
        let (qk, sk) = Int8Quantization.quantizeWeightRows(k, rows: n, cols: dIn)
        let vT = (0..<dOut * n).map { v[($0 % n) * dOut + $0 / n] }          // vT[c, j] = V[j, c]
        let (qv, sv) = Int8Quantization.quantizeWeightRows(vT, rows: dOut, cols: n)
        /// Σ over groups of (Σ a·b within the group) · aScale · bScale.
        func dot(_ qa: ArraySlice<Int8>, _ sa: ArraySlice<Float>, _ qb: ArraySlice<Int8>, _ sb: ArraySlice<Float>, groups: Int) -> Double {
            var total = 0.0
            let a0 = qa.startIndex, b0 = qb.startIndex
            for g in 0..<groups {
                var acc = 0
                for c in g * gd ..< min(qa.count, (g + 1) * gd) { acc += Int(qa[a0 + c]) * Int(qb[b0 + c]) }
                total += Double(acc) * Double(sa[sa.startIndex + g]) * Double(sb[sb.startIndex + g])
            }
            return total
        }
        var out = [Double](repeating: 0, count: T * dOut)
        for t in 0..<T {
            let row: [Float] = eps.map { layerNormRow(x[t * dIn ..< (t + 1) * dIn], eps: Double($0)).map { Float($0) } } ?? Array(x[t * dIn ..< (t + 1) * dIn])
            let (qx, sx) = Int8Quantization.quantizeRows(row, rows: 1, cols: dIn)
            let s: [Double] = (0..<n).map { j in
                dot(qx[...], sx[...], qk[j * dIn ..< (j + 1) * dIn], sk[j * gIn ..< (j + 1) * gIn], groups: gIn)
            }
            let a = activation(s, site)
            let (qa, sa) = Int8Quantization.quantizeRows(a.map { Float($0) }, rows: 1, cols: n)
            for c in 0..<dOut {
                out[t * dOut + c] = dot(qa[...], sa[...], qv[c * n ..< (c + 1) * n], sv[c * gN ..< (c + 1) * gN], groups: gN)
                    + (y0.map { Double($0[t * dOut + c]) } ?? 0)
            }
        }
        return out
    }

    func activation(_ s: [Double], _ site: PattentionSite) -> [Double] {
        func gelu(_ z: Double) -> Double { 0.5 * z * (1 + erf(z / 2.0.squareRoot())) }
        let tau = Double(site.tau)
        switch site.activation {
        case .l2NormGelu:
            let norm = s.map { $0 * $0 }.reduce(0, +).squareRoot()
            return s.map { gelu(norm > 0 ? $0 / norm * tau : 0) }
        case .geluL2Norm:
            let g = s.map(gelu)
            let norm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
            return g.map { norm > 0 ? $0 / norm * tau : 0 }
        case .softmax:
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            return e.map { $0 / sum * Double(s.count) }
        }
    }

    /// Largest relative RMS error against the unquantised reference seen so far (printed).
    var worstAgainstFloat = 0.0

    func check(dIn: Int, sites: [PattentionSite], eps: Float?, rows: [Int], file: StaticString = #filePath, line: UInt = #line) {
        for (vector, vnni) in Self.cases {
            let spec = Int8PattentionKernelSpec(dIn: dIn, layerNormEps: eps, sites: sites, vnni: vnni, for: vector)
            let kernel = TestJIT.compile(for: vector) { [$0.addInt8Pattention(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(dIn * 17 + sites.count))
            let ks = sites.map { rng.array($0.tokens * dIn, scale: 0.5) }
            let vs = sites.map { rng.array($0.tokens * $0.dOut) }
            let kp = sites.indices.map { stored(spec.keyLayout($0), ks[$0], transposed: true) }
            let vp = sites.indices.map { stored(spec.valueLayout($0), vs[$0], transposed: false) }
            for T in rows {
                let x = rng.array(T * dIn, scale: 1.5)
                let y0 = sites.map { rng.array(T * $0.dOut) }
                var byThreads: [[[Float]]] = []
                for threads in [1, 2] {
                    let X = AlignedBuffer(x)
                    let Ys = sites.indices.map { AlignedBuffer(y0[$0]) }
                    var args: [UnsafeMutableRawPointer?] = [X.raw]
                    for i in sites.indices { args += [kp[i].raw, vp[i].raw, Ys[i].raw] }
                    withThreads(threads) { kernel(args, rows: T, position: 2) }
                    byThreads.append(Ys.map(\.array))
                    for (i, site) in sites.enumerated() {
                        let what = "T=\(T) threads=\(threads) site \(i) \(site) vnni=\(vnni) on \(vector.name)"
                        if site.rotary == nil {
                            let emu = emulated(x: x, T: T, dIn: dIn, eps: eps, k: ks[i], v: vs[i], site: site, y0: site.residual ? y0[i] : nil)
                            XCTAssertLessThan(relativeError(Ys[i].array, emu), 2e-3, "emulated int8: " + what, file: file, line: line)
                        }
                        // The unquantised reference, without the residual (it would hide the error).
                        let ref = referencePattention(x: x, T: T, dIn: dIn, eps: eps, k: ks[i], v: vs[i], site: site, y0: nil, p0: 2)
                        let got = site.residual ? zip(Ys[i].array, y0[i]).map { $0 - $1 } : Ys[i].array
                        let err = relativeError(got, ref)
                        worstAgainstFloat = max(worstAgainstFloat, err)
                        XCTAssertLessThan(err, 0.03, "int8 vs float64: " + what, file: file, line: line)
                    }
                }
                XCTAssertEqual(byThreads[0], byThreads[1], "threads split panels only: identical results", file: file, line: line)
            }
        }
    }

    func testSitesAgainstEmulationAndFloat() {
        check(dIn: 72, sites: [PattentionSite(tokens: 53, dOut: 72, residual: true)], eps: 1e-5, rows: [1, 2, 33])
        check(dIn: 37, sites: [PattentionSite(tokens: 64, dOut: 40, activation: .softmax)], eps: nil, rows: [1, 7, 40])
        check(dIn: 64, sites: [PattentionSite(tokens: 41, dOut: 64, rotary: RotaryEmbedding(heads: 4, headDim: 16)),
                               PattentionSite(tokens: 41, dOut: 64), PattentionSite(tokens: 30, dOut: 32, activation: .geluL2Norm)],
              eps: 1e-5, rows: [1, 5, 37])
        print("int8 Pattention vs float64, worst relative RMS: \(worstAgainstFloat)")
    }

    func testLogitsAndEmbeddingFromOneTable() {
        let d = 45, vocab = 130
        var rng = TestRandom(seed: 5)
        let table = rng.array(vocab * d)
        for (vector, vnni) in Self.cases {
            let spec = Int8LogitsKernelSpec(k: d, n: vocab, vnni: vnni, for: vector)
            // The embedding kernel has no VNNI variant: built with the pairs case only.
            let kernels = TestJIT.compile(for: vector) { vnni ? [$0.addInt8Logits(spec)] : [$0.addInt8Logits(spec), $0.addInt8Embedding(table: spec.tableLayout, ldy: d + 3)] }
            let packedTable = stored(spec.tableLayout, table, transposed: true)
            // Embedding: each row is the token's codes times their group scales.
            if !vnni {
                let ids: [Int32] = [0, 129, 64, 7, 64]
                let (q, s) = Int8Quantization.quantizeWeightRows(table, rows: vocab, cols: d)
                let tokens = UnsafeMutablePointer<Int32>.allocate(capacity: ids.count)
                defer { tokens.deallocate() }
                tokens.initialize(from: ids, count: ids.count)
                let Y = AlignedBuffer(count: ids.count * (d + 3))
                kernels["tfc_embedding_i8_k\(d)_n\(vocab)_r\(spec.tableLayout.nr)_y\(d + 3)"]!([UnsafeMutableRawPointer(tokens), packedTable.raw, Y.raw], rows: ids.count)
                for (t, id) in ids.enumerated() {
                    for c in 0..<d {
                        let scale = s[Int(id) * Int8Quantization.groups(d) + c / Int8Quantization.groupDepth]
                        XCTAssertEqual(Y[t * (d + 3) + c], Float(q[Int(id) * d + c]) * scale, "embedding row \(t) col \(c) on \(vector.name)")
                    }
                }
            }
            // Logits against float64 X·Eᵀ.
            for T in [1, 6] {
                let x = rng.array(T * d, scale: 2)
                var ref = [Double](repeating: 0, count: T * vocab)
                for t in 0..<T { for j in 0..<vocab { for c in 0..<d { ref[t * vocab + j] += Double(x[t * d + c]) * Double(table[j * d + c]) } } }
                let X = AlignedBuffer(x), C = AlignedBuffer(count: T * vocab)
                withThreads(2) { kernels[spec.symbol]!([X.raw, packedTable.raw, C.raw], rows: T) }
                XCTAssertLessThan(relativeError(C.array, ref), 0.02, "int8 logits T=\(T) vnni=\(vnni) on \(vector.name)")
            }
        }
    }
}
