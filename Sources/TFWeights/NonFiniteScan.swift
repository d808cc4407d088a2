/// Finding NaN, ±Inf and overflowing magnitudes in weights before they silently poison a forward
/// pass: one NaN key makes the naive logits NaN but the fused ones finite and wrong, and a finite
/// 3e38 makes a float32 LayerNorm's variance infinite (the fused backend then normalises the row
/// to zeros, the naive one, accumulating in double, does not).
public enum NonFiniteScan {
    /// Floats per block: the vector pass keeps one running maximum per block, and only a block that
    /// has a value out of range is looked at again, element by element, for its index.
    static let block = 1 << 14

    /// The largest magnitude the backends compute with safely: LayerNorm and the Pattention row
    /// norms square values, and a square of 2^64 or more is not finite in float32.
    public static let largestSafe: Float = 0x1p64

    /// The index of the first value of `values` that is NaN, ±Inf or at least `limit` in
    /// magnitude, or nil.
    ///
    /// With the sign bit cleared, a float's bits compare as unsigned integers in the order of its
    /// magnitude (NaN above Inf), and adding `2^31 - bits(limit)` to them sets bit 31 exactly for
    /// those at or above the limit. So the pass is an AND, an ADD and an OR per lane (SSE2 has all
    /// three, unlike an unsigned max), with no branch and no compare, at memory bandwidth.
    public static func firstBeyond(_ limit: Float, in values: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = values.baseAddress, !values.isEmpty else { return nil }
        let raw = UnsafeRawPointer(base)
        let bound = limit.magnitude.bitPattern
        let addend = SIMD16<UInt32>(repeating: 0x8000_0000 &- bound)
        func out(_ i: Int) -> Bool { values[i].bitPattern & 0x7fff_ffff >= bound }
        let lanes = SIMD16<UInt32>.scalarCount
        var start = 0
        while start < values.count {
            let end = min(start + block, values.count)
            var flags = SIMD16<UInt32>(repeating: 0)
            var i = start
            while i + lanes <= end {
                // Unaligned: F32 tensors are mapped in place, at any offset of the file.
                flags |= (raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<UInt32>.self) & 0x7fff_ffff) &+ addend
                i &+= lanes
            }
            var found = (flags & 0x8000_0000) != SIMD16<UInt32>(repeating: 0)
            while i < end { found = found || out(i); i &+= 1 }
            if found { return (start..<end).first(where: out) }
            start = end
        }
        return nil
    }

    /// The index of the first NaN or ±Inf, or nil.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        firstBeyond(.infinity, in: values)
    }
}

extension WeightFile {
    /// Throws for the first tensor (in file order) holding a NaN, ±Inf or a magnitude of 2^64 or
    /// more, naming it, the index (flat and per dimension) and the value; `hint` ends the message.
    public func checkFinite(hint: String = "") throws {
        for tensor in tensors {
            guard let index = tensor.withFloats({ NonFiniteScan.firstBeyond(NonFiniteScan.largestSafe, in: $0) }) else { continue }
            let value = tensor.withFloats { $0[index] }
            var rest = index
            var coordinates: [Int] = []
            for size in tensor.shape.reversed() where size > 0 {
                coordinates.append(rest % size)
                rest /= size
            }
            let at = "at index \(index)" + (tensor.shape.count > 1 ? " [\(coordinates.reversed().map(String.init).joined(separator: ", "))]" : "")
            let what = value.isFinite
                ? "a value too large for float32 arithmetic (\(value) \(at); its square overflows, the limit is ±2^64)"
                : "a non-finite value (\(value)) \(at)"
            throw WeightError(path: path, message: "tensor \(tensor.name) holds \(what)\(hint)")
        }
    }
}
