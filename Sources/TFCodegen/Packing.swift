#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The layout generated GEMMs read a weight operand in ("packed panels"): the logical
/// `[k, n]` right-hand matrix B is cut into `ceil(n / nr)` panels of `nr` columns; panel `p`
/// stores, for each `kk` in `0..<k`, the `nr` floats `B[kk, p·nr ..< p·nr + nr]` contiguously
/// (columns past `n` are zero). A micro-kernel then reads one panel as a single stream.
///
/// Weights are packed once, at load time: Pattention keys `K[n, d_in]` (B = Kᵀ, use
/// `packTransposed`), Pattention values `V[n, d_out]` (B = V, use `pack`), the embedding for
/// the logits (B = embedᵀ, `packTransposed`).
public struct PanelLayout: Hashable, CustomStringConvertible, Sendable {
    /// Depth (rows of B).
    public let k: Int
    /// Columns of B (valid ones; the last panel is zero-padded to `nr`).
    public let n: Int
    /// Panel width.
    public let nr: Int
    /// Stored element format (bf16 panels are k-pair interleaved: `BF16Packing.swift`).
    public let format: WeightFormat

    public init(k: Int, n: Int, nr: Int, format: WeightFormat = .f32) {
        precondition(k > 0 && n > 0 && nr > 0 && nr % 8 == 0, "bad panel layout k=\(k) n=\(n) nr=\(nr)")
        self.k = k
        self.n = n
        self.nr = nr
        self.format = format
    }

    public var panels: Int { (n + nr - 1) / nr }
    /// Depth rounded up to the format's k group (pairs for bf16, quads for int8).
    public var paddedK: Int { (k + format.storage.kGroup - 1) / format.storage.kGroup * format.storage.kGroup }
    /// Elements in the packed buffer (of `format`; k padded to the format's k group).
    public var count: Int { panels * nr * paddedK }
    public var bytesPerElement: Int { format.storage.bytes }
    public var byteCount: Int { count * bytesPerElement }
    public var description: String { format == .f32 ? "panels(k=\(k), n=\(n), nr=\(nr))" : "panels(k=\(k), n=\(n), nr=\(nr), \(format))" }

    /// Packs `B = srcᵀ` where `src` is row-major `[n, k]` (row j of src is column j of B):
    /// keys and embeddings. `dst` must hold `count` floats.
    public func packTransposed(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<panels {
            let base = dst + p * nr * k
            let cols = min(nr, n - p * nr)
            if cols < nr { base.initialize(repeating: 0, count: nr * k) }
            // Blocks of 8 source rows × 8 depths transposed in registers (8 loads, 8 stores of
            // 8 floats: twice as fast as the strided scalar copy on mid's keys), the rest as that copy.
            let blocked = k % 8 == 0 ? cols / 8 * 8 : 0
            for j in stride(from: 0, to: blocked, by: 8) {
                let rows = src + (p * nr + j) * k
                for kk in stride(from: 0, to: k, by: 8) {
                    Self.transpose8(rows + kk, rowStride: k, into: base + kk * nr + j, rowStride: nr)
                }
            }
            for j in blocked..<cols {
                let row = src + (p * nr + j) * k
                var out = base + j
                for kk in 0..<k {
                    out.pointee = row[kk]
                    out += nr
                }
            }
        }
    }

