/// Symmetric int8 quantisation (issue 12, weight format int8): a vector `x` becomes
/// `q = round(x / s)` clamped to `-127...127` with `s = max|x| / 127`, so `x ≈ s · q`.
/// `-128` is never produced: it keeps `|q| ≤ 127`, which the AVX2 sign trick needs
/// (`|a|·|b|` pair sums ≤ 2·127·127 = 32258 fit `vpmaddubsw`'s saturating i16).
/// A zero vector gets scale 0 and all-zero codes (never a division by zero).
public enum Int8Quantization {
    /// The scale of `values`: `max|v| / 127` (0 for an all-zero vector).
    public static func scale(_ values: UnsafeBufferPointer<Float>) -> Float {
        var m: Float = 0
        for v in values { m = max(m, abs(v)) }
        return m / 127
    }

    /// The code of `v` at scale `s` (0 when `s` is 0).
    @inline(__always)
    public static func code(_ v: Float, scale s: Float) -> Int8 {
        guard s > 0 else { return 0 }
        return Int8(max(-127, min(127, (v / s).rounded(.toNearestOrEven))))
    }

    /// Quantises each of the `rows` rows of the row-major `[rows, cols]` matrix `src` with its own
    /// scale (activations per row; keys and embeddings per parameter token / vocabulary row).
    public static func quantizeRows(_ src: UnsafePointer<Float>, rows: Int, cols: Int) -> (codes: [Int8], scales: [Float]) {
        var codes = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let row = UnsafeBufferPointer(start: src + r * cols, count: cols)
            let s = scale(row)
            scales[r] = s
            for c in 0..<cols { codes[r * cols + c] = code(row[c], scale: s) }
        }
        return (codes, scales)
    }

    public static func quantizeRows(_ src: [Float], rows: Int, cols: Int) -> (codes: [Int8], scales: [Float]) {
        precondition(src.count == rows * cols)
        return src.withUnsafeBufferPointer { quantizeRows($0.baseAddress!, rows: rows, cols: cols) }
    }
}

/// Int8 weight panels for a GEMM `C = A · B` with `B[k, n]` (the int8 counterpart of
/// `PanelLayout`): panel `p` holds columns `p·nr ..< p·nr + nr`; within it, for each quad of
/// depth `g` (`k` padded to a multiple of 4 with zero codes), the `nr` columns each store the 4
/// codes `B[4g ..< 4g+4, j]` contiguously — one 32-bit lane per column, which is what
/// `vpdpbusd` reads and what `vpmaddubsw` + `vpmaddwd(1)` sum on AVX2.
///
/// Byte of `B[kk, j]`: `p·quads·nr·4 + (kk/4)·nr·4 + (j%nr)·4 + kk%4`, `p = j/nr`.
///
/// Scales are per parameter token, which is a column of B for keys and embeddings
/// (`columnScales`, applied in the epilogue) and a depth row of B for values (`depthScales`,
/// folded into the activations before they are quantised: `Σ_k a[k]·s_k·q[k,j]`).
/// `columnSums[j] = Σ_k q[k,j]` lets the VNNI kernel offset activations to u8 (`a + 128`) and
/// subtract `128 · columnSums[j]` afterwards.
public struct Int8PanelLayout: Hashable, CustomStringConvertible, Sendable {
    public let k: Int
    public let n: Int
    public let nr: Int

    public init(k: Int, n: Int, nr: Int) {
        precondition(k > 0 && n > 0 && nr > 0 && nr % 8 == 0, "bad int8 panel layout k=\(k) n=\(n) nr=\(nr)")
        self.k = k
        self.n = n
        self.nr = nr
    }

    /// The panel geometry, shared with the other formats (`PanelLayout` pads int8 depth to quads).
    public var geometry: PanelLayout { PanelLayout(k: k, n: n, nr: nr, format: .int8) }
    public var panels: Int { geometry.panels }
    /// Depth padded to a multiple of 4.
    public var paddedK: Int { geometry.paddedK }
    /// Depth quads (`ceil(k / 4)`).
    public var quads: Int { paddedK / 4 }
    /// Bytes in the packed code buffer.
    public var byteCount: Int { geometry.byteCount }
    /// Columns including the last panel's padding (length of `columnScales` and `columnSums`).
    public var paddedN: Int { panels * nr }
    public var description: String { "int8 panels(k=\(k), n=\(n), nr=\(nr))" }

    /// The byte offset of logical `B[kk, j]`.
    @inline(__always)
    public func offset(_ kk: Int, _ j: Int) -> Int {
        (j / nr) * quads * nr * 4 + (kk / 4) * nr * 4 + (j % nr) * 4 + kk % 4
    }

    /// Packed weights: codes, per-column scales (1 where the scale lives in the depth instead),
    /// per-depth scales (1 where it lives in the columns) and column code sums.
    public struct Packed {
        public var layout: Int8PanelLayout
        public var codes: [Int8]
        public var columnScales: [Float]
        public var depthScales: [Float]
        public var columnSums: [Int32]

        /// The code of logical `B[kk, j]` (0 in the padding).
        public func code(_ kk: Int, _ j: Int) -> Int8 { codes[layout.offset(kk, j)] }
        /// The dequantised `B[kk, j]`.
        public func value(_ kk: Int, _ j: Int) -> Float { Float(code(kk, j)) * columnScales[j] * depthScales[kk] }

        /// Column `j` of B dequantised into `k` floats: for an embedding packed for the logits
        /// (`packTransposed`), token `j`'s embedding row — the lookup reads the same codes the
        /// logits head uses, so the two agree and the table is stored once.
        public func dequantizedColumn(_ j: Int, into out: UnsafeMutablePointer<Float>) {
            precondition(j >= 0 && j < layout.n)
            for kk in 0..<layout.k { out[kk] = value(kk, j) }
        }
    }

    private func assemble(_ codeAt: (Int, Int) -> Int8, columnScales: [Float], depthScales: [Float]) -> Packed {
        var codes = [Int8](repeating: 0, count: byteCount)
        var sums = [Int32](repeating: 0, count: paddedN)
        for j in 0..<n {
            var sum: Int32 = 0
            for kk in 0..<k {
                let q = codeAt(kk, j)
                codes[offset(kk, j)] = q
                sum += Int32(q)
            }
            sums[j] = sum
        }
        var cs = columnScales
        cs += [Float](repeating: 0, count: paddedN - cs.count)
        return Packed(layout: self, codes: codes, columnScales: cs, depthScales: depthScales, columnSums: sums)
    }

    /// Packs `B = srcᵀ`, `src` row-major `[n, k]` (keys `K[n, d_in]`, the embedding for the
    /// logits): row j of src is parameter token j, quantised with its own scale (a column scale).
    public func packTransposed(_ src: [Float]) -> Packed {
        precondition(src.count == n * k)
        let (q, s) = Int8Quantization.quantizeRows(src, rows: n, cols: k)
        return assemble({ kk, j in q[j * k + kk] }, columnScales: s, depthScales: [Float](repeating: 1, count: k))
    }

    /// Packs `B = src`, `src` row-major `[k, n]` (values `V[n_tokens, d_out]`): row kk of src is
    /// parameter token kk, quantised with its own scale (a depth scale, folded into activations).
    public func pack(_ src: [Float]) -> Packed {
        precondition(src.count == n * k)
        let (q, s) = Int8Quantization.quantizeRows(src, rows: k, cols: n)
        return assemble({ kk, j in q[kk * n + j] }, columnScales: [Float](repeating: 1, count: n), depthScales: s)
    }
}
