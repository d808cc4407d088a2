/// One table of GEMM micro-kernels keyed by (weight format, activation format, ISA), in the
/// manner of ggml's per-type traits; `--emit plan` prints `MicroKernelKind.name` for each GEMM.
/// `GemmEmitter.microKernel` emits each kind (`GemmShape.kernel`); the bf16 kinds read the
/// k-pair panels of `BF16Packing.swift` with the helpers of `BF16Emission.swift`.
public enum MicroKernelKind: String, Hashable, Sendable {
    /// fp32 weights, fp32 activations, `vfmadd231ps`.
    case f32FMA = "f32-fma"
    /// bf16 weights widened to fp32 in registers (`x << 16` for even k, `x & 0xffff0000` for odd
    /// k of a pair), fp32 FMA: AVX2 and AVX-512 without BF16.
    case bf16WidenFMA = "bf16-widen-fma"
    /// bf16 weights and bf16-rounded activations (a k pair broadcast as one 32-bit lane),
    /// `vdpbf16ps` with fp32 accumulation: AVX512_BF16.
    case bf16DotBF16 = "bf16-vdpbf16ps"
    /// int8 weights and per-row int8 activations, int32 sums by `vpmaddubsw` + `vpmaddwd`
    /// (`Int8GemmKernel.swift`): AVX2, and AVX-512 without VNNI.
    case int8Pairs = "int8-maddubs"
    /// int8 weights and activations, `vpdpbusd` (AVX512_VNNI).
    case int8VNNI = "int8-vpdpbusd"

    public var name: String { rawValue }

    /// The format of the weight panels this kernel reads.
    public var weights: WeightFormat {
        switch self {
        case .f32FMA: return .f32
        case .bf16WidenFMA, .bf16DotBF16: return .bf16
        case .int8Pairs, .int8VNNI: return .int8
        }
    }
    /// The format activations are packed into for it (bf16 pairs for `vdpbf16ps`, int8 codes).
    public var activations: ElementFormat {
        switch self {
        case .f32FMA, .bf16WidenFMA: return .f32
        case .bf16DotBF16: return .bf16
        case .int8Pairs, .int8VNNI: return .i8
        }
    }
}

public struct GemmKernelTraits: Hashable, Sendable {
    public let weights: WeightFormat
    /// The element type activations are packed into for the A tile.
    public let activations: ElementFormat
    public let isa: VectorTarget.ISA
    /// Extra CPU feature (LLVM name) beyond the ISA's own, e.g. `avx512bf16`.
    public let extraFeature: String?
    public let kernel: MicroKernelKind
}

public enum MicroKernelTable {
    /// Every micro-kernel. A new weight format adds its rows here.
    public static let entries: [GemmKernelTraits] = [
        GemmKernelTraits(weights: .f32, activations: .f32, isa: .avx2, extraFeature: nil, kernel: .f32FMA),
        GemmKernelTraits(weights: .f32, activations: .f32, isa: .avx512, extraFeature: nil, kernel: .f32FMA),
        GemmKernelTraits(weights: .bf16, activations: .f32, isa: .avx2, extraFeature: nil, kernel: .bf16WidenFMA),
        GemmKernelTraits(weights: .bf16, activations: .f32, isa: .avx512, extraFeature: nil, kernel: .bf16WidenFMA),
        GemmKernelTraits(weights: .bf16, activations: .bf16, isa: .avx512, extraFeature: "avx512bf16", kernel: .bf16DotBF16),
        GemmKernelTraits(weights: .int8, activations: .i8, isa: .avx2, extraFeature: nil, kernel: .int8Pairs),
        GemmKernelTraits(weights: .int8, activations: .i8, isa: .avx512, extraFeature: nil, kernel: .int8Pairs),
        GemmKernelTraits(weights: .int8, activations: .i8, isa: .avx512, extraFeature: "avx512vnni", kernel: .int8VNNI),
    ]

    /// The best kernel for `weights` on `isa` given the CPU features `has` reports: rows with an
    /// extra feature the CPU has win over the plain ones. Refuses a format with no row for the ISA.
    public static func lookup(weights: WeightFormat, isa: VectorTarget.ISA, has: (String) -> Bool) throws -> GemmKernelTraits {
        let rows = entries.filter { $0.weights == weights && $0.isa == isa && ($0.extraFeature.map(has) ?? true) }
        if let special = rows.first(where: { $0.extraFeature != nil }) { return special }
        if let plain = rows.first { return plain }
        throw CodegenError("--weights-format \(weights): no micro-kernel for \(isa.rawValue)")
    }
}
