/// The official code's state-dict keys and tfc's tensor names, both ways.
///
/// The official model is GPT-NeoX's sequential wrapper: layer list index 0 is the embedding,
/// 1 a parameter-free function, 2 ..< L+2 the blocks, L+2 another function, L+3 the final norm,
/// L+4 the head (`final_linear`, only with untied embeddings; tied, it reuses index 0).
public enum OfficialNames {
    /// The official key of a tfc tensor in a model of `layers` layers.
    public static func official(_ name: String, layers: Int) -> String? {
        switch name {
        case "embed.weight": return "sequential.0.word_embeddings.weight"
        case "final_norm.weight": return "sequential.\(layers + 3).norm.weight"
        case "final_norm.bias": return "sequential.\(layers + 3).norm.bias"
        case "lm_head.weight": return "sequential.\(layers + 4).final_linear.weight"
        default:
            let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[0] == "layers", let i = Int(parts[1]), (0..<layers).contains(i) else { return nil }
            return "sequential.\(i + 2).\(parts[2])"
        }
    }

    /// Keys the official model saves that carry no weights tfc needs (rotary's inverse
    /// frequencies, recomputed from `rotary_emb_base`).
    static func isIgnorable(_ key: String) -> Bool {
        key.hasSuffix(".rotary_emb.inv_freq")
    }

    /// A DeepSpeed per-layer file's key (`attention.query.key_param_tokens` in `layer_02-…`) in
    /// the sequential wrapper's numbering.
    static func sequentialKey(layerFile index: Int, key: String) -> String {
        "sequential.\(index).\(key)"
    }

    /// Keys as saved without the wrapper's prefix (`0.word_embeddings.weight`) or with DeepSpeed's
    /// `module.` in front, in the wrapper's form.
    static func normalized(_ key: String) -> String {
        var k = Substring(key)
        if k.hasPrefix("module.") { k = k.dropFirst("module.".count) }
        if let first = k.first, first.isNumber { return "sequential." + k }
        return String(k)
    }
}
