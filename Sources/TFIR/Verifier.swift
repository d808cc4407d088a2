import TFSpec

/// Checks the IR's invariants: every operand is defined before use, each value is defined once, and
/// every op's operand types agree with its attributes and result type. Runs after lowering and after
/// every pass; an error names the instruction and points back at the spec line it came from.
public struct VerifierError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var location: SourceLocation?

    public init(message: String, location: SourceLocation?) {
        self.message = message
        self.location = location
    }

    public var description: String {
        if let location { return "\(location): error: IR verifier: \(message)" }
        return "error: IR verifier: \(message)"
    }
}

public extension Graph {
    func verify() throws {
        var types: [ValueID: TensorType] = [:]
        var slots = Set<Int>()
        for inst in instructions {
            func fail(_ message: String) -> VerifierError {
                VerifierError(message: "\(inst.result) = \(inst.op.name): \(message)", location: inst.location)
            }
            if types[inst.result] != nil { throw fail("value \(inst.result) is defined twice") }
            let operandTypes = try inst.operands.map { operand -> TensorType in
                guard let type = types[operand] else { throw fail("operand \(operand) is used before it is defined") }
                return type
            }
            func expectOperands(_ count: Int) throws {
                if operandTypes.count != count { throw fail("expects \(count) operands, has \(operandTypes.count)") }
            }
            func expectWidth(_ type: TensorType, _ width: Int, _ what: String) throws {
                if type != .activations(width) { throw fail("\(what) has type \(type), expected \(TensorType.activations(width))") }
            }
            switch inst.op {
            case .tokens:
                try expectOperands(0)
                if inst.type != .tokenIDs { throw fail("result must be \(TensorType.tokenIDs)") }
            case .embedding:
                try expectOperands(1)
                if operandTypes[0] != .tokenIDs { throw fail("operand must be token ids") }
                try expectWidth(inst.type, config.hidden, "result")
            case .layerNorm, .add:
                try expectOperands(inst.op == .add ? 2 : 1)
                for t in operandTypes { try expectWidth(t, inst.type.columns ?? -1, "operand") }
            case .pattention(let p):
                try expectOperands(1)
                if p.tokens <= 0 { throw fail("token count must be positive") }
                try expectWidth(operandTypes[0], p.inFeatures, "input")
                try expectWidth(inst.type, p.outFeatures, "result")
            case .rotary(let r):
                try expectOperands(1)
                if r.rotaryDims % 2 != 0 || r.rotaryDims > r.headDim { throw fail("rotary dims \(r.rotaryDims) must be even and ≤ head_dim \(r.headDim)") }
                try expectWidth(operandTypes[0], r.heads * r.headDim, "input")
                try expectWidth(inst.type, r.heads * r.headDim, "result")
            case .attention(let a):
                try expectOperands(3)
                for t in operandTypes { try expectWidth(t, a.heads * a.headDim, "q/k/v") }
                try expectWidth(inst.type, a.heads * a.headDim, "result")
                if !slots.insert(a.cacheSlot).inserted { throw fail("KV cache slot \(a.cacheSlot) is used twice") }
            case .logits:
                try expectOperands(1)
                try expectWidth(operandTypes[0], config.hidden, "input")
                try expectWidth(inst.type, config.vocab, "result")
            case .columns(let start, let count):
                try expectOperands(1)
                guard let width = operandTypes[0].columns, start >= 0, count > 0, start + count <= width else {
                    throw fail("columns \(start)..<\(start + count) out of range of \(operandTypes[0])")
                }
                try expectWidth(inst.type, count, "result")
            case .fusedPattention(let f):
                try expectOperands(f.residual ? 2 : 1)
                if f.sites.isEmpty || f.rotary.count != f.sites.count { throw fail("malformed site list") }
                for site in f.sites { try expectWidth(operandTypes[0], site.inFeatures, "input") }
                try expectWidth(inst.type, f.outFeatures, "result")
                if f.residual { try expectWidth(operandTypes[1], f.outFeatures, "residual") }
            }
            types[inst.result] = inst.type
        }
        guard let out = types[output] else {
            throw VerifierError(message: "output \(output) is not defined", location: nil)
        }
        if out != .activations(config.vocab) {
            throw VerifierError(message: "output has type \(out), expected \(TensorType.activations(config.vocab))", location: nil)
        }
    }
}
