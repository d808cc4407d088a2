/// Finding NaN and ±Inf in weights before they silently poison a forward pass (one NaN key makes
/// the naive logits NaN but the fused ones finite and wrong, since their reductions differ).
public enum NonFiniteScan {
    /// Floats per block: the vector pass keeps one running maximum per block, and only a block that
    /// has a non-finite value is looked at again, element by element, for its index.
    static let block = 1 << 14

    /// The index of the first NaN or ±Inf in `values`, or nil.
    ///
    /// With the sign bit cleared, a float's bits compare as unsigned integers in the order of its
    /// magnitude, and they are ≥ 0x7f80_0000 exactly for Inf and NaN; so the pass is an AND and an
    /// unsigned max per 16 lanes, with no branch, at memory bandwidth.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = values.baseAddress, !values.isEmpty else { return nil }
        let raw = UnsafeRawPointer(base)
        let lanes = SIMD16<UInt32>.scalarCount
        var start = 0
        while start < values.count {
            let end = min(start + block, values.count)
            var top = SIMD16<UInt32>(repeating: 0)
            var i = start
            while i + lanes <= end {
                // Unaligned: F32 tensors are mapped in place, at any offset of the file.
                top = pointwiseMax(top, raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<UInt32>.self) & 0x7fff_ffff)
                i &+= lanes
            }
            var found = top.max() >= 0x7f80_0000
            while i < end { found = found || !values[i].isFinite; i &+= 1 }
            if found { return (start..<end).first { !values[$0].isFinite } }
            start = end
        }
        return nil
    }
}

extension WeightFile {
    /// Throws for the first tensor (in file order) holding a NaN or ±Inf, naming it, the index
    /// (flat and per dimension) and the value.
    public func checkFinite(hint: String = "") throws {
        for tensor in tensors {
            guard let index = tensor.withFloats({ NonFiniteScan.firstNonFinite($0) }) else { continue }
            let value = tensor.withFloats { $0[index] }
            var rest = index
            var coordinates: [Int] = []
            for size in tensor.shape.reversed() where size > 0 {
                coordinates.append(rest % size)
                rest /= size
            }
            let at = tensor.shape.count > 1 ? " [\(coordinates.reversed().map(String.init).joined(separator: ", "))]" : ""
            throw WeightError(path: path, message: "tensor \(tensor.name) holds a non-finite value (\(value)) at index \(index)\(at)\(hint)")
        }
    }
}
