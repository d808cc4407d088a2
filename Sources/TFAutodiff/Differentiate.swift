import TFIR

/// The autodiff pass: from an unfused forward graph whose output is the logits, builds the backward
/// program of the mean next-token cross-entropy. Each instruction is differentiated by its rule in
/// `BackwardRules`; a forward value is saved exactly when some rule reads it, and the rules
/// recompute their own intermediates (Pattention and attention scores, LayerNorm statistics), so
/// the memory kept is the op boundaries only.
public func differentiate(_ graph: Graph) throws -> GradGraph {
    guard let output = graph.instruction(producing: graph.output), case .logits = output.op else {
        throw AutodiffError("\(graph.source): error: cannot differentiate: the graph's output is not the logits")
    }
    let loss = BackwardStep(forward: output, rule: BackwardRules.loss, reads: [output.result],
                            operandAdjoints: [], weights: [])
    var needsAdjoint: Set<ValueID> = [graph.output]
    var steps: [BackwardStep] = []
    for inst in graph.instructions.reversed() {
        guard needsAdjoint.contains(inst.result), inst.op != .tokens else { continue }
        guard let rule = BackwardRules.rule(for: inst.op) else {
            let where_ = inst.location.map { "\($0.file):\($0.line):\($0.column)" } ?? graph.source
            throw AutodiffError("\(where_): error: op '\(inst.op.name)' (\(inst.result)) has no backward rule; differentiate the unfused graph")
        }
        let reads = rule.reads.map { read -> ValueID in
            switch read {
            case .operand(let i): return inst.operands[i]
            case .result: return inst.result
            }
        }
        let adjoints = inst.operands.map { operand -> ValueID? in
            graph.instruction(producing: operand)?.type.element == .f32 ? operand : nil
        }
        for case let a? in adjoints { needsAdjoint.insert(a) }
        steps.append(BackwardStep(forward: inst, rule: rule, reads: reads, operandAdjoints: adjoints, weights: rule.weights(inst)))
    }
    var readers: [ValueID: [ValueID]] = [:]
    for step in [loss] + steps { for v in step.reads { readers[v, default: []].append(step.forward.result) } }
    let saved = graph.instructions.compactMap { inst in
        readers[inst.result].map { SavedValue(value: inst.result, type: inst.type, readBy: $0) }
    }
    return GradGraph(forward: graph, loss: loss, steps: steps, saved: saved, parameters: graph.parameters)
}
