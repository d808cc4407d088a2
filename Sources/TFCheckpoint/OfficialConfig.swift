import Foundation
import TFIR

/// The hyper-parameters of a model of the official (GPT-NeoX based) TokenFormer code, read from
/// its `config.json` or the trainer's YAML, and written back by `tfc export`.
public struct OfficialConfig: Equatable, Sendable {
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var qkvTokens: Int
    public var projTokens: Int
    public var ffnTokens: Int
    public var context: Int
    public var rotary: Bool = true
    /// Absent keys take GPT-NeoX's defaults: rotary_pct 1.0, rotary_emb_base 10000, eps 1e-5.
    public var rotaryFraction: Double = 1.0
    public var rotaryBase: Double = 10000
    public var tieEmbeddings: Bool = true
    public var finalNormAffine: Bool = true
    /// `gpt_j_residual`: attention and MLP read the same normalised input.
    public var parallelBlock: Bool = false
    public var pattentionNorm: PattentionNorm = .l2NormGelu
    public var normEps: Double = 1e-5

    public init(layers: Int, hidden: Int, heads: Int, qkvTokens: Int, projTokens: Int, ffnTokens: Int, context: Int) {
        self.layers = layers; self.hidden = hidden; self.heads = heads
        self.qkvTokens = qkvTokens; self.projTokens = projTokens; self.ffnTokens = ffnTokens; self.context = context
    }

