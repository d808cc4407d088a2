import XCTest
import TFIR
@testable import TFNaive

/// Each backward rule of the naive backend alone, against finite differences of its forward kernel.
final class BackwardRuleTests: XCTestCase {
    var random = TestRandom(state: 11)

    func matrix(_ rows: Int, _ columns: Int, _ data: [Float]) -> Matrix { Matrix(rows: rows, columns: columns, data: data) }

    func testCrossEntropy() {
        let t = 5, v = 7
        let tokens: [Int32] = [1, 6, 0, 3, 3]
        checkRule("cross_entropy", inputs: [random.array(t * v, scale: 2)], outputCount: 1,
                  forward: { [Float(NaiveBackward.crossEntropy(self.matrix(t, v, $0[0]), tokens: tokens).loss)] },
                  backward: { x, dy in [NaiveBackward.crossEntropy(self.matrix(t, v, x[0]), tokens: tokens).gradient.data.map { $0 * dy[0] }] },
                  h: 1e-2, tolerance: 1e-3)
    }

    func testEmbedding() {
        let vocab = 6, d = 4
        let tokens: [Int32] = [2, 5, 2, 0]
        checkRule("embedding", inputs: [random.array(vocab * d)], outputCount: tokens.count * d,
                  forward: { x in tokens.flatMap { Array(x[0][(Int($0) * d)..<(Int($0) * d + d)]) } },
                  backward: { _, dy in
                      var dt = [Float](repeating: 0, count: vocab * d)
                      NaiveBackward.embedding(dy: self.matrix(tokens.count, d, dy), tokens: tokens, dTable: &dt)
                      return [dt]
                  })
    }

    func testLogits() {
        let t = 3, d = 5, vocab = 4
        checkRule("logits", inputs: [random.array(t * d), random.array(vocab * d)], outputCount: t * vocab,
                  forward: { x in
                      var out = [Float](repeating: 0, count: t * vocab)
                      NaiveKernels.sgemmTransposed(x[0], rows: t, inner: d, x[1], columns: vocab, into: &out)
                      return out
                  },
                  backward: { x, dy in
                      var dt = [Float](repeating: 0, count: vocab * d)
                      let dx = NaiveBackward.logits(x: self.matrix(t, d, x[0]), table: x[1], dy: self.matrix(t, vocab, dy), dTable: &dt)
                      return [dx.data, dt]
                  })
    }

