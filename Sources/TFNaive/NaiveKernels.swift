import Foundation
import COpenBLAS
import TFIR

/// The naive backend's op implementations: straightforward, float32, double accumulators where a
/// sum of many terms feeds a normalisation.
extension NaiveExecutor {
    /// `x · wᵀ` with `w` of shape `[rows, x.columns]` (sgemm with B transposed).
    func matmulTransposed(_ x: Matrix, _ w: UnsafeBufferPointer<Float>, rows n: Int) -> Matrix {
        var out = Matrix(rows: x.rows, columns: n)
        x.data.withUnsafeBufferPointer { xp in
            out.data.withUnsafeMutableBufferPointer { op in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(x.rows), Int32(n), Int32(x.columns),
                            1, xp.baseAddress, Int32(x.columns), w.baseAddress, Int32(x.columns), 0, op.baseAddress, Int32(n))
            }
        }
        return out
    }

    /// `a · w` with `w` of shape `[a.columns, columns]`.
    func matmul(_ a: Matrix, _ w: UnsafeBufferPointer<Float>, columns: Int) -> Matrix {
        var out = Matrix(rows: a.rows, columns: columns)
        a.data.withUnsafeBufferPointer { ap in
            out.data.withUnsafeMutableBufferPointer { op in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(a.rows), Int32(columns), Int32(a.columns),
                            1, ap.baseAddress, Int32(a.columns), w.baseAddress, Int32(columns), 0, op.baseAddress, Int32(columns))
            }
        }
        return out
    }

    func layerNorm(_ x: Matrix, _ ln: LayerNormOp) -> Matrix {
        var out = x
        let d = x.columns
        let weight = ln.affine.map { weights($0.weight) }
        let bias = ln.affine.map { weights($0.bias) }
        for row in 0..<x.rows {
            let base = row * d
            var sum = 0.0
            for j in 0..<d { sum += Double(x.data[base + j]) }
            let mean = sum / Double(d)
            var squares = 0.0
            for j in 0..<d { let c = Double(x.data[base + j]) - mean; squares += c * c }
            let inverse = 1 / (squares / Double(d) + ln.eps).squareRoot()
            for j in 0..<d {
                var y = Float((Double(x.data[base + j]) - mean) * inverse)
                if let weight, let bias { y = y * weight[j] + bias[j] }
                out.data[base + j] = y
            }
        }
        return out
    }

    /// `Θ(X·Kᵀ)·V`: two sgemm calls around a separate pass over the whole `[T, n]` score matrix.
    func pattention(_ x: Matrix, _ p: PattentionOp) -> Matrix {
        var scores = matmulTransposed(x, weights(p.keyName), rows: p.tokens)
        let n = p.tokens
        let tau = p.tau
        for row in 0..<x.rows {
            scores.data.withUnsafeMutableBufferPointer { s in
                normalise(UnsafeMutableBufferPointer(rebasing: s[(row * n)..<(row * n + n)]), p.norm, tau: tau)
            }
        }
        return matmul(scores, weights(p.valueName), columns: p.outFeatures)
    }

    /// Θ on one score row, in place.
    func normalise(_ s: UnsafeMutableBufferPointer<Float>, _ norm: PattentionNorm, tau: Double) {
        func l2(_ v: UnsafeMutableBufferPointer<Float>) -> Double {
            var sum = 0.0
            for x in v { sum += Double(x) * Double(x) }
            return sum.squareRoot()
        }
        switch norm {
        case .l2NormGelu:
            let length = l2(s)
            // A zero row stays zero (the reference would divide 0 by 0).
            let factor = length > 0 ? Float(tau / length) : 0
            for i in s.indices { s[i] = gelu(s[i] * factor) }
        case .geluL2Norm:
            for i in s.indices { s[i] = gelu(s[i]) }
            let length = l2(s)
            let factor = length > 0 ? Float(tau / length) : 0
            for i in s.indices { s[i] *= factor }
        case .softmax:
            let maximum = s.max() ?? 0
            var sum = 0.0
            for i in s.indices { let e = Foundation.exp(s[i] - maximum); s[i] = e; sum += Double(e) }
            // Θ = exp(s)/Σexp(s)·n (the reference's factor n; τ does not apply to this variant).
            let factor = Float(Double(s.count) / sum)
            for i in s.indices { s[i] *= factor }
        }
    }

    /// Exact-erf GELU.
    func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    /// GPT-NeoX rotate-half rotary on each head's first `rotaryDims` dims, rows at `firstPosition + row`.
    func rotary(_ x: Matrix, _ r: RotaryOp, firstPosition: Int) -> Matrix {
        var out = x
        let half = r.rotaryDims / 2
        for row in 0..<x.rows {
            let p = Double(firstPosition + row)
            for j in 0..<half {
                let inverseFrequency = 1 / Foundation.pow(r.base, Double(2 * j) / Double(r.rotaryDims))
                let angle = p * inverseFrequency
                let c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
                for h in 0..<r.heads {
                    let base = row * x.columns + h * r.headDim
                    let x1 = x.data[base + j], x2 = x.data[base + j + half]
                    out.data[base + j] = x1 * c - x2 * s
                    out.data[base + j + half] = x2 * c + x1 * s
                }
            }
        }
        return out
    }

    /// Appends k, v to the cache at the current position, then attends each new query to every
    /// cached key up to its own position (causal) or to all cached keys.
    func attention(q: Matrix, k: Matrix, v: Matrix, _ a: AttentionOp) -> Matrix {
        let width = a.heads * a.headDim, t = q.rows, p0 = position
        let length = p0 + t
        keyCache[a.cacheSlot].replaceSubrange((p0 * width)..<(length * width), with: k.data)
        valueCache[a.cacheSlot].replaceSubrange((p0 * width)..<(length * width), with: v.data)
        var out = Matrix(rows: t, columns: width)
        var scores = [Float](repeating: 0, count: t * length)
        let scale = Float(1 / Double(a.headDim).squareRoot())
        for h in 0..<a.heads {
            let offset = h * a.headDim
            q.data.withUnsafeBufferPointer { qp in
                keyCache[a.cacheSlot].withUnsafeBufferPointer { kp in
                    scores.withUnsafeMutableBufferPointer { sp in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(length), Int32(a.headDim),
                                    scale, qp.baseAddress! + offset, Int32(width), kp.baseAddress! + offset, Int32(width),
                                    0, sp.baseAddress, Int32(length))
                    }
                }
            }
            for row in 0..<t {
                let visible = a.causal ? p0 + row + 1 : length
                let base = row * length
                var maximum = -Float.infinity
                for j in 0..<visible { maximum = max(maximum, scores[base + j]) }
                var sum = 0.0
                for j in 0..<visible { let e = Foundation.exp(scores[base + j] - maximum); scores[base + j] = e; sum += Double(e) }
                let inverse = Float(1 / sum)
                for j in 0..<length { scores[base + j] = j < visible ? scores[base + j] * inverse : 0 }
            }
            scores.withUnsafeBufferPointer { sp in
                valueCache[a.cacheSlot].withUnsafeBufferPointer { vp in
                    out.data.withUnsafeMutableBufferPointer { op in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(a.headDim), Int32(length),
                                    1, sp.baseAddress, Int32(length), vp.baseAddress! + offset, Int32(width),
                                    0, op.baseAddress! + offset, Int32(width))
                    }
                }
            }
        }
        return out
    }
}
