import TFIR

/// What the experiment counts as the compute of training: per window, 3× the forward FLOPs of a
/// prefill of the window (the forward pass, and a backward pass of about twice its products:
/// activation and weight gradients), matrix products and causal attention as `Graph.prefillFlops`
/// counts them; elementwise work, the optimiser and held-out evaluations are not counted.
public enum TrainingFlops {
    public static let backwardFactor = 3.0

    public static func perStep(_ graph: Graph, batch: Int, seq: Int) -> Double {
        backwardFactor * graph.prefillFlops(tokens: seq) * Double(batch)
    }
}
