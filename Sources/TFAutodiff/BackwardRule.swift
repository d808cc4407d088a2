import TFIR

/// A forward value a backward rule reads: one of the instruction's operands, or its result.
public enum ForwardRead: Equatable, Sendable {
    case operand(Int)
    case result
}

/// How one IR op is differentiated: which forward values its backward reads (so the pass knows
/// what to keep from the forward pass), what it recomputes instead of storing, and which weight
/// gradients it produces. The arithmetic lives in each backend (`NaiveBackward` for the oracle);
/// the rule is the contract both follow.
public struct BackwardRule: Sendable {
    /// The op this rule differentiates (`Op.name`).
    public var op: String
    /// The forward values the backward needs; everything else is freed after the forward pass.
    public var reads: [ForwardRead]
    /// Intermediates of the op that the backward recomputes from what it reads (not stored).
    public var recomputes: @Sendable (Instruction) -> [String]
    /// Weight tensors this op reads, whose gradients it accumulates (tied tables get several).
    public var weights: @Sendable (Instruction) -> [String]
    /// The math, in one line, for `--emit grad-ir`.
    public var summary: String

    public init(op: String, reads: [ForwardRead], summary: String,
                recomputes: @escaping @Sendable (Instruction) -> [String] = { _ in [] },
                weights: @escaping @Sendable (Instruction) -> [String] = { _ in [] }) {
        self.op = op; self.reads = reads; self.summary = summary; self.recomputes = recomputes; self.weights = weights
    }
}