    /// Reads the keys tfc can express; a key whose value it cannot express is an error that names
    /// both. `path` names the config in errors. Keys use `_` or `-` (the trainer's YAML allows both).
    public init(keys raw: [String: Any], path: String) throws {
        var keys: [String: Any] = [:]
        for (k, v) in raw { keys[k.replacingOccurrences(of: "-", with: "_")] = v }
        func fail(_ message: String) -> CheckpointError { CheckpointError(path: path, message) }
        func show(_ value: Any) -> String { value is String ? "\"\(value)\"" : "\(value)" }
        func integer(_ key: String, required: Bool = true) throws -> Int? {
            guard let value = keys[key] else {
                if required { throw fail("the config has no '\(key)'") }
                return nil
            }
            if let i = value as? Int, !(value is Bool), i >= 1 { return i }
            if let d = value as? Double, d == d.rounded(), d >= 1, d < 1e12 { return Int(d) }
            throw fail("'\(key)' = \(show(value)) must be a positive integer")
        }
        func number(_ key: String, default value: Double) throws -> Double {
            guard let raw = keys[key] else { return value }
            if let d = raw as? Double, d.isFinite, !(raw is Bool) { return d }
            if let i = raw as? Int, !(raw is Bool) { return Double(i) }
            if let s = raw as? String, let d = Double(s), d.isFinite { return d }
            throw fail("'\(key)' = \(show(raw)) must be a number")
        }
        func boolean(_ key: String, default value: Bool) throws -> Bool {
            guard let raw = keys[key] else { return value }
            if let b = raw as? Bool { return b }
            if let s = raw as? String, s == "true" || s == "false" { return s == "true" }
            throw fail("'\(key)' = \(show(raw)) must be true or false")
        }
        func string(_ key: String, default value: String?) throws -> String? {
            guard let raw = keys[key] else { return value }
            if raw is NSNull { return value }
            guard let s = raw as? String else { throw fail("'\(key)' = \(show(raw)) must be a string") }
            return s
        }

        self.init(layers: try integer("num_layers")!, hidden: try integer("hidden_size")!, heads: try integer("num_attention_heads")!,
                  qkvTokens: try integer("qkv_slot_num")!, projTokens: try integer("proj_slot_num")!, ffnTokens: try integer("ffn_slot_num")!,
                  context: try integer("max_position_embeddings", required: false) ?? integer("seq_length")!)
        if hidden % heads != 0 { throw fail("'hidden_size' = \(hidden) is not divisible by 'num_attention_heads' = \(heads)") }
        if let kv = try integer("num_kv_heads", required: false), kv != heads {
            throw fail("'num_kv_heads' = \(kv) is not supported: tfc attention has as many key/value heads as query heads (\(heads))")
        }

        let pos = try string("pos_emb", default: "learned")!
        switch pos {
        case "rotary": rotary = true
        case "none": rotary = false
        default: throw fail("'pos_emb' = \"\(pos)\" is not supported: tfc models use rotary position embeddings (or none)")
        }
        rotaryFraction = try number("rotary_pct", default: 1.0)
        if !(0...1).contains(rotaryFraction) { throw fail("'rotary_pct' = \(rotaryFraction) must be between 0 and 1") }
        rotaryBase = try number("rotary_emb_base", default: 10000)
        if !(rotaryBase > 0) { throw fail("'rotary_emb_base' = \(rotaryBase) must be positive") }
        normEps = try number("layernorm_epsilon", default: 1e-5)
        if !(normEps > 0) { throw fail("'layernorm_epsilon' = \(normEps) must be positive") }
        tieEmbeddings = !(try boolean("no_weight_tying", default: false))
        parallelBlock = try boolean("gpt_j_residual", default: false)

        let norm = try string("norm", default: "layernorm")!
        if norm != "layernorm_nonparam" {
            throw fail("'norm' = \"\(norm)\" is not supported: the blocks' LayerNorm must be non-parametric (\"layernorm_nonparam\")")
        }
        let finalNorm = try string("final_norm", default: "layernorm")!
        switch finalNorm {
        case "layernorm": finalNormAffine = true
        case "layernorm_nonparam": finalNormAffine = false
        default: throw fail("'final_norm' = \"\(finalNorm)\" is not supported: it must be \"layernorm\" or \"layernorm_nonparam\"")
        }
        let activation = try string("norm_activation_type", default: "l2_norm_gelu")!
        guard let variant = PattentionNorm(rawValue: activation) else {
            throw fail("'norm_activation_type' = \"\(activation)\" is not supported: it must be one of \(PattentionNorm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        pattentionNorm = variant
        if try boolean("use_bias_in_attn_linear", default: false) {
            throw fail("'use_bias_in_attn_linear' = true is not supported: Pattention sites have no bias")
        }
        if let config = keys["attention_config"] {
            guard let kinds = Self.attentionKinds(config) else { throw fail("'attention_config' = \(show(config)) is not a list of [[kinds], count]") }
            if let other = kinds.kinds.first(where: { $0 != "tokenformer" }) {
                throw fail("'attention_config' names \"\(other)\" attention: every layer must be \"tokenformer\"")
            }
            if kinds.count != layers { throw fail("'attention_config' covers \(kinds.count) layers, 'num_layers' is \(layers)") }
        }
        if let head = keys["head_dim"] as? Int, head != hidden / heads {
            throw fail("'head_dim' = \(head) is not 'hidden_size' / 'num_attention_heads' = \(hidden / heads)")
        }
        if Int(Double(hidden / heads) * rotaryFraction) % 2 != 0 {
            throw fail("'rotary_pct' = \(rotaryFraction) gives an odd number of rotary dims per head (head dim \(hidden / heads))")
        }
    }

    /// `[[["tokenformer"], 12]]` → the kinds named and the layers covered.
    private static func attentionKinds(_ value: Any) -> (kinds: [String], count: Int)? {
        guard let groups = value as? [Any] else { return nil }
        var kinds: [String] = [], count = 0
        for group in groups {
            guard let pair = group as? [Any], pair.count == 2, let names = pair[0] as? [Any], let n = pair[1] as? Int else { return nil }
            let strings = names.compactMap { $0 as? String }
            guard strings.count == names.count, !strings.isEmpty else { return nil }
            // The names cycle over the `n` layers.
            kinds += strings
            count += n
        }
        return (kinds, count)
    }

    /// The `config.json` keys, as the official code (and `tfc import`) reads them.
    public var jsonKeys: [(String, Any)] {
        [("architectures", ["TokenFormerForCausalLM"]), ("num_layers", layers), ("hidden_size", hidden),
         ("num_attention_heads", heads), ("qkv_slot_num", qkvTokens), ("proj_slot_num", projTokens), ("ffn_slot_num", ffnTokens),
         ("seq_length", context), ("max_position_embeddings", context), ("pos_emb", rotary ? "rotary" : "none"),
         ("rotary_pct", rotaryFraction), ("rotary_emb_base", rotaryBase), ("no_weight_tying", !tieEmbeddings),
         ("norm", "layernorm_nonparam"), ("final_norm", finalNormAffine ? "layernorm" : "layernorm_nonparam"),
         ("layernorm_epsilon", normEps), ("gpt_j_residual", parallelBlock), ("use_bias_in_attn_linear", false),
         ("attention_config", [[["tokenformer"], layers]]), ("norm_activation_type", pattentionNorm.rawValue),
         ("init_method", "normal"), ("output_layer_init_method", "wang_init"), ("torch_dtype", "float32")]
    }
}

