import TFIR

/// One step of the backward program: the backward rule of one forward instruction. It reads the
/// adjoint of the instruction's result and the saved forward values `reads`, and accumulates into
/// the adjoints of `operandAdjoints` (nil: an operand with no gradient, the token ids) and into the
/// gradients of `weights`.
public struct BackwardStep: Sendable {
    public var forward: Instruction
    public var rule: BackwardRule
    /// Saved forward values this step reads, in the rule's order.
    public var reads: [ValueID]
    /// Per operand of `forward`: the value whose adjoint receives a contribution, or nil.
    public var operandAdjoints: [ValueID?]
    public var weights: [String]
}

/// A forward value kept from the forward pass for the backward pass, and who reads it.
public struct SavedValue: Sendable {
    public var value: ValueID
    public var type: TensorType
    public var readBy: [ValueID]
}

/// The backward graph of a forward graph under the mean next-token cross-entropy: the loss seed,
/// then one step per differentiable instruction in reverse program order. Produced by `differentiate`.
public struct GradGraph: Sendable {
    /// The (unfused) forward graph; its output is the logits.
    public var forward: Graph
    /// Seeds the adjoint of the logits.
    public var loss: BackwardStep
    /// Backward steps in execution order (reverse of the forward program).
    public var steps: [BackwardStep]
    /// Forward values the backward reads: kept after the forward pass. All others are freed.
    public var saved: [SavedValue]
    /// The weights whose gradients the program produces (all of the graph's parameters).
    public var parameters: [Parameter]

    /// Is `value` kept for the backward pass?
    public func isSaved(_ value: ValueID) -> Bool { saved.contains { $0.value == value } }
}
