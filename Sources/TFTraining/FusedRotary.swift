import Foundation
import TFIR
import TFCodegen

/// The fused trainer's rotary embedding, forward and backward, as host loops over a step's rows
/// (windows stacked, positions restarting at 0 in each) with per-(position, pair) cos/sin tables
/// made once per window length: the generated rotary kernel evaluates `cos` and `sin` for every
/// row of every call (a third of a millisecond of a mid step), while the rotation itself is a
/// few multiplies per pair.
final class FusedRotary {
    let rotary: RotaryOp
    /// The forward's table: the kernel's angles and rounding (`rotaryEpilogue`: θ = float(p) ·
    /// inv_freq[j] in float32, cos and sin in double, rounded to float), so it gives the kernel's bits.
    private var forwardTable: [Float] = []
    /// The backward's table: the oracle's angles (`NaiveBackward.rotary`: p / base^(2j/rd) in double).
    private var backwardTable: [Float] = []

    init(_ rotary: RotaryOp) { self.rotary = rotary }

    private var half: Int { rotary.rotaryDims / 2 }

    /// Per position `< t`, per pair: cos and sin, interleaved.
    private static func table(_ t: Int, half: Int, angle: (Int, Int) -> Double) -> [Float] {
        var table: [Float] = []
        table.reserveCapacity(2 * t * half)
        for position in 0..<t {
            for j in 0..<half {
                let a = angle(position, j)
                table += [Float(Foundation.cos(a)), Float(Foundation.sin(a))]
            }
        }
        return table
    }

    /// `y = R(θ)·x` for `rows` rows of `width` floats, in windows of `t` rows: per head the pairs
    /// `(j, j + rd/2)` rotated as torch does (`x·cos + rotate_half(x)·sin`, each product rounded),
    /// the other columns copied. `y` may be `x` (turned in place: each pair is read before it is written).
    func forward(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, width: Int, window t: Int) {
        if UnsafePointer(y) != x { y.update(from: x, count: rows * width) }
        guard half > 0 else { return }
        if forwardTable.count < 2 * t * half {
            let inverse = RotaryEmbedding(heads: rotary.heads, headDim: rotary.headDim, rotaryDims: rotary.rotaryDims, base: rotary.base).inverseFrequencies
            forwardTable = Self.table(t, half: half) { position, j in Double(Float(position) * inverse[j]) }
        }
        let half = half
        forEachPair(in: forwardTable, rows: rows, width: width, window: t) { i, c, s in
            let x1 = x[i], x2 = x[i + half]
            y[i] = x1 * c + (-x2) * s
            y[i + half] = x2 * c + x1 * s
        }
    }

    /// `dx += Rᵀ(dy)`: the rotated pairs turned back (the oracle's arithmetic), the other columns
    /// added as they are.
    func backward(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, width: Int, window t: Int) {
        let half = half
        forEachPair(in: backwardTable(window: t), rows: rows, width: width, window: t) { i, c, s in
            let g1 = dy[i], g2 = dy[i + half]
            dx[i] += g1 * c + g2 * s
            dx[i + half] += g2 * c - g1 * s
        }
        let rotated = rotary.rotaryDims, passed = rotary.headDim - rotated, tail = rotary.heads * rotary.headDim
        for row in 0..<rows {
            for h in 0..<rotary.heads {
                let base = row * width + h * rotary.headDim + rotated
                Self.add(dy + base, into: dx + base, count: passed)
            }
            Self.add(dy + row * width + tail, into: dx + row * width + tail, count: width - tail)
        }
    }

    /// `g = Rᵀ(g)` in place: `backward` into a zero `dx` without the zeroing and the adds (the
    /// same values; the other columns are left as they are).
    func backwardInPlace(_ g: UnsafeMutablePointer<Float>, rows: Int, width: Int, window t: Int) {
        let half = half
        forEachPair(in: backwardTable(window: t), rows: rows, width: width, window: t) { i, c, s in
            let g1 = g[i], g2 = g[i + half]
            g[i] = g1 * c + g2 * s
            g[i + half] = g2 * c - g1 * s
        }
    }

    /// The backward's table for windows of `t` rows, made on first need.
    private func backwardTable(window t: Int) -> [Float] {
        if backwardTable.count < 2 * t * half {
            let rd = Double(rotary.rotaryDims), base = rotary.base
            backwardTable = Self.table(t, half: half) { position, j in Double(position) / Foundation.pow(base, Double(2 * j) / rd) }
        }
        return backwardTable
    }

    /// Calls `body(i, c, s)` for every rotated pair of `rows` rows of `width` floats (windows of
    /// `t` rows, positions restarting at 0 in each): `i` is the index of the pair's first element
    /// (the second is `i + half`), `c` and `s` the cosine and sine of its angle in `table`.
    @inline(__always)
    private func forEachPair(in table: [Float], rows: Int, width: Int, window t: Int, _ body: (Int, Float, Float) -> Void) {
        let half = half
        guard half > 0 else { return }
        table.withUnsafeBufferPointer { table in
            for row in 0..<rows {
                let angles = table.baseAddress! + 2 * half * (row % t)
                for h in 0..<rotary.heads {
                    let base = row * width + h * rotary.headDim
                    for j in 0..<half { body(base + j, angles[2 * j], angles[2 * j + 1]) }
                }
            }
        }
    }

    /// `dst[i] += src[i]` for `i < count`, 8 floats at a time.
    @inline(__always)
    private static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let sum = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: sum, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { dst[i] += src[i]; i += 1 }
    }
}
