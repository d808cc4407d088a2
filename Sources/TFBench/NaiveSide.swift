import Foundation
import COpenBLAS
import TFIR
import TFNaive

/// The naive side of each kernel case: what the naive backend (TFNaive) does for that op, on the
/// workload's buffers — OpenBLAS `sgemm` for every matrix product and a separate single-threaded
/// pass for everything else (norms, Θ, rotary, softmax, copies), with double accumulators where
/// TFNaive has them (the same `NaiveKernels`). Scratch buffers are allocated once in `prepare`, outside the timed region.
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
                NaiveKernels.attention(q: workload.inputs[0].baseAddress!, k: workload.inputs[1].baseAddress!, v: workload.inputs[2].baseAddress!,
                          out: workload.output.baseAddress!, keys: workload.keyCache!.baseAddress!, values: workload.valueCache!.baseAddress!,
                          scores: scores.baseAddress!, rows: rows, position: k.position, width: width, a)
            }
        case .layerNorm(let ln):
            let weight = ln.affine.map { workload.weight($0.weight).baseAddress! }
            let bias = ln.affine.map { workload.weight($0.bias).baseAddress! }
            return {
                NaiveKernels.layerNorm(workload.inputs[0].baseAddress!, into: workload.output.baseAddress!, rows: k.rows, width: k.inputWidths[0],
                          eps: ln.eps, weight: weight, bias: bias)
            }
        case .logits(let table):
            let w = workload.weight(table).baseAddress!
            return {
                NaiveKernels.sgemmTransposed(workload.inputs[0].baseAddress!, rows: k.rows, inner: k.inputWidths[0], w, columns: k.outputWidth,
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
                NaiveKernels.layerNorm(x, into: normed.baseAddress!, rows: rows, width: d, eps: ln.eps, weight: lnWeight, bias: lnBias)
                x = UnsafePointer(normed.baseAddress!)
            }
            let out = workload.output.baseAddress!
            var column = 0
            for (index, site) in f.sites.enumerated() {
                let y = siteOut.baseAddress!
                NaiveKernels.pattention(x, rows: rows, site, key: weights[index].0, value: weights[index].1, scores: scores.baseAddress!, into: y)
                if let r = f.rotary[index] { NaiveKernels.rotary(y, rows: rows, width: site.outFeatures, r, firstPosition: position) }
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
}
