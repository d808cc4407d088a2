import Foundation
import XCTest
import TFIR
@testable import TFBench

/// The naive side computes what the ops mean, checked against plain loops.
final class NaiveSideTests: XCTestCase {
    var cases: [KernelCase] = []

    override func setUpWithError() throws {
        cases = try KernelSuite.cases(for: try tinyGraph(), seq: 5, contexts: [16])
    }

    func find(_ kernelClass: KernelClass, _ phase: Phase) -> KernelCase {
        cases.first { $0.kernelClass == kernelClass && $0.phase == phase }!
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let d = relativeDifference(a, b)
        XCTAssertLessThan(d, 1e-4, "\(what): relative difference \(d)", file: file, line: line)
    }

    /// Θ(x·Kᵀ)·V for l2_norm_gelu, row by row, in double.
    func referencePattention(_ x: [Float], rows: Int, _ p: PattentionOp, key: UnsafeBufferPointer<Float>, value: UnsafeBufferPointer<Float>) -> [Float] {
        var out = [Float](repeating: 0, count: rows * p.outFeatures)
        for r in 0..<rows {
            var s = [Double](repeating: 0, count: p.tokens)
            for i in 0..<p.tokens { for j in 0..<p.inFeatures { s[i] += Double(x[r * p.inFeatures + j]) * Double(key[i * p.inFeatures + j]) } }
            let norm = s.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let a = s.map { v -> Double in let z = v / norm * p.tau; return 0.5 * z * (1 + erf(z / 2.0.squareRoot())) }
            for o in 0..<p.outFeatures {
                var sum = 0.0
                for i in 0..<p.tokens { sum += a[i] * Double(value[i * p.outFeatures + o]) }
                out[r * p.outFeatures + o] = Float(sum)
            }
        }
        return out
    }

    func referenceLayerNorm(_ x: [Float], rows: Int, width: Int) -> [Float] {
        var out = x
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            for j in 0..<width { out[r * width + j] = Float((row[j] - mean) / (variance + 1e-5).squareRoot()) }
        }
        return out
    }

    func testPattentionMatchesLoops() {
        for phase in [Phase.prefill, .decode] {
            let k = cases.first { $0.name == "pattention mlp" && $0.phase == phase }!
            guard case .fusedPattention(let f) = k.op else { return XCTFail() }
            let w = KernelWorkload(k)
            NaiveSide.prepare(w)()
            let p = f.sites[0]
            let expected = referencePattention(Array(w.inputs[0]), rows: k.rows, p, key: w.weight(p.keyName), value: w.weight(p.valueName))
            assertClose(expected, Array(w.output), "pattention \(phase)")
        }
    }

    func testFusedQKVIsLayerNormThenEachSiteSideBySide() {
        let k = find(.fusedQKV, .prefill)
        guard case .fusedPattention(let f) = k.op else { return XCTFail() }
        let w = KernelWorkload(k)
        NaiveSide.prepare(w)()
        let h = referenceLayerNorm(Array(w.inputs[0]), rows: k.rows, width: 64)
        let out = Array(w.output)
        // v (no rotary) is the third block of 64 columns.
        let v = f.sites[2]
        let expected = referencePattention(h, rows: k.rows, v, key: w.weight(v.keyName), value: w.weight(v.valueName))
        let got = (0..<k.rows).flatMap { r in out[(r * 192 + 128)..<(r * 192 + 192)] }
        assertClose(expected, got, "value block")
        // At position 0 rotary is the identity, so row 0 of q is plain Pattention too.
        let q = f.sites[0]
        let q0 = referencePattention(Array(h[0..<64]), rows: 1, q, key: w.weight(q.keyName), value: w.weight(q.valueName))
        assertClose(q0, Array(out[0..<64]), "q row 0")
    }

    func testAttentionMatchesLoopsAndFillsTheCache() {
        for phase in [Phase.prefill, .decode] {
            let k = find(.attention, phase)
            guard case .attention(let a) = k.op else { return XCTFail() }
            let w = KernelWorkload(k)
            let width = a.heads * a.headDim, length = k.position + k.rows
            var keys = Array(w.keyCache!), values = Array(w.valueCache!)
            for r in 0..<k.rows {
                for j in 0..<width {
                    keys[(k.position + r) * width + j] = w.inputs[1][r * width + j]
                    values[(k.position + r) * width + j] = w.inputs[2][r * width + j]
                }
            }
            NaiveSide.prepare(w)()
            XCTAssertEqual(Array(w.keyCache!), keys, "k appended at the position")
            XCTAssertEqual(Array(w.valueCache!), values)
            var expected = [Float](repeating: 0, count: k.rows * width)
            var pairs = 0  // query–key pairs attended, counted row by row
            for r in 0..<k.rows {
                let visible = k.position + r + 1
                pairs += visible
                for h in 0..<a.heads {
                    let o = h * a.headDim
                    var scores = (0..<visible).map { j -> Double in
                        (0..<a.headDim).reduce(0.0) { $0 + Double(w.inputs[0][r * width + o + $1]) * Double(keys[j * width + o + $1]) }
                            / Double(a.headDim).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for d in 0..<a.headDim {
                        expected[r * width + o + d] = Float((0..<visible).reduce(0.0) { $0 + scores[$1] / total * Double(values[$1 * width + o + d]) })
                    }
                }
            }
            // setUp asked for contexts [16]: prefill and decode both end at position 16, and the case's
            // FLOPs (the bench's GFLOP/s) are 4·width per pair actually attended.
            XCTAssertEqual(length, 16, "attention \(phase) ends at the requested context")
            XCTAssertEqual(w.keyCache!.count, length * width, "the cache holds exactly the attended positions")
            XCTAssertEqual(k.flops, 4 * Double(width) * Double(pairs), "attention \(phase) FLOPs")
            assertClose(expected, Array(w.output), "attention \(phase)")
        }
    }

    func testLayerNormAndLogits() {
        let ln = find(.layerNorm, .prefill)
        let w = KernelWorkload(ln)
        NaiveSide.prepare(w)()
        assertClose(referenceLayerNorm(Array(w.inputs[0]), rows: ln.rows, width: 64), Array(w.output), "layernorm")

        let logits = find(.logits, .prefill)
        let l = KernelWorkload(logits)
        NaiveSide.prepare(l)()
        guard case .logits(let table) = logits.op else { return XCTFail() }
        let e = l.weight(table)
        let expected = (0..<(logits.rows * 256)).map { i -> Float in
            let r = i / 256, v = i % 256
            return Float((0..<64).reduce(0.0) { $0 + Double(l.inputs[0][r * 64 + $1]) * Double(e[v * 64 + $1]) })
        }
        assertClose(expected, Array(l.output), "logits")
    }
}
