import TFSpec

/// Appends instructions with fresh SSA ids.
public struct GraphBuilder {
    public private(set) var instructions: [Instruction] = []
    private var next: Int

    public init(startingAt next: Int = 0) { self.next = next }

    @discardableResult
    public mutating func emit(_ op: Op, _ operands: [ValueID], _ type: TensorType, at location: SourceLocation? = nil) -> ValueID {
        let id = ValueID(next)
        next += 1
        instructions.append(Instruction(result: id, op: op, operands: operands, type: type, location: location))
        return id
    }
}
