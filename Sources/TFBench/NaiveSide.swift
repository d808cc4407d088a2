import Foundation
import COpenBLAS
import TFIR

/// The naive side of each kernel case: what the naive backend (TFNaive) does for that op, on the
/// workload's buffers — OpenBLAS `sgemm` for every matrix product and a separate single-threaded
/// pass for everything else (norms, Θ, rotary, softmax, copies), with double accumulators where
/// TFNaive has them. Scratch buffers are allocated once in `prepare`, outside the timed region.
/// Keep this in step with Sources/TFNaive/NaiveKernels.swift.
public enum NaiveSide {
    /// A closure that runs `workload.kernel` once the naive way.
    public static func prepare(_ workload: KernelWorkload) -> () -> Void {
        let k = workload.kernel
        switch k.op {
        case .fusedPattention(let f):
            return fusedPattention(f, workload)
        case .attention(let a):
            let width = a.width, rows = k.rows, length = k.position + rows
            let scores = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * length)
            scores.initialize(repeating: 0)
            let keep = Scratch([scores])
            return {
                _ = keep
                attention(q: workload.inputs[0].baseAddress!, k: workload.inputs[1].baseAddress!, v: workload.inputs[2].baseAddress!,
                          out: workload.output.baseAddress!, keys: workload.keyCache!.baseAddress!, values: workload.valueCache!.baseAddress!,
                          scores: scores.baseAddress!, rows: rows, position: k.position, width: width, a)
            }
        case .layerNorm(let ln):
            let weight = ln.affine.map { workload.weight($0.weight).baseAddress! }
            let bias = ln.affine.map { workload.weight($0.bias).baseAddress! }
            return {
                layerNorm(workload.inputs[0].baseAddress!, into: workload.output.baseAddress!, rows: k.rows, width: k.inputWidths[0],
                          eps: ln.eps, weight: weight, bias: bias)
            }
        case .logits(let table):
            let w = workload.weight(table).baseAddress!
            return {
                sgemmTransposed(workload.inputs[0].baseAddress!, rows: k.rows, inner: k.inputWidths[0], w, columns: k.outputWidth,
                                into: workload.output.baseAddress!)
            }
        default:
            preconditionFailure("no naive kernel for \(k.op.name)")
        }
    }

    /// Owns scratch buffers for as long as a closure captures it.
    final class Scratch {
        let buffers: [UnsafeMutableBufferPointer<Float>]
        init(_ buffers: [UnsafeMutableBufferPointer<Float>]) { self.buffers = buffers }
        deinit { buffers.forEach { $0.deallocate() } }
    }

    /// TFNaive's fused Pattention: LayerNorm into a buffer, then per site two sgemm calls around a
    /// pass of Θ over the score matrix, a rotary pass, and a copy into the output columns; then
    /// the residual add.
    static func fusedPattention(_ f: FusedPattentionOp, _ workload: KernelWorkload) -> () -> Void {
        let rows = workload.kernel.rows, d = f.sites[0].inFeatures, outWidth = f.outFeatures
        let maxTokens = f.sites.map(\.tokens).max()!, maxOut = f.sites.map(\.outFeatures).max()!
        let normed = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * d)
        let scores = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * maxTokens)
        let siteOut = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * maxOut)
        for b in [normed, scores, siteOut] { b.initialize(repeating: 0) }
        let keep = Scratch([normed, scores, siteOut])
        let weights = f.sites.map { (workload.weight($0.keyName).baseAddress!, workload.weight($0.valueName).baseAddress!) }
        let lnWeight = f.prologue?.affine.map { workload.weight($0.weight).baseAddress! }
        let lnBias = f.prologue?.affine.map { workload.weight($0.bias).baseAddress! }
        let position = workload.kernel.position
        return {
            _ = keep
            var x = UnsafePointer(workload.inputs[0].baseAddress!)
            if let ln = f.prologue {
                layerNorm(x, into: normed.baseAddress!, rows: rows, width: d, eps: ln.eps, weight: lnWeight, bias: lnBias)
                x = UnsafePointer(normed.baseAddress!)
            }
            let out = workload.output.baseAddress!
            var column = 0
            for (index, site) in f.sites.enumerated() {
                let y = siteOut.baseAddress!
                pattention(x, rows: rows, site, key: weights[index].0, value: weights[index].1, scores: scores.baseAddress!, into: y)
                if let r = f.rotary[index] { rotary(y, rows: rows, width: site.outFeatures, r, firstPosition: position) }
                for row in 0..<rows {
                    (out + row * outWidth + column).update(from: y + row * site.outFeatures, count: site.outFeatures)
                }
                column += site.outFeatures
            }
            if f.residual {
                let residual = workload.inputs[1].baseAddress!
                for i in 0..<(rows * outWidth) { out[i] += residual[i] }
            }
        }
    }

    /// `out[rows, columns] = x[rows, inner] · w[columns, inner]ᵀ`.
    static func sgemmTransposed(_ x: UnsafePointer<Float>, rows: Int, inner: Int, _ w: UnsafePointer<Float>, columns: Int,
                                into out: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(columns), Int32(inner),
                    1, x, Int32(inner), w, Int32(inner), 0, out, Int32(columns))
    }

    /// `out[rows, columns] = a[rows, inner] · w[inner, columns]`.
    static func sgemm(_ a: UnsafePointer<Float>, rows: Int, inner: Int, _ w: UnsafePointer<Float>, columns: Int,
                      into out: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns), Int32(inner),
                    1, a, Int32(inner), w, Int32(columns), 0, out, Int32(columns))
    }

    /// Row-wise LayerNorm, biased variance, double accumulators.
    static func layerNorm(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, width d: Int, eps: Double,
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
    static func pattention(_ x: UnsafePointer<Float>, rows: Int, _ p: PattentionOp, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
                           scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let n = p.tokens
        sgemmTransposed(x, rows: rows, inner: p.inFeatures, key, columns: n, into: scores)
        for row in 0..<rows { normalise(UnsafeMutableBufferPointer(start: scores + row * n, count: n), p.norm, tau: p.tau) }
        sgemm(scores, rows: rows, inner: n, value, columns: p.outFeatures, into: out)
    }

    /// Θ on one score row, in place (as TFNaive: a zero row stays zero).
    static func normalise(_ s: UnsafeMutableBufferPointer<Float>, _ norm: PattentionNorm, tau: Double) {
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
    static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * 0.70710678118654752)) }

    /// GPT-NeoX rotate-half rotary on each head's first `rotaryDims` dims, in place.
    static func rotary(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, _ r: RotaryOp, firstPosition: Int) {
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

    /// TFNaive's attention: copy k, v into the caches at `position`, then per head an sgemm for the
    /// scores, a masked-softmax pass, and an sgemm with the values.
    static func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
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
