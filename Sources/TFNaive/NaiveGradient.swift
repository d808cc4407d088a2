import TFIR
import TFAutodiff

/// The loss and the gradient of every weight, named like the weights.
public struct GradientResult {
    public var loss: Double
    public var gradients: [String: [Float]]

    public init(loss: Double, gradients: [String: [Float]]) { self.loss = loss; self.gradients = gradients }
}

/// The oracle for training: runs a `GradGraph` on the naive backend. The forward pass keeps only
/// the values the pass marked saved (and frees each other value after its last forward reader);
/// then the backward steps run one by one with `NaiveBackward`, accumulating adjoints.
public final class NaiveGradient {
    public let grad: GradGraph
    let weights: WeightLookup
    let threads: Int

    public init(grad: GradGraph, weights: @escaping WeightLookup, threads: Int) {
        self.grad = grad; self.weights = weights; self.threads = threads
    }

    /// The mean next-token cross-entropy alone (a forward pass from position 0).
    public func loss(_ tokens: [Int32]) -> Double {
        let forward = NaiveExecutor(graph: grad.forward, weights: weights, threads: threads)
        return NaiveBackward.crossEntropy(forward.forward(tokens), tokens: tokens).loss
    }

    /// `tokens` (at least 2, within the context) from position 0: the mean next-token
    /// cross-entropy and its gradient.
    public func run(_ tokens: [Int32]) -> GradientResult {
        precondition(tokens.count >= 2 && tokens.count <= grad.forward.config.context, "tokens were validated by the caller")
        let graph = grad.forward
        let forward = NaiveExecutor(graph: graph, weights: weights, threads: threads)
        let keep = Set(grad.saved.map(\.value))
        var values: [ValueID: Matrix] = [:]
        var uses = graph.useCounts()
        for inst in graph.instructions {
            values[inst.result] = forward.execute(inst, inst.operands.map { values[$0]! }, tokens: tokens, rows: tokens.count)
            for operand in inst.operands {
                uses[operand, default: 0] -= 1
                if uses[operand] == 0 && !keep.contains(operand) { values[operand] = nil }
            }
        }

        var gradients: [String: [Float]] = [:]
        for p in grad.parameters { gradients[p.name] = [Float](repeating: 0, count: p.elementCount) }
        let (loss, seed) = NaiveBackward.crossEntropy(values[grad.loss.reads[0]]!, tokens: tokens)
        var adjoints: [ValueID: Matrix] = [grad.loss.forward.result: seed]
        func accumulate(_ value: ValueID?, _ m: Matrix) {
            guard let value else { return }
            if adjoints[value] != nil {
                adjoints[value]!.data.withUnsafeMutableBufferPointer { a in for i in 0..<a.count { a[i] += m.data[i] } }
            } else {
                adjoints[value] = m
            }
        }
        for step in grad.steps {
            let inst = step.forward
            guard let dy = adjoints.removeValue(forKey: inst.result) else { continue }
            let read = step.reads.map { values[$0]! }
            switch inst.op {
            case .embedding(let table):
                NaiveBackward.embedding(dy: dy, tokens: tokens, dTable: &gradients[table]!)
            case .logits(let table):
                accumulate(step.operandAdjoints[0], NaiveBackward.logits(x: read[0], table: weights(table).baseAddress!, dy: dy, dTable: &gradients[table]!))
            case .layerNorm(let ln):
                var dw: [Float] = [], db: [Float] = []
                if let affine = ln.affine { dw = gradients[affine.weight]!; db = gradients[affine.bias]! }
                let dx = NaiveBackward.layerNorm(x: read[0], dy: dy, eps: ln.eps, weight: ln.affine.map { weights($0.weight).baseAddress! },
                                                 dWeight: &dw, dBias: &db)
                if let affine = ln.affine { gradients[affine.weight] = dw; gradients[affine.bias] = db }
                accumulate(step.operandAdjoints[0], dx)
            case .pattention(let p):
                var dKey = gradients.removeValue(forKey: p.keyName)!, dValue = gradients.removeValue(forKey: p.valueName)!
                let dx = NaiveBackward.pattention(x: read[0], p, key: weights(p.keyName).baseAddress!, value: weights(p.valueName).baseAddress!,
                                                  dy: dy, dKey: &dKey, dValue: &dValue)
                gradients[p.keyName] = dKey; gradients[p.valueName] = dValue
                accumulate(step.operandAdjoints[0], dx)
            case .rotary(let r):
                accumulate(step.operandAdjoints[0], NaiveBackward.rotary(dy: dy, r))
            case .attention(let a):
                let (dq, dk, dv) = NaiveBackward.attention(q: read[0], k: read[1], v: read[2], dy: dy, a)
                accumulate(step.operandAdjoints[0], dq)
                accumulate(step.operandAdjoints[1], dk)
                accumulate(step.operandAdjoints[2], dv)
            case .add:
                accumulate(step.operandAdjoints[0], dy)
                accumulate(step.operandAdjoints[1], dy)
            case .tokens, .columns, .fusedPattention:
                preconditionFailure("differentiate() has no rule for \(inst.op.name)")
            }
        }
        return GradientResult(loss: loss, gradients: gradients)
    }
}
