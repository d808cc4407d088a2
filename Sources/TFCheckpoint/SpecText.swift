import TFIR

/// The `.tfs` text of an official model: every hyper-parameter, and the block written out.
enum SpecText {
    static func render(name: String, config c: OfficialConfig, vocab: Int, endToken: Int?, tokenizerFile: String?, comment: String) -> String {
        var lines = ["# \(comment)", "model \"\(escaped(name))\" {",
                     "    vocab = \(vocab)",
                     "    hidden = \(c.hidden)",
                     "    heads = \(c.heads)",
                     "    layers = \(c.layers)",
                     "    context = \(c.context)",
                     "    tie_embeddings = \(c.tieEmbeddings)",
                     "    pattention = \(c.pattentionNorm.rawValue)",
                     "    norm_eps = \(number(c.normEps))",
                     "    final_norm = \(c.finalNormAffine ? "affine" : "plain")",
                     "    rotary_fraction = \(number(c.rotaryFraction))",
                     "    rotary_base = \(number(c.rotaryBase))"]
        if let endToken { lines.append("    end_token = \(endToken)                # <|endoftext|>") }
        if let tokenizerFile { lines.append(tokenizerSpecLine(tokenizerFile: tokenizerFile)) }
        lines += ["}", "",
                  "let qkv = \(c.qkvTokens)                    # parameter tokens of the query/key/value sites",
                  "let proj = \(c.projTokens)",
                  "let ffn = \(c.ffnTokens)", ""]
        let rotary = c.rotary ? "true" : "false"
        if c.parallelBlock {
            lines += ["# gpt_j_residual: attention and the MLP read the same normalised input.",
                      "block(x) {",
                      "    h = layernorm(x)",
                      "    q = pattention(h, site: attention.query, tokens: qkv)",
                      "    k = pattention(h, site: attention.key, tokens: qkv)",
                      "    v = pattention(h, site: attention.value, tokens: qkv)",
                      "    a = attention(q, k, v, heads: heads, causal: true, rotary: \(rotary))",
                      "    return x + pattention(a, site: attention.proj, tokens: proj) + pattention(h, site: mlp, tokens: ffn)",
                      "}"]
        } else {
            lines += ["block(x) {",
                      "    h = layernorm(x)",
                      "    q = pattention(h, site: attention.query, tokens: qkv)",
                      "    k = pattention(h, site: attention.key, tokens: qkv)",
                      "    v = pattention(h, site: attention.value, tokens: qkv)",
                      "    a = attention(q, k, v, heads: heads, causal: true, rotary: \(rotary))",
                      "    x1 = x + pattention(a, site: attention.proj, tokens: proj)",
                      "    h1 = layernorm(x1)",
                      "    x2 = x1 + pattention(h1, site: mlp, tokens: ffn)",
                      "    return x2",
                      "}"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The spec line naming the model's tokenizer (a path relative to the spec file).
    static func tokenizerSpecLine(tokenizerFile: String) -> String {
        "    tokenizer = \"\(escaped(tokenizerFile))\""
    }

    /// A float literal the spec lexer reads back to the same Double (`1e-05`, `0.25`, `10000.0`).
    static func number(_ value: Double) -> String { "\(value)" }

    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
