/// fp32 → bf16 conversion and bf16 panel packing.
///
/// A bf16 panel is k-pair interleaved: within panel p, for each k pair kp, the nr columns each
/// store [B[2kp, j], B[2kp+1, j]] as two bf16 (k padded to even with zeros). That is what
/// `vdpbf16ps` reads as one 32-bit lane, and on AVX2 the even/odd halves are split in registers
/// with `x << 16` and `x & 0xffff0000`, so one packed buffer serves both ISAs.
public enum BF16 {
    /// Round-to-nearest-even; NaN stays NaN (quiet bit set so truncation cannot make it Inf).
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let lsb = (bits >> 16) & 1
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ lsb) >> 16)
    }

    @inline(__always)
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Rounds every value of `src` into `dst` (a tensor stored as bf16: the embedding table).
    public static func round(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutablePointer<UInt16>) {
        for (i, x) in src.enumerated() { dst[i] = round(x) }
    }
}

extension PanelLayout {
    /// Packs bf16 panels of `B = srcᵀ` (`src` row-major `[n, k]`: keys, embeddings);
    /// `dst` must hold `count` 16-bit elements.
    public func packTransposedBF16(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<UInt16>) {
        precondition(format == .bf16)
        packBF16(into: dst) { kk, j in src[j * k + kk] }
    }

    /// Packs bf16 panels of `B = src` (`src` row-major `[k, n]`: Pattention values).
    public func packBF16(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<UInt16>) {
        precondition(format == .bf16)
        packBF16(into: dst) { kk, j in src[kk * n + j] }
    }

    private func packBF16(into dst: UnsafeMutablePointer<UInt16>, _ b: (Int, Int) -> Float) {
        let kp = paddedK
        for p in 0..<panels {
            let base = dst + p * nr * kp
            for pair in 0..<(kp / 2) {
                for c in 0..<nr {
                    let j = p * nr + c
                    let out = base + (pair * nr + c) * 2
                    for h in 0..<2 {
                        let kk = 2 * pair + h
                        out[h] = (j < n && kk < k) ? BF16.round(b(kk, j)) : 0
                    }
                }
            }
        }
    }

    /// The bf16 value of logical `B[kk, j]` in a bf16 packed buffer (tests, debugging).
    public func elementBF16(_ packed: UnsafePointer<UInt16>, _ kk: Int, _ j: Int) -> Float {
        let c = j % nr
        return BF16.float(packed[(j / nr) * nr * paddedK + ((kk / 2) * nr + c) * 2 + kk % 2])
    }
}
