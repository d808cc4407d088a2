/// The IR's operations. The set is deliberately small: the spec language's ops plus the model's
/// fixed prologue (token ids, embedding) and epilogue (final norm, logits). Fusion passes add the
/// fused forms below; both backends run every op.
public enum Op: Equatable, Sendable {
    /// The graph input: token ids `[T]`.
    case tokens
    /// `table[tokens]` → `[T, D]`.
    case embedding(table: String)
    /// Row-wise LayerNorm over the last axis, biased variance; non-parametric unless `affine` names
    /// the weight and bias tensors.
    case layerNorm(LayerNormOp)
    /// `Θ(X·Kᵀ)·V` with learnable parameter tokens K, V.
    case pattention(PattentionOp)
    /// GPT-NeoX rotate-half rotary embedding of each head's first `rotaryDims` dims, at absolute positions.
    case rotary(RotaryOp)
    /// Multi-head scaled-dot-product attention over a KV cache (operands q, k, v).
    case attention(AttentionOp)
    /// Elementwise sum of two activations of the same width (the residual add).
    case add
    /// `x · tableᵀ` → `[T, vocab]`.
    case logits(table: String)
    /// A zero-copy view of columns `start ..< start + count` of its operand.
    case columns(start: Int, count: Int)

    // MARK: fused forms (introduced by TFPasses)

    /// One kernel: optional LayerNorm prologue on the input, one or more Pattention sites reading that
    /// input (horizontal fusion, outputs side by side in columns), optional rotary epilogue per site,
    /// optional residual epilogue (`operands[1] + result`, written in place).
    case fusedPattention(FusedPattentionOp)

    public var name: String {
        switch self {
        case .tokens: return "tokens"
        case .embedding: return "embedding"
        case .layerNorm: return "layernorm"
        case .pattention: return "pattention"
        case .rotary: return "rotary"
        case .attention: return "attention"
        case .add: return "add"
        case .logits: return "logits"
        case .columns: return "columns"
        case .fusedPattention: return "fused_pattention"
        }
    }
}

public struct LayerNormOp: Equatable, Sendable {
    public var eps: Double
    /// Names of the weight and bias tensors of an affine LayerNorm; nil for the non-parametric one.
    public var affine: (weight: String, bias: String)?

    public init(eps: Double, affine: (weight: String, bias: String)? = nil) {
        self.eps = eps
        self.affine = affine
    }

    public static func == (a: LayerNormOp, b: LayerNormOp) -> Bool {
        a.eps == b.eps && a.affine?.weight == b.affine?.weight && a.affine?.bias == b.affine?.bias
    }
}

/// One Pattention site in one layer.
public struct PattentionOp: Equatable, Sendable {
    /// The site's name in the spec (`attention.query`, `mlp`).
    public var site: String
    /// The layer this instance belongs to (weights are per layer).
    public var layer: Int
    /// Number of key/value parameter tokens `n`.
    public var tokens: Int
    public var inFeatures: Int
    public var outFeatures: Int
    public var norm: PattentionNorm
    /// A pinned τ; nil means τ = sqrt(tokens) (the reference behaviour).
    public var scale: Double?

    public init(site: String, layer: Int, tokens: Int, inFeatures: Int, outFeatures: Int, norm: PattentionNorm, scale: Double?) {
        self.site = site; self.layer = layer; self.tokens = tokens
        self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.norm = norm; self.scale = scale
    }

    /// The τ actually applied.
    public var tau: Double { scale ?? Double(tokens).squareRoot() }
    /// Weight-name prefix: `layers.{i}.{site}`.
    public var prefix: String { "layers.\(layer).\(site)" }
    public var keyName: String { "\(prefix).key_param_tokens" }
    public var valueName: String { "\(prefix).value_param_tokens" }
}

public struct RotaryOp: Equatable, Sendable {
    public var heads: Int
    public var headDim: Int
    /// `int(headDim · rotary_fraction)`, even; the rest of each head passes through.
    public var rotaryDims: Int
    public var base: Double

    public init(heads: Int, headDim: Int, rotaryDims: Int, base: Double) {
        self.heads = heads; self.headDim = headDim; self.rotaryDims = rotaryDims; self.base = base
    }
}

public struct AttentionOp: Equatable, Sendable {
    public var heads: Int
    public var headDim: Int
    public var causal: Bool
    /// Which KV cache this attention reads and appends to (one per attention op in the graph).
    public var cacheSlot: Int

    public init(heads: Int, headDim: Int, causal: Bool, cacheSlot: Int) {
        self.heads = heads; self.headDim = headDim; self.causal = causal; self.cacheSlot = cacheSlot
    }
}

public struct FusedPattentionOp: Equatable, Sendable {
    /// LayerNorm applied to each input row as it is read (the normalised rows are not stored).
    public var prologue: LayerNormOp?
    /// The sites, all reading the same input; their outputs are laid side by side in columns.
    public var sites: [PattentionOp]
    /// Per site: a rotary epilogue on its output, or nil.
    public var rotary: [RotaryOp?]
    /// Add the result into operand 1 (the residual stream) instead of writing a fresh buffer.
    public var residual: Bool

    public init(prologue: LayerNormOp?, sites: [PattentionOp], rotary: [RotaryOp?], residual: Bool) {
        self.prologue = prologue; self.sites = sites; self.rotary = rotary; self.residual = residual
    }

    public var outFeatures: Int { sites.reduce(0) { $0 + $1.outFeatures } }
}
