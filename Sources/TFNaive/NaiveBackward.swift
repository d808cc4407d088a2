import Foundation
import COpenBLAS
import TFIR

/// The naive backend's backward kernels, one per backward rule in `BackwardRules`: plain float32
/// loops, OpenBLAS `sgemm` for every matrix product, double accumulators for row reductions. Each
/// recomputes the intermediates its rule says it recomputes (Pattention and attention scores,
/// LayerNorm statistics) from the saved op inputs. Matrices are row-major `[rows, columns]`.
public enum NaiveBackward {
    /// `c[m, n] = alpha · op(a)[m, k] · op(b)[k, n] + (accumulate ? c : 0)`, with leading dimensions
    /// and element offsets so a head's column slice can be used in place.
    static func gemm(_ a: UnsafePointer<Float>, transposeA: Bool, lda: Int, _ b: UnsafePointer<Float>, transposeB: Bool, ldb: Int,
                     m: Int, n: Int, k: Int, alpha: Float = 1, accumulate: Bool, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), accumulate ? 1 : 0, c, Int32(ldc))
    }

    /// Mean next-token cross-entropy of `logits` [T, vocab] against `tokens[1...]`, and its gradient
    /// (the last row predicts nothing: zero). Needs T ≥ 2.
    public static func crossEntropy(_ logits: Matrix, tokens: [Int32]) -> (loss: Double, gradient: Matrix) {
        let t = logits.rows, v = logits.columns, count = Double(t - 1)
        var gradient = Matrix(rows: t, columns: v)
        var total = 0.0
        for row in 0..<(t - 1) {
            let base = row * v, target = Int(tokens[row + 1])
            var maximum = -Float.infinity
            for j in 0..<v { maximum = max(maximum, logits.data[base + j]) }
            var sum = 0.0
            for j in 0..<v { sum += Foundation.exp(Double(logits.data[base + j] - maximum)) }
            total += Foundation.log(sum) + Double(maximum) - Double(logits.data[base + target])
            for j in 0..<v {
                let p = Foundation.exp(Double(logits.data[base + j] - maximum)) / sum
                gradient.data[base + j] = Float((p - (j == target ? 1 : 0)) / count)
            }
        }
        return (total / count, gradient)
    }

    /// `table[tokens]`: scatter-adds each row of `dy` into its token's row of `dTable`.
    public static func embedding(dy: Matrix, tokens: [Int32], dTable: inout [Float]) {
        let d = dy.columns
        for (row, token) in tokens.enumerated() {
            for j in 0..<d { dTable[Int(token) * d + j] += dy.data[row * d + j] }
        }
    }

    /// `x · tableᵀ`: `dx = dy · table`, `dTable += dyᵀ · x`.
    public static func logits(x: Matrix, table: UnsafePointer<Float>, dy: Matrix, dTable: inout [Float]) -> Matrix {
        let t = x.rows, d = x.columns, v = dy.columns
        var dx = Matrix(rows: t, columns: d)
        dy.data.withUnsafeBufferPointer { g in
            dx.data.withUnsafeMutableBufferPointer { out in
                gemm(g.baseAddress!, transposeA: false, lda: v, table, transposeB: false, ldb: d, m: t, n: d, k: v, accumulate: false, into: out.baseAddress!, ldc: d)
            }
            x.data.withUnsafeBufferPointer { xp in
                dTable.withUnsafeMutableBufferPointer { out in
                    gemm(g.baseAddress!, transposeA: true, lda: v, xp.baseAddress!, transposeB: false, ldb: d, m: v, n: d, k: t, accumulate: true, into: out.baseAddress!, ldc: d)
                }
            }
        }
        return dx
    }

    /// Row-wise LayerNorm (biased variance), optionally affine: recomputes mean, 1/σ and x̂.
    /// `dx = (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)) / σ` with `dx̂ = dy · w`; `dw += Σ dy · x̂`, `db += Σ dy`.
    public static func layerNorm(x: Matrix, dy: Matrix, eps: Double, weight: UnsafePointer<Float>?,
                                 dWeight: inout [Float], dBias: inout [Float]) -> Matrix {
        let d = x.columns
        var dx = Matrix(rows: x.rows, columns: d)
        var xhat = [Double](repeating: 0, count: d), dxhat = [Double](repeating: 0, count: d)
        for row in 0..<x.rows {
            let base = row * d
            var sum = 0.0
            for j in 0..<d { sum += Double(x.data[base + j]) }
            let mean = sum / Double(d)
            var squares = 0.0
            for j in 0..<d { let c = Double(x.data[base + j]) - mean; squares += c * c }
            let inverse = 1 / (squares / Double(d) + eps).squareRoot()
            var meanG = 0.0, meanGX = 0.0
            for j in 0..<d {
                xhat[j] = (Double(x.data[base + j]) - mean) * inverse
                let g = Double(dy.data[base + j])
                if let weight {
                    dxhat[j] = g * Double(weight[j])
                    dWeight[j] += Float(g * xhat[j])
                    dBias[j] += Float(g)
                } else {
                    dxhat[j] = g
                }
                meanG += dxhat[j]; meanGX += dxhat[j] * xhat[j]
            }
            meanG /= Double(d); meanGX /= Double(d)
            for j in 0..<d { dx.data[base + j] = Float(inverse * (dxhat[j] - meanG - xhat[j] * meanGX)) }
        }
        return dx
    }

    /// d gelu(u) / du for the exact-erf GELU: Φ(u) + u·φ(u).
    static func geluDerivative(_ u: Double) -> Double {
        0.5 * (1 + erf(u / 2.0.squareRoot())) + u * Foundation.exp(-0.5 * u * u) / (2 * Double.pi).squareRoot()
    }

    /// Backward of Θ on one score row: given the scores `s` and `da = dL/dΘ(s)`, writes `dL/ds`
    /// into `da`. A row whose norm is zero has a constant (zero) output, so its gradient is zero.
    public static func normalise(scores s: UnsafeBufferPointer<Float>, gradient da: UnsafeMutableBufferPointer<Float>,
                                 _ norm: PattentionNorm, tau: Double) {
        let n = s.count
        switch norm {
        case .l2NormGelu:
            var r = 0.0
            for x in s { r += Double(x) * Double(x) }
            r = r.squareRoot()
            guard r > 0 else { for i in 0..<n { da[i] = 0 }; return }
            var dot = 0.0
            var du = [Double](repeating: 0, count: n)
            for i in 0..<n {
                du[i] = Double(da[i]) * geluDerivative(Double(s[i]) * tau / r)
                dot += Double(s[i]) / r * du[i]
            }
            for i in 0..<n { da[i] = Float(tau / r * (du[i] - Double(s[i]) / r * dot)) }
        case .geluL2Norm:
            var g = [Double](repeating: 0, count: n)
            var r = 0.0
            for i in 0..<n { let x = Double(s[i]); g[i] = 0.5 * x * (1 + erf(x / 2.0.squareRoot())); r += g[i] * g[i] }
            r = r.squareRoot()
            guard r > 0 else { for i in 0..<n { da[i] = 0 }; return }
            var dot = 0.0
            for i in 0..<n { dot += g[i] / r * Double(da[i]) }
            for i in 0..<n { da[i] = Float(tau / r * (Double(da[i]) - g[i] / r * dot) * geluDerivative(Double(s[i]))) }
        case .softmax:
            let maximum = s.max() ?? 0
            var p = [Double](repeating: 0, count: n)
            var sum = 0.0
            for i in 0..<n { p[i] = Foundation.exp(Double(s[i] - maximum)); sum += p[i] }
            var dot = 0.0
            for i in 0..<n { p[i] /= sum; dot += p[i] * Double(da[i]) }
            for i in 0..<n { da[i] = Float(Double(n) * p[i] * (Double(da[i]) - dot)) }
        }
    }

    /// `Θ(X·Kᵀ)·V`: recomputes `S` and `A = Θ(S)`, then `dV += Aᵀ·dy`, `dS = Θ'(dy·Vᵀ)`,
    /// `dK += dSᵀ·X`, `dX = dS·K`.
    public static func pattention(x: Matrix, _ p: PattentionOp, key: UnsafePointer<Float>, value: UnsafePointer<Float>, dy: Matrix,
                                  dKey: inout [Float], dValue: inout [Float]) -> Matrix {
        let t = x.rows, n = p.tokens, din = p.inFeatures, dout = p.outFeatures
        var scores = [Float](repeating: 0, count: t * n)
        var activated = scores, dScores = scores
        var dx = Matrix(rows: t, columns: din)
        x.data.withUnsafeBufferPointer { xp in dy.data.withUnsafeBufferPointer { g in
            scores.withUnsafeMutableBufferPointer { sp in activated.withUnsafeMutableBufferPointer { ap in dScores.withUnsafeMutableBufferPointer { dsp in
                NaiveKernels.sgemmTransposed(xp.baseAddress!, rows: t, inner: din, key, columns: n, into: sp.baseAddress!)
                ap.baseAddress!.update(from: sp.baseAddress!, count: t * n)
                for row in 0..<t { NaiveKernels.normalise(UnsafeMutableBufferPointer(rebasing: ap[(row * n)..<((row + 1) * n)]), p.norm, tau: p.tau) }
                dValue.withUnsafeMutableBufferPointer { dv in
                    gemm(ap.baseAddress!, transposeA: true, lda: n, g.baseAddress!, transposeB: false, ldb: dout, m: n, n: dout, k: t, accumulate: true, into: dv.baseAddress!, ldc: dout)
                }
                gemm(g.baseAddress!, transposeA: false, lda: dout, value, transposeB: true, ldb: dout, m: t, n: n, k: dout, accumulate: false, into: dsp.baseAddress!, ldc: n)
                for row in 0..<t {
                    normalise(scores: UnsafeBufferPointer(rebasing: sp[(row * n)..<((row + 1) * n)]),
                              gradient: UnsafeMutableBufferPointer(rebasing: dsp[(row * n)..<((row + 1) * n)]), p.norm, tau: p.tau)
                }
                dKey.withUnsafeMutableBufferPointer { dk in
                    gemm(dsp.baseAddress!, transposeA: true, lda: n, xp.baseAddress!, transposeB: false, ldb: din, m: n, n: din, k: t, accumulate: true, into: dk.baseAddress!, ldc: din)
                }
                dx.data.withUnsafeMutableBufferPointer { out in
                    gemm(dsp.baseAddress!, transposeA: false, lda: n, key, transposeB: false, ldb: din, m: t, n: din, k: n, accumulate: false, into: out.baseAddress!, ldc: din)
                }
            } } }
        } }
        return dx
    }

    /// Rotary at positions `0 ..< T`: the Jacobian is a rotation per pair (j, j + rd/2), so the
    /// backward is the rotation by -θ.
    public static func rotary(dy: Matrix, _ r: RotaryOp) -> Matrix {
        var dx = dy
        let half = r.rotaryDims / 2, width = dy.columns
        for row in 0..<dy.rows {
            for j in 0..<half {
                let angle = Double(row) / Foundation.pow(r.base, Double(2 * j) / Double(r.rotaryDims))
                let c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
                for h in 0..<r.heads {
                    let base = row * width + h * r.headDim
                    let g1 = dy.data[base + j], g2 = dy.data[base + j + half]
                    dx.data[base + j] = g1 * c + g2 * s
                    dx.data[base + j + half] = g2 * c - g1 * s
                }
            }
        }
        return dx
    }

    /// Multi-head attention over positions `0 ..< T` (causal or not): per head recomputes
    /// `P = softmax(q·kᵀ/√d)`, then `dv = Pᵀ·dy`, `dS = P⊙(dy·vᵀ - rowsum)`, `dq = dS·k/√d`, `dk = dSᵀ·q/√d`.
    public static func attention(q: Matrix, k: Matrix, v: Matrix, dy: Matrix, _ a: AttentionOp) -> (dq: Matrix, dk: Matrix, dv: Matrix) {
        let t = q.rows, width = q.columns, hd = a.headDim
        var dq = Matrix(rows: t, columns: width), dk = dq, dv = dq
        var probabilities = [Float](repeating: 0, count: t * t), dP = probabilities
        let scale = Float(1 / Double(hd).squareRoot())
        q.data.withUnsafeBufferPointer { qp in k.data.withUnsafeBufferPointer { kp in v.data.withUnsafeBufferPointer { vp in dy.data.withUnsafeBufferPointer { g in
        dq.data.withUnsafeMutableBufferPointer { dqp in dk.data.withUnsafeMutableBufferPointer { dkp in dv.data.withUnsafeMutableBufferPointer { dvp in
        probabilities.withUnsafeMutableBufferPointer { pp in dP.withUnsafeMutableBufferPointer { dpp in
            let P = pp.baseAddress!, D = dpp.baseAddress!
            for h in 0..<a.heads {
                let o = h * hd
                gemm(qp.baseAddress! + o, transposeA: false, lda: width, kp.baseAddress! + o, transposeB: true, ldb: width,
                     m: t, n: t, k: hd, alpha: scale, accumulate: false, into: P, ldc: t)
                for row in 0..<t {
                    let visible = a.causal ? row + 1 : t, base = row * t
                    var maximum = -Float.infinity
                    for j in 0..<visible { maximum = max(maximum, P[base + j]) }
                    var sum = 0.0
                    for j in 0..<visible { let e = Foundation.exp(Double(P[base + j] - maximum)); P[base + j] = Float(e); sum += e }
                    for j in 0..<t { P[base + j] = j < visible ? Float(Double(P[base + j]) / sum) : 0 }
                }
                gemm(P, transposeA: true, lda: t, g.baseAddress! + o, transposeB: false, ldb: width, m: t, n: hd, k: t, accumulate: false, into: dvp.baseAddress! + o, ldc: width)
                gemm(g.baseAddress! + o, transposeA: false, lda: width, vp.baseAddress! + o, transposeB: true, ldb: width, m: t, n: t, k: hd, accumulate: false, into: D, ldc: t)
                for row in 0..<t {
                    let base = row * t
                    var dot = 0.0
                    for j in 0..<t { dot += Double(P[base + j]) * Double(D[base + j]) }
                    for j in 0..<t { D[base + j] = Float(Double(P[base + j]) * (Double(D[base + j]) - dot)) }
                }
                gemm(D, transposeA: false, lda: t, kp.baseAddress! + o, transposeB: false, ldb: width, m: t, n: hd, k: t, alpha: scale, accumulate: false, into: dqp.baseAddress! + o, ldc: width)
                gemm(D, transposeA: true, lda: t, qp.baseAddress! + o, transposeB: false, ldb: width, m: t, n: hd, k: t, alpha: scale, accumulate: false, into: dkp.baseAddress! + o, ldc: width)
            }
        } }
        } } }
        } } } }
        return (dq, dk, dv)
    }
}
