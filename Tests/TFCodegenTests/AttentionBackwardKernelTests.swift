import XCTest
@testable import TFCodegen
import TFIR
import TFNaive

/// The blocked attention backward against the naive backend's (`NaiveBackward.attention`, OpenBLAS
/// products and double softmax sums), for every vector target this CPU runs: head dims that are
/// not a multiple of the lanes (masked tails), sequence lengths that are not a multiple of the
/// score tile (padding positions), more rows than one query block (causal blocks after the
/// first), a single row, non-causal attention, and accumulation into what dq, dk, dv held.
final class AttentionBackwardKernelTests: XCTestCase {
    func testAgainstNaiveBackward() {
        for vector in TestJIT.runnable { check(vector) }
    }

    func check(_ vector: VectorTarget) {
        let tiling = AttentionBackwardTiling(vector)
        let cases: [(heads: Int, headDim: Int, T: Int, causal: Bool)] = [
            (2, 12, 37, true), (3, 32, 96, true), (1, 20, 150, false), (1, 17, tiling.queryBlock * 2 + 45, true),
            (2, 8, 1, true), (2, 64, 5, false), (1, 40, tiling.queryBlock + 3, false),
        ]
        for (heads, headDim, T, causal) in cases {
            let spec = AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal)
            let kernel = TestJIT.compile(for: vector) { [$0.addAttentionBackward(spec)] }[spec.symbol]!
            let width = heads * headDim
            var random = TestRandom(seed: UInt64(T * 100 + headDim))
            let q = random.array(T * width, scale: 2), k = random.array(T * width, scale: 2), v = random.array(T * width)
            let dy = random.array(T * width)
            let initial = (0..<3).map { _ in random.array(T * width) }
            let op = AttentionOp(heads: heads, headDim: headDim, causal: causal, cacheSlot: 0)
            let m = { (data: [Float]) in Matrix(rows: T, columns: width, data: data) }
            let ref = NaiveBackward.attention(q: m(q), k: m(k), v: m(v), dy: m(dy), op)
            let buffers = [q, k, v, dy].map { AlignedBuffer($0) }
            let outputs = initial.map { AlignedBuffer($0) }
            kernel((buffers + outputs).map(\.raw), rows: T)
            for (name, (out, (start, delta))) in zip(["dq", "dk", "dv"], zip(outputs, zip(initial, [ref.dq, ref.dk, ref.dv]))) {
                // Compared as the gradient itself (what the kernel added), relative to its largest element.
                let added = zip(out.array, start).map { $0 - $1 }
                XCTAssertLessThan(relativeError(added, delta.data.map(Double.init)), 1e-4,
                                  "\(vector.name): \(name) heads=\(heads) head_dim=\(headDim) T=\(T)\(causal ? "" : " non-causal")")
            }
        }
    }

    /// The training-forward mode (`O += softmax(q·kᵀ/√d)·v`, no KV cache) against the naive
    /// backend's attention (OpenBLAS products) over the same shapes, adding into what O held.
    func testTrainingForwardAgainstNaiveAttention() {
        for vector in TestJIT.runnable {
            let tiling = AttentionBackwardTiling(vector)
            for (heads, headDim, T, causal) in [(2, 12, 37, true), (3, 32, 96, true), (1, 20, 150, false), (1, 17, tiling.queryBlock * 2 + 45, true),
                                                (2, 8, 1, true), (2, 64, 5, false)] {
                let spec = AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal, forward: true)
                let kernel = TestJIT.compile(for: vector) { [$0.addAttentionBackward(spec)] }[spec.symbol]!
                let width = heads * headDim
                var random = TestRandom(seed: UInt64(T * 10 + headDim))
                let q = random.array(T * width, scale: 2), k = random.array(T * width, scale: 2), v = random.array(T * width)
                let initial = random.array(T * width)
                let expected = naiveAttention(q: q, k: k, v: v, rows: T, AttentionOp(heads: heads, headDim: headDim, causal: causal, cacheSlot: 0))
                let buffers = [q, k, v, initial].map { AlignedBuffer($0) }
                kernel(buffers.map(\.raw), rows: T)
                let added = zip(buffers[3].array, initial).map { $0 - $1 }
                XCTAssertLessThan(relativeError(added, expected.map(Double.init)), 1e-5,
                                  "\(vector.name): heads=\(heads) head_dim=\(headDim) T=\(T)\(causal ? "" : " non-causal")")
            }
        }
    }

    /// `p0`'s bits (1 dq or O, 2 dk, 4 dv) make the kernels write their outputs instead of adding
    /// into them: outputs filled with NaN first (an element left unwritten, or added into, shows),
    /// both the recomputing and the saved-P kernels, against the naive attention and backward;
    /// one bit at a time leaves the other outputs added into.
    func testWritingOutputsAgainstNaive() {
        for vector in TestJIT.runnable {
            let tiling = AttentionBackwardTiling(vector)
            // Head dims the other tests do not use (each spec is compiled once per shared JIT).
            for (heads, headDim, T, causal) in [(2, 13, 37, true), (1, 21, 150, false), (1, 19, tiling.queryBlock * 2 + 45, true),
                                                (2, 9, 1, true), (1, 41, tiling.queryBlock + 3, false)] {
                let name = "\(vector.name): heads=\(heads) head_dim=\(headDim) T=\(T)\(causal ? "" : " non-causal")"
                let specs = [false, true].map { saved in
                    (forward: AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal, forward: true, savesProbabilities: saved),
                     backward: AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal, savesProbabilities: saved))
                }
                let kernels = TestJIT.compile(for: vector) { m in specs.flatMap { [m.addAttentionBackward($0.forward), m.addAttentionBackward($0.backward)] } }
                let width = heads * headDim
                var random = TestRandom(seed: UInt64(T * 13 + headDim))
                let q = random.array(T * width, scale: 2), k = random.array(T * width, scale: 2), v = random.array(T * width)
                let dy = random.array(T * width), initial = (0..<3).map { _ in random.array(T * width) }
                let op = AttentionOp(heads: heads, headDim: headDim, causal: causal, cacheSlot: 0)
                let expected = naiveAttention(q: q, k: k, v: v, rows: T, op)
                let m = { (data: [Float]) in Matrix(rows: T, columns: width, data: data) }
                let ref = NaiveBackward.attention(q: m(q), k: m(k), v: m(v), dy: m(dy), op)
                let inputs = [q, k, v, dy].map { AlignedBuffer($0) }
                func nans() -> AlignedBuffer {
                    let b = AlignedBuffer(count: T * width, zeroed: false)
                    b.pointer.update(repeating: .nan, count: T * width)
                    return b
                }
                for (saved, spec) in zip([false, true], specs) {
                    let label = name + (saved ? ", saved P" : "")
                    let out = nans()
                    let p = AlignedBuffer(count: spec.forward.probabilityFloats(rows: T, for: vector), zeroed: false)
                    kernels[spec.forward.symbol]!([inputs[0].raw, inputs[1].raw, inputs[2].raw, out.raw] + (saved ? [p.raw] : []), rows: T, position: 1)
                    XCTAssertLessThan(relativeError(out.array, expected.map(Double.init)), 1e-5, "O, " + label)
                    for bits in [7, 1, 2, 4] {
                        let outputs = (0..<3).map { bits & (1 << $0) != 0 ? nans() : AlignedBuffer(initial[$0]) }
                        kernels[spec.backward.symbol]!((inputs + outputs).map(\.raw) + (saved ? [p.raw] : []), rows: T, position: bits)
                        for (i, (got, delta)) in zip(outputs, [ref.dq, ref.dk, ref.dv]).enumerated() {
                            let written = bits & (1 << i) != 0
                            let result = written ? got.array : zip(got.array, initial[i]).map { $0 - $1 }
                            XCTAssertLessThan(relativeError(result, delta.data.map(Double.init)), 1e-4,
                                              "\(["dq", "dk", "dv"][i]) \(written ? "written" : "added"), p0=\(bits), " + label)
                        }
                    }
                }
            }
        }
    }

    /// `savesProbabilities`: the forward writes P (into a buffer filled with NaN first, so a read of
    /// any element it did not write shows) and gives the same O; the backward that reads P instead
    /// of recomputing it gives the naive backward's dq, dk, dv.
    func testSavedProbabilitiesAgainstNaive() {
        for vector in TestJIT.runnable {
            let tiling = AttentionBackwardTiling(vector)
            for (heads, headDim, T, causal) in [(2, 12, 37, true), (3, 32, 96, true), (1, 20, 150, false), (1, 17, tiling.queryBlock * 2 + 45, true),
                                                (2, 8, 1, true), (2, 64, 5, false)] {
                let forward = AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal, forward: true, savesProbabilities: true)
                let backward = AttentionBackwardSpec(heads: heads, headDim: headDim, causal: causal, savesProbabilities: true)
                let kernels = TestJIT.compile(for: vector) { [$0.addAttentionBackward(forward), $0.addAttentionBackward(backward)] }
                let width = heads * headDim, name = "\(vector.name): heads=\(heads) head_dim=\(headDim) T=\(T)\(causal ? "" : " non-causal")"
                var random = TestRandom(seed: UInt64(T * 7 + headDim))
                let q = random.array(T * width, scale: 2), k = random.array(T * width, scale: 2), v = random.array(T * width)
                let dy = random.array(T * width), initial = (0..<3).map { _ in random.array(T * width) }
                let op = AttentionOp(heads: heads, headDim: headDim, causal: causal, cacheSlot: 0)
                let expected = naiveAttention(q: q, k: k, v: v, rows: T, op)
                let inputs = [q, k, v, dy].map { AlignedBuffer($0) }
                let out = AlignedBuffer(count: T * width)
                let p = AlignedBuffer(count: forward.probabilityFloats(rows: T, for: vector), zeroed: false)
                p.pointer.update(repeating: .nan, count: p.count)
                kernels[forward.symbol]!([inputs[0].raw, inputs[1].raw, inputs[2].raw, out.raw, p.raw], rows: T)
                XCTAssertLessThan(relativeError(out.array, expected.map(Double.init)), 1e-5, "O, " + name)
                let m = { (data: [Float]) in Matrix(rows: T, columns: width, data: data) }
                let ref = NaiveBackward.attention(q: m(q), k: m(k), v: m(v), dy: m(dy), op)
                let outputs = initial.map { AlignedBuffer($0) }
                kernels[backward.symbol]!((inputs + outputs + [p]).map(\.raw), rows: T)
                for (label, (got, (start, delta))) in zip(["dq", "dk", "dv"], zip(outputs, zip(initial, [ref.dq, ref.dk, ref.dv]))) {
                    XCTAssertLessThan(relativeError(zip(got.array, start).map { $0 - $1 }, delta.data.map(Double.init)), 1e-4, label + ", " + name)
                }
            }
        }
    }

    /// The naive backend's attention of `rows` rows of q, k, v from position 0 (its own KV cache).
    private func naiveAttention(q: [Float], k: [Float], v: [Float], rows T: Int, _ op: AttentionOp) -> [Float] {
        let width = op.heads * op.headDim
        var out = [Float](repeating: 0, count: T * width)
        var keys = out, values = out, scores = [Float](repeating: 0, count: T * T)
        NaiveKernels.attention(q: q, k: k, v: v, out: &out, keys: &keys, values: &values, scores: &scores, rows: T, position: 0, width: width, op)
        return out
    }
}
