import TFIR

extension GradGraph {
    /// `tfc compile --emit grad-ir`: the forward graph, what is saved, recomputed and freed, and
    /// the backward steps with the adjoints and weight gradients each one accumulates into.
    public var text: String {
        var out = forward.text
        out += "\n// backward of the mean next-token cross-entropy\n"
        out += "// saved for the backward pass (\(saved.count) values):\n"
        for s in saved {
            // The loss seed reads the logits; its "forward" is the logits instruction itself.
            let steps = s.readBy.filter { !($0 == s.value && $0 == forward.output) }
            var readers = steps.isEmpty ? [] : ["the backward of " + steps.map(\.description).joined(separator: ", ")]
            if steps.count < s.readBy.count { readers.append("the loss") }
            out += "//   \(s.value) \(s.type)  read by \(readers.joined(separator: " and "))\n"
        }
        let freed = forward.instructions.filter { !isSaved($0.result) && $0.op != .tokens }.map(\.result.description)
        out += "// freed after the forward pass: \(freed.isEmpty ? "none" : freed.joined(separator: " "))\n"
        out += "grad {\n"
        for step in [loss] + steps {
            let inst = step.forward
            let targets = step.operandAdjoints.compactMap { $0.map { "d\($0)" } } + step.weights.map { "d[\($0)]" }
            let from = step.rule.op == BackwardRules.loss.op ? "(\(step.reads.map(\.description).joined(separator: ", ")), tokens)"
                : "(d\(inst.result)\(step.reads.map { ", \($0)" }.joined()))"
            let lhs = step.rule.op == BackwardRules.loss.op ? "loss, d\(inst.result) =" : "\(targets.joined(separator: ", ")) +="
            out += "  \(lhs) \(step.rule.op)_backward\(from)\n"
            out += "    // \(step.rule.summary)\n"
            for r in step.rule.recomputes(inst) { out += "    // recomputes \(r)\n" }
        }
        out += "  return \(parameters.map { "d[\($0.name)]" }.joined(separator: ", "))\n}\n"
        return out
    }
}
