/// Symmetric int8 quantisation in groups (issue 12, weight format int8): each run of
/// `groupDepth` = 32 consecutive depth values (the reduction dimension of a GEMM; the last run
/// may be shorter) gets its own scale `s = max|x| / 127` and codes `q = round(x / s)` clamped
/// to `-127...127`, so `x ≈ s · q` — the blocks of ggml's Q8_0, for weights and activations.
///
/// Why groups rather than one scale per parameter token: on the random 150M, int8 codes with a
/// scale per parameter token cost 3.2% relative RMS logit error from the weights alone (before any
/// activation is quantised; `scripts/int8_accuracy_emulation.py`), over the 3% budget; groups of
/// 32 bring weights and activations together to 2.8% (docs/int8.md).
///
/// `-128` is never produced: it keeps `|q| ≤ 127`, which the AVX2 sign trick needs
/// (`|a|·|b|` pair sums ≤ 2·127·127 = 32258 fit `vpmaddubsw`'s saturating i16).
/// A zero group gets scale 0 and all-zero codes (never a division by zero).
public enum Int8Quantization {
    /// Depth values sharing one scale.
    public static let groupDepth = 32

    /// Groups along a depth of `k`.
    public static func groups(_ k: Int) -> Int { (k + groupDepth - 1) / groupDepth }

    /// The scale of `values`: `max|v| / 127` (0 for an all-zero vector).
    public static func scale(_ values: UnsafeBufferPointer<Float>) -> Float {
        var m: Float = 0
        for v in values { m = max(m, abs(v)) }
        return m / 127
    }

    /// A weight group's stored scale: `max|v| / 127` rounded *up* to bf16, so every code of the
    /// group still fits ±127 unclipped (the step grows by under 2⁻⁷, the error with it); 0 for
    /// an all-zero group.
    public static func storedScale(_ values: UnsafeBufferPointer<Float>) -> UInt16 {
        let bits = scale(values).bitPattern
        // A positive finite float: dropping the low half truncates it down; one more bf16 ulp
        // when anything was dropped rounds up.
        return UInt16(truncatingIfNeeded: bits >> 16) &+ (bits & 0xffff == 0 ? 0 : 1)
    }

    /// The code of `v` at scale `s` (0 when `s` is 0).
    @inline(__always)
    public static func code(_ v: Float, scale s: Float) -> Int8 {
        guard s > 0 else { return 0 }
        return Int8(max(-127, min(127, (v / s).rounded(.toNearestOrEven))))
    }

    /// Quantises each row of the row-major `[rows, cols]` matrix `src` in groups of `groupDepth`
    /// columns (the row is the depth: activation rows, or a parameter token's key): codes
    /// `[rows, cols]` and scales `[rows, groups(cols)]`.
    public static func quantizeRows(_ src: UnsafePointer<Float>, rows: Int, cols: Int) -> (codes: [Int8], scales: [Float]) {
        quantizeRows(src, rows: rows, cols: cols, groupScale: scale)
    }

    public static func quantizeRows(_ src: [Float], rows: Int, cols: Int) -> (codes: [Int8], scales: [Float]) {
        precondition(src.count == rows * cols)
        return src.withUnsafeBufferPointer { quantizeRows($0.baseAddress!, rows: rows, cols: cols) }
    }

    /// Quantises weight rows as the panels store them: like `quantizeRows`, but each group's
    /// scale is its `storedScale` (bf16), returned as fp32.
    public static func quantizeWeightRows(_ src: [Float], rows: Int, cols: Int) -> (codes: [Int8], scales: [Float]) {
        precondition(src.count == rows * cols)
        return src.withUnsafeBufferPointer {
            quantizeRows($0.baseAddress!, rows: rows, cols: cols) { BF16.float(storedScale($0)) }
        }
    }

    private static func quantizeRows(_ src: UnsafePointer<Float>, rows: Int, cols: Int,
                                     groupScale: (UnsafeBufferPointer<Float>) -> Float) -> (codes: [Int8], scales: [Float]) {
        let groups = groups(cols)
        var codes = [Int8](repeating: 0, count: rows * cols)
        var scales = [Float](repeating: 0, count: rows * groups)
        for r in 0..<rows {
            for g in 0..<groups {
                let c0 = g * groupDepth, c1 = min(cols, c0 + groupDepth)
                let s = groupScale(UnsafeBufferPointer(start: src + r * cols + c0, count: c1 - c0))
                scales[r * groups + g] = s
                for c in c0..<c1 { codes[r * cols + c] = code(src[r * cols + c], scale: s) }
            }
        }
        return (codes, scales)
    }
}

