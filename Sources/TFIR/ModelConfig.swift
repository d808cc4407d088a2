import TFSpec

/// The row-wise "modified softmax" Θ of a Pattention site (see docs/semantics in shared docs).
public enum PattentionNorm: String, CaseIterable, Sendable {
    case l2NormGelu = "l2_norm_gelu"
    case geluL2Norm = "gelu_l2_norm"
    case softmax = "softmax"
}

/// A model's hyper-parameters, evaluated from the spec's `model { ... }` fields.
public struct ModelConfig: Equatable, Sendable {
    public var name: String
    public var vocab: Int
    public var hidden: Int
    public var heads: Int
    public var layers: Int
    public var context: Int
    public var tieEmbeddings: Bool
    public var pattentionNorm: PattentionNorm
    public var normEps: Double
    public var finalNormAffine: Bool
    public var rotaryFraction: Double
    public var rotaryBase: Double
    /// Generation stops at this token when the spec names one.
    public var endToken: Int?
    /// The tokenizer.json the spec names, as written (relative to the spec file's directory).
    public var tokenizer: String?

    public init(name: String, vocab: Int, hidden: Int, heads: Int, layers: Int, context: Int,
                tieEmbeddings: Bool = true, pattentionNorm: PattentionNorm = .l2NormGelu, normEps: Double = 1e-5,
                finalNormAffine: Bool = false, rotaryFraction: Double = 0.25, rotaryBase: Double = 10000,
                endToken: Int? = nil) {
        self.name = name; self.vocab = vocab; self.hidden = hidden; self.heads = heads; self.layers = layers
        self.context = context; self.tieEmbeddings = tieEmbeddings; self.pattentionNorm = pattentionNorm
        self.normEps = normEps; self.finalNormAffine = finalNormAffine; self.rotaryFraction = rotaryFraction
        self.rotaryBase = rotaryBase; self.endToken = endToken
    }
}
