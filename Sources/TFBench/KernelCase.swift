import TFCodegen
import TFIR
import TFWeights

/// The kernel classes `tfc bench kernels` measures.
public enum KernelClass: String, CaseIterable, Sendable {
    /// One Pattention site: X·Kᵀ, Θ, ·V.
    case pattention
    /// A Pattention site's score GEMM `X·Kᵀ` alone: the generated GEMM against OpenBLAS `sgemm`.
    case gemm
    /// LayerNorm prologue + the query, key and value sites side by side + rotary on q and k.
    case fusedQKV = "fused_qkv"
    /// Causal multi-head attention over a KV cache.
    case attention
    /// Row-wise LayerNorm.
    case layerNorm = "layernorm"
    /// x · embedᵀ.
    case logits
}

/// Prefill runs many rows at once; decode runs one row against what is cached.
public enum Phase: String, Sendable { case prefill, decode }

/// What limits a kernel, and so what its figure is a percentage of: the sgemm peak (GFLOP/s) or
/// the memory bandwidth (GB/s).
public enum Bound: String, Sendable { case compute, bandwidth }

/// One kernel at one shape: what both sides compute, described by the IR op the fused backend
/// compiles, plus the work it does.
public struct KernelCase: Sendable {
    /// Short name, e.g. "pattention mlp", "attention L=512".
    public var name: String
    public var kernelClass: KernelClass
    public var phase: Phase
    /// Human-readable shape, e.g. "T=128 768→3072 n=3072".
    public var shape: String
    /// The IR op: `.fusedPattention` (single sites too), `.attention`, `.layerNorm` or `.logits`.
    public var op: Op
    /// Rows (tokens) the kernel processes.
    public var rows: Int
    /// Absolute position of the first row: tokens already in the KV cache (attention), and the
    /// rotary position (fused q/k/v).
    public var position: Int
    /// The weight tensors the op reads, under their checkpoint names.
    public var weights: [TensorSpec]
    /// Floating-point operations (a multiply-add is 2), matrix products and attention only as in
    /// `Graph.flopsPerToken`; nil for kernels without products (LayerNorm).
    public var flops: Double?
    /// Bytes the kernel must move at least: its inputs, weights, KV cache and output, once.
    public var bytes: Double
    public var bound: Bound
    /// How the fused side stores the matrix weights (Pattention keys and values, the logits
    /// table); `bytes` counts them at this format's size. The naive side always computes in f32.
    public var weightFormat: WeightFormat = .f32

    public init(name: String, kernelClass: KernelClass, phase: Phase, shape: String, op: Op, rows: Int, position: Int,
                weights: [TensorSpec], flops: Double?, bytes: Double, bound: Bound, inputWidths: [Int], outputWidth: Int) {
        self.name = name; self.kernelClass = kernelClass; self.phase = phase; self.shape = shape; self.op = op
        self.rows = rows; self.position = position; self.weights = weights; self.flops = flops; self.bytes = bytes
        self.bound = bound; self.inputWidths = inputWidths; self.outputWidth = outputWidth
    }

    /// Identifies the case across runs (`--compare`).
    public var key: String { "\(name) | \(phase.rawValue) | \(shape)" + (weightFormat == .f32 ? "" : " | \(weightFormat)") }

    /// The kernel classes whose weights the fused side can store in another format.
    public var hasFormattedWeights: Bool { [.pattention, .gemm, .fusedQKV, .logits].contains(kernelClass) }

    /// The same case with the fused side's matrix weights stored as `format`: its minimum traffic
    /// counts each weight at the format's size (f32 4 bytes, bf16 2, int8 1 plus a 2-byte scale
    /// per group of `Int8Quantization.groupDepth` along the product's depth, per column); vectors
    /// stay f32.
    public func stored(as format: WeightFormat) -> KernelCase {
        var c = self
        c.weightFormat = format
        c.bytes = bytes - 4 * Double(matrixWeights.reduce(0) { $0 + $1.spec.count })
            + matrixWeights.reduce(0.0) { $0 + Self.storedBytes($1.spec, depth: $1.depth, format) }
        return c
    }

    /// The matrix weights with the depth of the product that reads them: a Pattention site's
    /// values `[n, d_out]` are `B` as they are (depth n), keys `[n, d_in]` and the logits table
    /// `[vocab, d]` are `Bᵀ` (depth their row length).
    private var matrixWeights: [(spec: TensorSpec, depth: Int)] {
        var values: Set<String> = []
        if case .fusedPattention(let f) = op { values = Set(f.sites.map(\.valueName)) }
        return weights.filter { $0.shape.count == 2 }.map { ($0, values.contains($0.name) ? $0.shape[0] : $0.shape[1]) }
    }

    /// Bytes one matrix weight takes in `format`.
    static func storedBytes(_ w: TensorSpec, depth: Int, _ format: WeightFormat) -> Double {
        Double(format.storedBytes(weights: w.count, depth: depth))
    }

    /// Widths of the op's operands, each `[rows, width]` row-major (fused Pattention: the input,
    /// plus the residual stream when it has a residual epilogue; attention: q, k, v; LayerNorm and
    /// logits: x).
    public var inputWidths: [Int]
    /// Width of the output `[rows, width]`.
    public var outputWidth: Int

    /// Width of each KV cache row (attention only); the caches hold `position + rows` rows.
    public var cacheWidth: Int? {
        if case .attention(let a) = op { return a.width }
        return nil
    }
}

extension AttentionOp {
    var width: Int { heads * headDim }
}