/// Int8 weight panels for a GEMM `C = A · B` with `B[k, n]` (the int8 counterpart of
/// `PanelLayout`), with their scales inside: panel `p` holds columns `p·nr ..< p·nr + nr` as one
/// contiguous run of depth groups (32 depth values, 8 quads; the last group may be shorter), and
/// each group is its codes followed by its `nr` scales, so decoding streams one panel from memory
/// in order — a separate scale array, read at a large stride beside the codes, cost int8 decode
/// a quarter of its speed.
///
/// The stored scales are bf16 (`Int8Quantization.storedScale`: fp32's range, so no group's scale
/// underflows, and half the bytes of fp32 ones): a weight then costs 1.0625 bytes instead of
/// 1.125, which int8 decode, bound by the bytes it reads, turns into speed.
///
/// Within a group, for each quad of depth (`k` padded to a multiple of 4 with zero codes) the
/// `nr` columns each store their 4 codes contiguously — one 32-bit lane per column, which is what
/// `vpdpbusd` reads and what `vpmaddubsw` + `vpmaddwd(1)` sum on AVX2.
///
/// A scale belongs to a column and a depth group. For keys and the embedding (`B = Kᵀ`) a group
/// is 32 features of one parameter token; for values (`B = V`) it is 32 parameter tokens of one
/// output feature.
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

    /// Quads in a full depth group.
    public static let quadsPerGroup = Int8Quantization.groupDepth / 4

    /// The panel geometry, shared with the other formats (`PanelLayout` pads int8 depth to quads).
    public var geometry: PanelLayout { PanelLayout(k: k, n: n, nr: nr, format: .int8) }
    public var panels: Int { geometry.panels }
    /// Depth padded to a multiple of 4.
    public var paddedK: Int { geometry.paddedK }
    /// Depth quads (`ceil(k / 4)`).
    public var quads: Int { paddedK / 4 }
    /// Depth groups sharing a scale (`ceil(k / 32)`).
    public var groups: Int { Int8Quantization.groups(k) }
    /// Quads in group `g` (8, or fewer in the last).
    public func quads(inGroup g: Int) -> Int { min(Self.quadsPerGroup, quads - g * Self.quadsPerGroup) }
    /// Bytes of one stored scale (bf16).
    public static let scaleBytes = 2
    /// Bytes of a full group in a panel: its codes, then its `nr` scales.
    public var groupBytes: Int { Self.quadsPerGroup * nr * 4 + nr * Self.scaleBytes }
    /// Bytes of one panel.
    public var panelBytes: Int { quads * nr * 4 + groups * nr * Self.scaleBytes }
    /// Bytes of the packed panels (codes and scales).
    public var byteCount: Int { panels * panelBytes }
    /// Columns including the last panel's padding.
    public var paddedN: Int { panels * nr }
    public var description: String { "int8 panels(k=\(k), n=\(n), nr=\(nr), groups of \(Int8Quantization.groupDepth), bf16 scales)" }

    /// The byte offset of logical `B[kk, j]`'s code.
    @inline(__always)
    public func offset(_ kk: Int, _ j: Int) -> Int {
        let q = kk / 4
        return (j / nr) * panelBytes + (q / Self.quadsPerGroup) * groupBytes + (q % Self.quadsPerGroup) * nr * 4 + (j % nr) * 4 + kk % 4
    }

    /// The byte offset of the scale of column `j` in depth group `g`.
    @inline(__always)
    public func scaleOffset(_ g: Int, _ j: Int) -> Int {
        (j / nr) * panelBytes + g * groupBytes + quads(inGroup: g) * nr * 4 + (j % nr) * Self.scaleBytes
    }

    /// Packed weights: the stored bytes (codes and scales, interleaved as above).
    public struct Packed {
        public var layout: Int8PanelLayout
        public var bytes: [UInt8]

        /// The code of logical `B[kk, j]` (0 in the padding).
        public func code(_ kk: Int, _ j: Int) -> Int8 { Int8(bitPattern: bytes[layout.offset(kk, j)]) }
        /// The scale of column `j` in depth group `g` (0 for padding columns).
        public func groupScale(_ g: Int, _ j: Int) -> Float {
            BF16.float(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: layout.scaleOffset(g, j), as: UInt16.self) })
        }
        /// The scale of `B[kk, j]`'s group.
        public func scale(_ kk: Int, _ j: Int) -> Float { groupScale(kk / Int8Quantization.groupDepth, j) }
        /// The dequantised `B[kk, j]`.
        public func value(_ kk: Int, _ j: Int) -> Float { Float(code(kk, j)) * scale(kk, j) }

        /// Column `j` of B dequantised into `k` floats: for an embedding packed for the logits
        /// (`packTransposed`), token `j`'s embedding row — the lookup reads the same codes the
        /// logits head uses, so the two agree and the table is stored once.
        public func dequantizedColumn(_ j: Int, into out: UnsafeMutablePointer<Float>) {
            precondition(j >= 0 && j < layout.n)
            for kk in 0..<layout.k { out[kk] = value(kk, j) }
        }
    }

    /// Quantises column j of logical B (`valueAt(kk, j)`) in depth groups and lays it out.
    private func assemble(_ valueAt: (Int, Int) -> Float) -> Packed {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        var column = [Float](repeating: 0, count: k)
        bytes.withUnsafeMutableBytes { raw in
            for j in 0..<n {
                for kk in 0..<k { column[kk] = valueAt(kk, j) }
                let (q, s) = Int8Quantization.quantizeWeightRows(column, rows: 1, cols: k)
                for kk in 0..<k { raw[offset(kk, j)] = UInt8(bitPattern: q[kk]) }
                // The scales are bf16 values already: the conversion back is exact.
                for g in 0..<groups { raw.storeBytes(of: BF16.round(s[g]), toByteOffset: scaleOffset(g, j), as: UInt16.self) }
            }
        }
        return Packed(layout: self, bytes: bytes)
    }

    /// Packs `B = srcᵀ`, `src` row-major `[n, k]` (keys `K[n, d_in]`, the embedding for the
    /// logits): each parameter token's row in groups of 32 features.
    public func packTransposed(_ src: [Float]) -> Packed {
        precondition(src.count == n * k)
        return assemble { kk, j in src[j * k + kk] }
    }

    /// Packs `B = src`, `src` row-major `[k, n]` (values `V[n_tokens, d_out]`): each output
    /// feature in groups of 32 parameter tokens.
    public func pack(_ src: [Float]) -> Packed {
        precondition(src.count == n * k)
        return assemble { kk, j in src[kk * n + j] }
    }
}
