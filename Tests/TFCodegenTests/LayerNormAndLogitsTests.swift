import XCTest
@testable import TFCodegen

final class LayerNormAndLogitsTests: XCTestCase {
    func testLayerNormKernel() {
        for (d, affine) in [(72, false), (13, true), (768, true)] {
            let spec = LayerNormKernelSpec(d: d, eps: 1e-5, affine: affine)
            let kernel = TestJIT.compile { [$0.addLayerNorm(spec)] }[spec.symbol]!
            var rng = TestRandom(seed: UInt64(d))
            let gamma = rng.array(d), beta = rng.array(d)
            for T in [1, 3, 50] {
                let x = rng.array(T * d, scale: 3).map { $0 + 0.5 }
                var ref: [Double] = []
                for t in 0..<T {
                    let n = layerNormRow(x[t * d ..< (t + 1) * d], eps: 1e-5)
                    ref += affine ? (0..<d).map { n[$0] * Double(gamma[$0]) + Double(beta[$0]) } : n
                }
                for threads in [1, 2] {
                    let X = AlignedBuffer(x), Y = AlignedBuffer(count: T * d), G = AlignedBuffer(gamma), B = AlignedBuffer(beta)
                    withThreads(threads) { kernel([X.raw, Y.raw, G.raw, B.raw], rows: T) }
                    XCTAssertLessThan(relativeError(Y.array, ref), 1e-5, "d=\(d) T=\(T)")
                    // In place.
                    withThreads(threads) { kernel([X.raw, X.raw, G.raw, B.raw], rows: T) }
                    XCTAssertLessThan(relativeError(X.array, ref), 1e-5, "in place d=\(d) T=\(T)")
                }
            }
        }
    }

    /// logits = LN_affine(x) · embedᵀ with the embedding as packed panels.
    func testLogitsWithAffineFinalNorm() {
        let d = 40, vocab = 203
        let spec = GemmKernelSpec(k: d, n: vocab, layerNormEps: 1e-5, affineNorm: true)
        let kernel = TestJIT.compile { [$0.addGemm(spec)] }[spec.symbol]!
        var rng = TestRandom(seed: 5)
        let embed = rng.array(vocab * d), gamma = rng.array(d), beta = rng.array(d)
        let packed = spec.weightLayout.packedTransposed(embed)
        for T in [1, 4, 37] {
            let x = rng.array(T * d, scale: 2)
            var ref = [Double](repeating: 0, count: T * vocab)
            for t in 0..<T {
                let n = layerNormRow(x[t * d ..< (t + 1) * d], eps: 1e-5)
                let h = (0..<d).map { n[$0] * Double(gamma[$0]) + Double(beta[$0]) }
                for v in 0..<vocab { ref[t * vocab + v] = (0..<d).reduce(0.0) { $0 + h[$1] * Double(embed[v * d + $1]) } }
            }
            for threads in [1, 2] {
                let X = AlignedBuffer(x), C = AlignedBuffer(count: T * vocab), G = AlignedBuffer(gamma), B = AlignedBuffer(beta)
                withThreads(threads) { kernel([X.raw, packed.raw, C.raw, G.raw, B.raw], rows: T) }
                XCTAssertLessThan(relativeError(C.array, ref), 1e-5, "T=\(T) threads=\(threads)")
            }
        }
    }

    func testPanelPackingLayouts() {
        let layout = PanelLayout(k: 5, n: 19, nr: 8)
        XCTAssertEqual(layout.panels, 3)
        XCTAssertEqual(layout.count, 3 * 8 * 5)
        let src = (0..<(19 * 5)).map(Float.init)        // [n=19, k=5]
        let t = layout.packedTransposed(src)
        let srcKN = (0..<(5 * 19)).map(Float.init)      // [k=5, n=19]
        let p = layout.packed(srcKN)
        for kk in 0..<5 {
            for j in 0..<24 {
                XCTAssertEqual(layout.element(t.pointer, kk, j), j < 19 ? src[j * 5 + kk] : 0)
                XCTAssertEqual(layout.element(p.pointer, kk, j), j < 19 ? srcKN[kk * 19 + j] : 0)
            }
        }
    }
}
