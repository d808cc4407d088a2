import TFSpec

public extension Graph {
    /// Why decoding against the KV cache would not compute this model, or nil when it does.
    ///
    /// Generation runs each new token once, over the keys and values cached for the tokens before
    /// it. That is the model's own function only when every attention is causal: in a non-causal
    /// layer the earlier tokens' rows depend on the later tokens, so they would have to be
    /// recomputed at every step, and what a KV cache holds is stale. So `tfc generate`, and a
    /// compiled program's generation and continuation past cached tokens, are refused for it; a
    /// forward pass over a whole sequence (`tfc run`, `--logits`) is not.
    var incrementalDecodingRefusal: (message: String, location: SourceLocation?)? {
        for inst in instructions {
            if case .attention(let a) = inst.op, !a.causal {
                return ("attention \(inst.result) is non-causal (causal: false): decoding with a KV cache would not compute this model, "
                        + "whose earlier tokens see the later ones; evaluate whole sequences instead (tfc run)", inst.location)
            }
        }
        return nil
    }
}
