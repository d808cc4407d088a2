import CLLVM

/// How the attention kernel's KV cache stores keys and values (`--kv`).
///
/// bf16 halves the bytes decode reads per position (the cache, not the weights, dominates
/// decode traffic at long contexts with int8 weights). Rows are rounded to bf16 once, as they
/// are appended (round-to-nearest-even, exactly `BF16.round`); the kernel widens them back to
/// fp32 (`x << 16`) as it reads them, so the attention arithmetic stays fp32 and one code path
/// serves AVX2 and AVX-512 (no AVX512_BF16 instruction is needed).
public enum KVCacheFormat: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case f32, bf16

    /// Bytes of one cached key or value element.
    public var bytes: Int { self == .f32 ? 4 : 2 }

    public var description: String { rawValue }

    /// The values `--kv` accepts.
    public static var optionValues: [String] { allCases.map(\.rawValue) }

    /// Parses one `--kv` value; an unknown one is refused with a one-line reason.
    public static func parse(_ name: String, option: String = "--kv") throws -> KVCacheFormat {
        guard let format = KVCacheFormat(rawValue: name) else {
            throw CodegenError("\(option): unknown KV-cache format '\(name)'; use \(optionValues.joined(separator: " or "))")
        }
        return format
    }

    /// Parses a comma-separated list for `bench model` (`all` = both); a repeated value is refused.
    public static func parseList(_ list: String, option: String = "--kv") throws -> [KVCacheFormat] {
        if list == "all" { return allCases }
        let names = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !names.contains(where: \.isEmpty) else {
            throw CodegenError("\(option): empty format in '\(list)'; use a comma-separated list of \(optionValues.joined(separator: ", ")) or all")
        }
        let formats = try names.map { try parse($0, option: option) }
        if Set(formats).count < formats.count { throw CodegenError("\(option): a format is listed twice in '\(list)'") }
        return formats
    }
}

/// IR for reading and writing cache elements in either format. Offsets count elements (the
/// cache pointer is `float*` for f32, `i16*` for bf16: see `cachePointer`).
extension IRGen {
    /// The cache argument as a pointer to its elements.
    func cachePointer(_ p: LLVMValueRef, _ format: KVCacheFormat) -> LLVMValueRef {
        format == .f32 ? p : bitcast(p, pi16)
    }

    /// Stores the fp32 scalar `x` as element `offset` of a cache.
    func storeCacheElement(_ x: LLVMValueRef, _ p: LLVMValueRef, _ offset: LLVMValueRef, _ format: KVCacheFormat) {
        switch format {
        case .f32: storeF(x, p, offset)
        case .bf16: store(roundToBF16Scalar(x), gep(p, offset), align: 2)
        }
    }

    /// `width` consecutive cache elements from `offset`, as fp32 lanes.
    func loadCacheVector(_ p: LLVMValueRef, _ offset: LLVMValueRef, _ format: KVCacheFormat) -> LLVMValueRef {
        switch format {
        case .f32: return loadV(p, offset)
        case .bf16: return loadBF16Vector(p, offset)
        }
    }

    /// Like `loadCacheVector`, but lanes outside `mask` read as 0 and touch no memory (a
    /// value row's tail: the next row, or the end of the cache, may follow).
    func maskedLoadCacheVector(_ p: LLVMValueRef, _ offset: LLVMValueRef, _ mask: LLVMValueRef, _ format: KVCacheFormat) -> LLVMValueRef {
        switch format {
        case .f32: return maskedLoadV(p, offset, mask)
        case .bf16:
            let vi16 = LLVMVectorType(i16, UInt32(width))!, pvi16 = LLVMPointerType(vi16, 0)!
            let f = declare("llvm.masked.load.v\(width)i16.p0v\(width)i16", vi16, [pvi16, i32, vi1, vi16])
            return widenBF16(call(f, [bitcast(gep(p, offset), pvi16), i32(2), mask, LLVMConstNull(vi16)]))
        }
    }

    /// An fp32 scalar rounded to bf16 bits (`i16`) exactly as `BF16.round` does on the host:
    /// nearest-even by integer arithmetic (any ISA), NaN kept NaN with the quiet bit set.
    func roundToBF16Scalar(_ x: LLVMValueRef) -> LLVMValueRef {
        let bits = bitcast(x, i32)
        let lsb = LLVMBuildAnd(builder, LLVMBuildLShr(builder, bits, i32(16), "")!, i32(1), "")!
        let rounded = LLVMBuildLShr(builder, add(add(bits, i32(0x7fff)), lsb), i32(16), "")!
        let nan = LLVMBuildOr(builder, LLVMBuildLShr(builder, bits, i32(16), "")!, i32(0x0040), "")!
        let isNaN = fcmp(LLVMRealUNO, x, x)
        return LLVMBuildTrunc(builder, select(isNaN, nan, rounded), i16, "")!
    }
}
