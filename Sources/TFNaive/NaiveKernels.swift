import Foundation
import COpenBLAS
import TFIR

/// The naive backend's op implementations on raw float buffers: straightforward float32, OpenBLAS
/// `sgemm` for every matrix product, separate single-threaded passes for the rest, and double
/// accumulators where a sum of many terms feeds a normalisation. `NaiveExecutor` runs the IR with
/// these, and `tfc bench` times them as the naive side of each kernel.
public enum NaiveKernels {
    /// `out[rows, columns] = x[rows, inner] · w[columns, inner]ᵀ`.
    public static func sgemmTransposed(_ x: UnsafePointer<Float>, rows: Int, inner: Int, _ w: UnsafePointer<Float>, columns: Int,
                                into out: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(columns), Int32(inner),
                    1, x, Int32(inner), w, Int32(inner), 0, out, Int32(columns))
    }

    /// `out[rows, columns] = a[rows, inner] · w[inner, columns]`.
    public static func sgemm(_ a: UnsafePointer<Float>, rows: Int, inner: Int, _ w: UnsafePointer<Float>, columns: Int,
                      into out: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns), Int32(inner),
                    1, a, Int32(inner), w, Int32(columns), 0, out, Int32(columns))
    }

    /// Row-wise LayerNorm, biased variance, double accumulators.
    public static func layerNorm(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, width d: Int, eps: Double,
                          weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?) {
        for row in 0..<rows {
            let base = row * d
            var sum = 0.0
            for j in 0..<d { sum += Double(x[base + j]) }
            let mean = sum / Double(d)
            var squares = 0.0
            for j in 0..<d { let c = Double(x[base + j]) - mean; squares += c * c }
            let inverse = 1 / (squares / Double(d) + eps).squareRoot()
            for j in 0..<d {
                var y = Float((Double(x[base + j]) - mean) * inverse)
                if let weight, let bias { y = y * weight[j] + bias[j] }
                out[base + j] = y
            }
        }
    }

    /// `Θ(X·Kᵀ)·V`: sgemm, a pass of Θ over each score row, sgemm.
    public static func pattention(_ x: UnsafePointer<Float>, rows: Int, _ p: PattentionOp, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                           scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let n = p.tokens
        sgemmTransposed(x, rows: rows, inner: p.inFeatures, key, columns: n, into: scores)
        for row in 0..<rows { normalise(UnsafeMutableBufferPointer(start: scores + row * n, count: n), p.norm, tau: p.tau) }
        sgemm(scores, rows: rows, inner: n, value, columns: p.outFeatures, into: out)
    }

    /// Θ on one score row, in place. A zero row stays zero (the reference would divide 0 by 0);
    /// softmax multiplies by n, as the reference does (τ does not apply to it).
    public static func normalise(_ s: UnsafeMutableBufferPointer<Float>, _ norm: PattentionNorm, tau: Double) {
        func l2(_ v: UnsafeMutableBufferPointer<Float>) -> Double {
            var sum = 0.0
            for x in v { sum += Double(x) * Double(x) }
            return sum.squareRoot()
        }
        switch norm {
        case .l2NormGelu:
            let length = l2(s)
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
            let factor = Float(Double(s.count) / sum)
            for i in s.indices { s[i] *= factor }
        }
    }

    /// Exact-erf GELU.
    public static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    /// GPT-NeoX rotate-half rotary on each head's first `rotaryDims` dims, in place.
    public static func rotary(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, _ r: RotaryOp, firstPosition: Int) {
        let half = r.rotaryDims / 2
        for row in 0..<rows {
            let p = Double(firstPosition + row)
            for j in 0..<half {
                let inverseFrequency = 1 / Foundation.pow(r.base, Double(2 * j) / Double(r.rotaryDims))
                let angle = p * inverseFrequency
                let c = Float(Foundation.cos(angle)), s = Float(Foundation.sin(angle))
                for h in 0..<r.heads {
                    let base = row * width + h * r.headDim
                    let x1 = x[base + j], x2 = x[base + j + half]
                    x[base + j] = x1 * c - x2 * s
                    x[base + j + half] = x2 * c + x1 * s
                }
            }
        }
    }

    /// Attention over a KV cache: copy k, v into the caches at `position`, then per head an sgemm for the
    /// scores, a masked-softmax pass, and an sgemm with the values.
    public static func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                          keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                          rows t: Int, position p0: Int, width: Int, _ a: AttentionOp) {
        let length = p0 + t
        (keys + p0 * width).update(from: k, count: t * width)
        (values + p0 * width).update(from: v, count: t * width)
        let scale = Float(1 / Double(a.headDim).squareRoot())
        for h in 0..<a.heads {
            let offset = h * a.headDim
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(length), Int32(a.headDim),
                        scale, q + offset, Int32(width), keys + offset, Int32(width), 0, scores, Int32(length))
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
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(a.headDim), Int32(length),
                        1, scores, Int32(length), values + offset, Int32(width), 0, out + offset, Int32(width))
        }
    }
}
