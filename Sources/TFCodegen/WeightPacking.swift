/// One entry point for packing a weight in any format (through `ProgramLayout.WeightEntry.materialise`,
/// for the JIT and the AOT weights-file writer alike): the slot's `PanelLayout` says the format,
/// `storedBytes` the size, `packStored` the bytes.
extension PanelLayout {
    /// Bytes one packed weight of this layout occupies: f32 and bf16 panels, or int8 panels with
    /// their group scales inside (`Int8PanelLayout`'s stored form).
    public var storedBytes: Int { format == .int8 ? Int8PanelLayout(self).storedBytes : byteCount }

    /// Packs `B = srcᵀ` (`transposed`, `src` row-major `[n, k]`: keys, the logits head) or `B = src`
    /// (`[k, n]`: values) into `dst`, which holds `storedBytes` bytes (64-byte aligned).
    public func packStored(_ src: UnsafePointer<Float>, transposed: Bool, into dst: UnsafeMutableRawPointer) {
        switch format {
        case .f32:
            let out = dst.assumingMemoryBound(to: Float.self)
            if transposed { packTransposed(src, into: out) } else { pack(src, into: out) }
        case .bf16:
            let out = dst.assumingMemoryBound(to: UInt16.self)
            if transposed { packTransposedBF16(src, into: out) } else { packBF16(src, into: out) }
        case .int8:
            let layout = Int8PanelLayout(self)
            let values = Array(UnsafeBufferPointer(start: src, count: n * k))
            (transposed ? layout.packTransposed(values) : layout.pack(values)).write(into: dst)
        }
    }
}

extension Int8PanelLayout {
    /// The int8 layout of a `PanelLayout` whose format is int8 (the geometry is the same).
    public init(_ geometry: PanelLayout) {
        precondition(geometry.format == .int8)
        self.init(k: geometry.k, n: geometry.n, nr: geometry.nr)
    }

    /// The stored form the kernels read: the panels, codes and scales interleaved per group.
    public var storedBytes: Int { roundUp(byteCount, 64) }
}

extension Int8PanelLayout.Packed {
    /// Writes the stored form (`Int8PanelLayout.storedBytes` bytes at `dst`).
    public func write(into dst: UnsafeMutableRawPointer) {
        dst.initializeMemory(as: UInt8.self, repeating: 0, count: layout.storedBytes)
        bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}
