/// A learnable tensor the graph reads, with how `tfc init` fills it.
public struct Parameter: Equatable, Sendable {
    public enum Initialization: Equatable, Sendable {
        /// normal(0, std)
        case normal(std: Double)
        /// every element equal to `value` (affine LayerNorm: weight 1, bias 0)
        case constant(Double)
    }

    public var name: String
    public var shape: [Int]
    public var initialization: Initialization

    public var elementCount: Int { shape.reduce(1, *) }
}

public extension Graph {
    /// Every parameter tensor, each once, in first-use order; names follow the checkpoint layout.
    var parameters: [Parameter] {
        let keyStd = 0.02
        // "wang init" for value tokens: 2 / layers / sqrt(hidden).
        let valueStd = 2.0 / Double(max(config.layers, 1)) / Double(config.hidden).squareRoot()
        var seen = Set<String>()
        var result: [Parameter] = []
        func add(_ name: String, _ shape: [Int], _ initialization: Parameter.Initialization) {
            if seen.insert(name).inserted { result.append(Parameter(name: name, shape: shape, initialization: initialization)) }
        }
        func addLayerNorm(_ ln: LayerNormOp, width: Int) {
            guard let affine = ln.affine else { return }
            add(affine.weight, [width], .constant(1))
            add(affine.bias, [width], .constant(0))
        }
        func addSite(_ p: PattentionOp) {
            add(p.keyName, [p.tokens, p.inFeatures], .normal(std: keyStd))
            add(p.valueName, [p.tokens, p.outFeatures], .normal(std: valueStd))
        }
        for inst in instructions {
            switch inst.op {
            case .embedding(let table): add(table, [config.vocab, config.hidden], .normal(std: keyStd))
            case .logits(let table): add(table, [config.vocab, config.hidden], .normal(std: keyStd))
            case .layerNorm(let ln): addLayerNorm(ln, width: inst.type.columns ?? 0)
            case .pattention(let p): addSite(p)
            case .fusedPattention(let f):
                if let ln = f.prologue { addLayerNorm(ln, width: f.sites[0].inFeatures) }
                f.sites.forEach(addSite)
            case .tokens, .rotary, .attention, .add, .columns: break
            }
        }
        return result
    }

    var parameterCount: Int { parameters.reduce(0) { $0 + $1.elementCount } }
}