    /// `dst[c·dstStride + r] = src[r·srcStride + c]` for r, c < 8: three unzips (evens, then odds,
    /// of the 64 floats) rotate the index bits by three, which is the transpose of an 8 × 8 block.
    @inline(__always)
    static func transpose8(_ src: UnsafePointer<Float>, rowStride srcStride: Int, into dst: UnsafeMutablePointer<Float>, rowStride dstStride: Int) {
        typealias Rows = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
        func row(_ r: Int) -> SIMD8<Float> { UnsafeRawPointer(src + r * srcStride).loadUnaligned(as: SIMD8<Float>.self) }
        func unzip(_ v: Rows) -> Rows {
            let a = SIMD16(lowHalf: v.0, highHalf: v.1), b = SIMD16(lowHalf: v.2, highHalf: v.3)
            let c = SIMD16(lowHalf: v.4, highHalf: v.5), d = SIMD16(lowHalf: v.6, highHalf: v.7)
            return (a.evenHalf, b.evenHalf, c.evenHalf, d.evenHalf, a.oddHalf, b.oddHalf, c.oddHalf, d.oddHalf)
        }
        let t = unzip(unzip(unzip((row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)))))
        func store(_ v: SIMD8<Float>, _ r: Int) { UnsafeMutableRawPointer(dst + r * dstStride).storeBytes(of: v, as: SIMD8<Float>.self) }
        store(t.0, 0); store(t.1, 1); store(t.2, 2); store(t.3, 3); store(t.4, 4); store(t.5, 5); store(t.6, 6); store(t.7, 7)
    }

    /// Packs `B = src` where `src` is row-major `[k, n]`: Pattention values.
    /// `dst` must hold `count` floats.
    public func pack(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<panels {
            let base = dst + p * nr * k
            let cols = min(nr, n - p * nr)
            for kk in 0..<k {
                let out = base + kk * nr
                (out).update(from: src + kk * n + p * nr, count: cols)
                if cols < nr { (out + cols).update(repeating: 0, count: nr - cols) }
            }
        }
    }

    /// The value of logical `B[kk, j]` in a packed buffer (for tests and debugging).
    public func element(_ packed: UnsafePointer<Float>, _ kk: Int, _ j: Int) -> Float {
        packed[(j / nr) * nr * k + kk * nr + j % nr]
    }
}

/// Transparent huge pages for large buffers: 2 MiB pages mean 512 times fewer page faults when
/// fresh memory is first written, and fewer TLB misses when it is streamed.
public enum HugePages {
    static let size = 2 << 20

    /// Advises the whole 2 MiB pages inside `bytes` bytes at `raw` to be huge (`MADV_HUGEPAGE`;
    /// the kernel's THP mode "madvise" uses them only where asked). A hint: ignored elsewhere.
    public static func advise(_ raw: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        let start = (Int(bitPattern: raw) + size - 1) & ~(size - 1), end = (Int(bitPattern: raw) + bytes) & ~(size - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, 14 /* MADV_HUGEPAGE */) }
        #endif
    }
}

/// A 64-byte aligned float buffer (packed weights, test inputs). Freed on deinit.
public final class AlignedBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Buffers of 4 MiB or more are 2 MiB aligned and advised to use transparent huge pages
    /// (`MADV_HUGEPAGE`): streaming packed weights then costs far fewer TLB misses.
    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let huge = 2 << 20
        let large = count * 4 >= 4 << 20
        let bytes = large ? (count * 4 + huge - 1) & ~(huge - 1) : max(64, (count * 4 + 63) & ~63)
        guard posix_memalign(&raw, large ? huge : 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(bytes) bytes") }
        if large { HugePages.advise(raw, bytes: bytes) }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 16))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(pointer) }

    public var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}

extension PanelLayout {
    /// A new aligned buffer holding `packTransposed(src)`; `src` is `[n, k]` row-major.
    public func packedTransposed(_ src: UnsafePointer<Float>) -> AlignedBuffer {
        let b = AlignedBuffer(count: count, zeroed: false)
        packTransposed(src, into: b.pointer)
        return b
    }
    /// A new aligned buffer holding `pack(src)`; `src` is `[k, n]` row-major.
    public func packed(_ src: UnsafePointer<Float>) -> AlignedBuffer {
        let b = AlignedBuffer(count: count, zeroed: false)
        pack(src, into: b.pointer)
        return b
    }
    public func packedTransposed(_ src: [Float]) -> AlignedBuffer {
        precondition(src.count == n * k)
        return src.withUnsafeBufferPointer { packedTransposed($0.baseAddress!) }
    }
    public func packed(_ src: [Float]) -> AlignedBuffer {
        precondition(src.count == n * k)
        return src.withUnsafeBufferPointer { packed($0.baseAddress!) }
    }
}