    func layerNormForward(_ x: [Float], rows: Int, d: Int, weight: [Float]?, bias: [Float]?) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        NaiveKernels.layerNorm(x, into: &out, rows: rows, width: d, eps: 1e-5, weight: weight, bias: bias)
        return out
    }

    func testLayerNormNonParametric() {
        let rows = 3, d = 6
        checkRule("layernorm", inputs: [random.array(rows * d)], outputCount: rows * d,
                  forward: { self.layerNormForward($0[0], rows: rows, d: d, weight: nil, bias: nil) },
                  backward: { x, dy in
                      var dw: [Float] = [], db: [Float] = []
                      return [NaiveBackward.layerNorm(x: self.matrix(rows, d, x[0]), dy: self.matrix(rows, d, dy), eps: 1e-5, weight: nil,
                                                      dWeight: &dw, dBias: &db).data]
                  }, h: 1e-3)
    }

    func testLayerNormAffine() {
        let rows = 3, d = 6
        checkRule("layernorm affine", inputs: [random.array(rows * d), random.array(d), random.array(d)], outputCount: rows * d,
                  forward: { self.layerNormForward($0[0], rows: rows, d: d, weight: $0[1], bias: $0[2]) },
                  backward: { x, dy in
                      var dw = [Float](repeating: 0, count: d), db = dw
                      let dx = NaiveBackward.layerNorm(x: self.matrix(rows, d, x[0]), dy: self.matrix(rows, d, dy), eps: 1e-5, weight: x[1],
                                                       dWeight: &dw, dBias: &db)
                      return [dx.data, dw, db]
                  }, h: 1e-3)
    }

    func pattentionRule(_ norm: PattentionNorm, scale: Double?) {
        let t = 3, n = 5, din = 4, dout = 3
        let p = PattentionOp(site: "mlp", layer: 0, tokens: n, inFeatures: din, outFeatures: dout, norm: norm, scale: scale)
        checkRule("pattention \(norm.rawValue) τ=\(scale.map { "\($0)" } ?? "√n")",
                  inputs: [random.array(t * din), random.array(n * din), random.array(n * dout)], outputCount: t * dout,
                  forward: { x in
                      var scores = [Float](repeating: 0, count: t * n), out = [Float](repeating: 0, count: t * dout)
                      NaiveKernels.pattention(x[0], rows: t, p, key: x[1], value: x[2], scores: &scores, into: &out)
                      return out
                  },
                  backward: { x, dy in
                      var dk = [Float](repeating: 0, count: n * din), dv = [Float](repeating: 0, count: n * dout)
                      let dx = NaiveBackward.pattention(x: self.matrix(t, din, x[0]), p, key: x[1], value: x[2], dy: self.matrix(t, dout, dy),
                                                        dKey: &dk, dValue: &dv)
                      return [dx.data, dk, dv]
                  }, h: 1e-3, tolerance: 3e-3)
    }

    func testPattentionEveryVariantAndScale() {
        for norm in PattentionNorm.allCases {
            pattentionRule(norm, scale: nil)
            if norm != .softmax { pattentionRule(norm, scale: 1.7) }
        }
    }

    /// A zero input row has all-zero scores; the forward treats s/‖s‖ as 0 there (a constant
    /// output), so the rule gives that row zero gradient instead of 0/0.
    func testZeroNormRowGivesZeroGradient() {
        let t = 3, n = 4, d = 4
        for norm in [PattentionNorm.l2NormGelu, .geluL2Norm] {
            let p = PattentionOp(site: "mlp", layer: 0, tokens: n, inFeatures: d, outFeatures: d, norm: norm, scale: nil)
            var x = random.array(t * d)
            for j in 0..<d { x[d + j] = 0 }
            let key = random.array(n * d), value = random.array(n * d)
            var dk = [Float](repeating: 0, count: n * d), dv = dk
            let dx = NaiveBackward.pattention(x: matrix(t, d, x), p, key: key, value: value, dy: matrix(t, d, random.array(t * d)),
                                              dKey: &dk, dValue: &dv)
            XCTAssertEqual(Array(dx.data[d..<(2 * d)]), [Float](repeating: 0, count: d), norm.rawValue)
            XCTAssertFalse(dx.data.contains { !$0.isFinite } || dk.contains { !$0.isFinite } || dv.contains { !$0.isFinite }, norm.rawValue)
            XCTAssertGreaterThan(dx.data[0..<d].map(abs).max()!, 0, "other rows still get gradient")
        }
    }

    func testRotary() {
        let t = 4, heads = 2, headDim = 8
        let r = RotaryOp(heads: heads, headDim: headDim, rotaryDims: 4, base: 10000)
        checkRule("rotary", inputs: [random.array(t * heads * headDim)], outputCount: t * heads * headDim,
                  forward: { x in
                      var out = x[0]
                      NaiveKernels.rotary(&out, rows: t, width: heads * headDim, r, firstPosition: 0)
                      return out
                  },
                  backward: { _, dy in [NaiveBackward.rotary(dy: self.matrix(t, heads * headDim, dy), r).data] })
    }

    func attentionRule(causal: Bool) {
        let t = 4, heads = 2, hd = 3, w = heads * hd
        let a = AttentionOp(heads: heads, headDim: hd, causal: causal, cacheSlot: 0)
        checkRule("attention causal=\(causal)", inputs: [random.array(t * w), random.array(t * w), random.array(t * w)], outputCount: t * w,
                  forward: { x in
                      var out = [Float](repeating: 0, count: t * w), keys = out, values = out, scores = [Float](repeating: 0, count: t * t)
                      NaiveKernels.attention(q: x[0], k: x[1], v: x[2], out: &out, keys: &keys, values: &values, scores: &scores,
                                             rows: t, position: 0, width: w, a)
                      return out
                  },
                  backward: { x, dy in
                      let g = NaiveBackward.attention(q: self.matrix(t, w, x[0]), k: self.matrix(t, w, x[1]), v: self.matrix(t, w, x[2]),
                                                      dy: self.matrix(t, w, dy), a)
                      return [g.dq.data, g.dk.data, g.dv.data]
                  }, h: 1e-3)
    }

    func testAttentionCausalAndNot() {
        attentionRule(causal: true)
        attentionRule(causal: false)
    }
}
