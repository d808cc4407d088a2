import TFIR
import TFSpec

/// Where each layer's instructions are in an unrolled graph: between the embedding and the final
/// norm, `layers` equal runs of instructions, each reading only the previous one's output.
struct LayerLayout {
    /// Instruction indices of each layer.
    var layers: [Range<Int>]
    /// The value each layer reads (the previous layer's output, or the embedding).
    var inputs: [ValueID]
    /// The value each layer produces.
    var outputs: [ValueID]

    init(_ g: Graph) throws {
        func fail(_ why: String) -> GrowthError { GrowthError(internal: "cannot find the layers of the graph: \(why)") }
        guard let embedding = g.instructions.firstIndex(where: { if case .embedding = $0.op { return true } else { return false } }) else {
            throw fail("no embedding")
        }
        guard let logits = g.index(of: g.output), case .logits = g.instructions[logits].op,
              let norm = g.index(of: g.instructions[logits].operands[0]), case .layerNorm = g.instructions[norm].op,
              norm > embedding else {
            throw fail("the output is not logits(layernorm(...))")
        }
        let count = g.config.layers
        let start = embedding + 1, body = norm - start
        guard count > 0, body % count == 0 else { throw fail("\(body) instructions do not split into \(count) layers") }
        let size = body / count
        layers = (0..<count).map { (start + $0 * size)..<(start + ($0 + 1) * size) }
        inputs = []
        outputs = []
        var previous = g.instructions[embedding].result
        for (l, range) in layers.enumerated() {
            let defined = Set(g.instructions[range].map(\.result))
            let external = Set(g.instructions[range].flatMap(\.operands)).subtracting(defined)
            guard external == [previous] else { throw fail("layer \(l) reads values other than the previous layer's output") }
            var readOutside = Set<ValueID>()
            for (i, inst) in g.instructions.enumerated() where !range.contains(i) {
                readOutside.formUnion(inst.operands.filter(defined.contains))
            }
            if defined.contains(g.output) { readOutside.insert(g.output) }
            guard readOutside.count == 1, let output = readOutside.first else { throw fail("layer \(l) does not have exactly one output") }
            for inst in g.instructions[range] {
                let sites: [PattentionOp]
                switch inst.op {
                case .pattention(let p): sites = [p]
                case .fusedPattention(let f): sites = f.sites
                default: sites = []
                }
                guard sites.allSatisfy({ $0.layer == l }) else { throw fail("layer \(l) holds a site of another layer") }
            }
            inputs.append(previous)
            outputs.append(output)
            previous = output
        }
        guard g.instructions[norm].operands[0] == previous else { throw fail("the final norm does not read the last layer") }
        // Every layer is the same program.
        let template = signature(g, 0)
        for l in 1..<count where signature(g, l) != template { throw fail("layer \(l) differs from layer 0") }
    }

    /// Layer `l`'s instructions with layer numbers, cache slots and value ids made relative.
    private func signature(_ g: Graph, _ l: Int) -> [String] {
        let range = layers[l]
        var local: [ValueID: Int] = [:]
        return g.instructions[range].enumerated().map { i, inst in
            local[inst.result] = i
            let operands = inst.operands.map { local[$0].map(String.init) ?? "in" }
            return "\(inst.op.relabelled(layer: 0, cacheSlot: 0)) \(operands) \(inst.type)"
        }
    }
}

extension Op {
    /// The op with its sites moved to `layer` and its KV cache slot set to `cacheSlot`.
    func relabelled(layer: Int? = nil, cacheSlot: Int? = nil) -> Op {
        switch self {
        case .pattention(var p):
            if let layer { p.layer = layer }
            return .pattention(p)
        case .fusedPattention(var f):
            if let layer { f.sites = f.sites.map { var s = $0; s.layer = layer; return s } }
            return .fusedPattention(f)
        case .attention(var a):
            if let cacheSlot { a.cacheSlot = cacheSlot }
            return .attention(a)
        default:
            return self
        }
    }

    var siteLayer: Int? {
        switch self {
        case .pattention(let p): return p.layer
        case .fusedPattention(let f): return f.sites.first?.layer
        default: return nil
        }
    }
}

/// Inserts `count` new layers before layer `position` (`position == layers` appends them). Each
/// new layer is a copy of the block whose sites that write the residual stream (an operand of an
/// `add`) get zero value tokens, so it adds exactly zero: the model computes the same function.
/// Its other sites get `tfc init`'s initialisation, so the new attention sees well-defined inputs.
/// Layers from `position` on are renumbered (`layers.{i}` → `layers.{i + count}`).
public struct InsertLayers: GrowthRewrite {
    public var count: Int
    public var position: Int
    /// Refuse if the inserted layers cannot be shown to be identities.
    public var exact: Bool

    public init(count: Int, at position: Int, exact: Bool = true) {
        self.count = count
        self.position = position
        self.exact = exact
    }

    public var name: String { "insert-layers" }

    /// Sites whose output is an operand of an `add` (or that carry a residual epilogue).
    public static func residualSites(of graph: Graph) -> Set<String> {
        var sites = Set<String>()
        var producer: [ValueID: Instruction] = [:]
        for inst in graph.instructions { producer[inst.result] = inst }
        for inst in graph.instructions {
            if inst.op == .add {
                for operand in inst.operands {
                    if case .pattention(let p) = producer[operand]?.op { sites.insert(p.site) }
                }
            }
            if case .fusedPattention(let f) = inst.op, f.residual { f.sites.forEach { sites.insert($0.site) } }
        }
        return sites
    }

    /// Whether a layer whose residual sites output zero returns its input exactly: its output
    /// must be the input plus zero terms only.
    static func isIdentity(_ graph: Graph, layer range: Range<Int>, input: ValueID, output: ValueID, zeroSites: Set<String>) -> Bool {
        enum Value { case input, zero, other }
        var value: [ValueID: Value] = [input: .input]
        for inst in graph.instructions[range] {
            let v: Value
            switch inst.op {
            case .pattention(let p):
                v = zeroSites.contains(p.site) ? .zero : .other
            case .fusedPattention(let f) where f.residual && f.sites.allSatisfy({ zeroSites.contains($0.site) }):
                v = value[inst.operands[1]] ?? .other
            case .add:
                let a = value[inst.operands[0]] ?? .other, b = value[inst.operands[1]] ?? .other
                if case .zero = a { v = b } else if case .zero = b { v = a } else { v = .other }
            default:
                v = .other
            }
            value[inst.result] = v
        }
        if case .input = value[output] { return true }
        return false
    }

    func check(_ graph: Graph, _ layout: LayerLayout) throws {
        if count <= 0 { throw GrowthError("--layers: the number of layers to insert must be positive, got \(count)") }
        let layers = graph.config.layers
        if position < 0 || position > layers {
            throw GrowthError("--at \(position): layers can be inserted at 0...\(layers) (before layer K; \(layers) appends)")
        }
        if exact {
            let t = min(position, layers - 1)
            if !Self.isIdentity(graph, layer: layout.layers[t], input: layout.inputs[t], output: layout.outputs[t],
                                zeroSites: Self.residualSites(of: graph)) {
                throw GrowthError("cannot insert layers exactly: the block's result is not its input plus sites that can be given zero value tokens, so a new layer would change the output; use --scale reference to insert anyway")
            }
        }
    }

    public func run(_ graph: Graph) throws -> Graph {
        let layout = try LayerLayout(graph)
        try check(graph, layout)
        let layers = graph.config.layers
        let template = layout.layers[min(position, layers - 1)]
        let templateInput = layout.inputs[min(position, layers - 1)]
        let templateOutput = layout.outputs[min(position, layers - 1)]
        // Where the new layers go, and the value they read.
        let insertAt = position < layers ? layout.layers[position].lowerBound : layout.layers[layers - 1].upperBound
        let before = position == 0 ? layout.inputs[0] : layout.outputs[position - 1]

        var next = graph.nextValueID.raw
        var clones: [Instruction] = []
        var previous = before
        for j in 0..<count {
            var rename: [ValueID: ValueID] = [templateInput: previous]
            for inst in graph.instructions[template] {
                var copy = inst
                copy.result = ValueID(next)
                next += 1
                rename[inst.result] = copy.result
                copy.operands = inst.operands.map { rename[$0] ?? $0 }
                copy.op = inst.op.relabelled(layer: position + j)
                clones.append(copy)
            }
            previous = rename[templateOutput]!
        }
        var rest = Array(graph.instructions[insertAt...])
        for i in rest.indices {
            rest[i].operands = rest[i].operands.map { $0 == before ? previous : $0 }
            if let layer = rest[i].op.siteLayer { rest[i].op = rest[i].op.relabelled(layer: layer + count) }
        }
        var g = graph
        g.instructions = Array(graph.instructions[..<insertAt]) + clones + rest
        g.config.layers += count
        // KV cache slots in program order, as lowering numbers them.
        var slot = 0
        for i in g.instructions.indices {
            if case .attention = g.instructions[i].op {
                g.instructions[i].op = g.instructions[i].op.relabelled(cacheSlot: slot)
                slot += 1
            }
        }
        return g
    }

    /// `layers.{i}.X` before `position` keeps its name, from `position` on it comes from
    /// `layers.{i - count}.X`, and the new layers' tensors are fresh: zero value tokens at residual
    /// sites, `tfc init`'s initialisation (its random stream for that name) everywhere else.
    public func parameterMap(from old: Graph, to new: Graph) throws -> ParameterMap {
        let residual = Self.residualSites(of: old)
        var zeroValues = Set<String>()
        for p in new.pattentionSites where p.layer >= position && p.layer < position + count && residual.contains(p.site) {
            zeroValues.insert(p.valueName)
        }
        var map = ParameterMap()
        for p in new.parameters {
            guard let (layer, rest) = Self.splitLayerName(p.name) else {
                map.tensors[p.name] = [.copy(from: p.name, start: 0, count: p.rows)]
                continue
            }
            if layer < position {
                map.tensors[p.name] = [.copy(from: p.name, start: 0, count: p.rows)]
            } else if layer >= position + count {
                map.tensors[p.name] = [.copy(from: "layers.\(layer - count).\(rest)", start: 0, count: p.rows)]
            } else if zeroValues.contains(p.name) {
                map.tensors[p.name] = [.fill(.zero, count: p.rows)]
            } else {
                switch p.initialization {
                case .normal(let std): map.tensors[p.name] = [.fill(.normal(std: std, stream: p.name, skipRows: 0), count: p.rows)]
                case .constant(let value): map.tensors[p.name] = [.fill(.constant(value), count: p.rows)]
                }
            }
        }
        return map
    }

    /// `layers.12.mlp.key_param_tokens` → (12, "mlp.key_param_tokens").
    static func splitLayerName(_ name: String) -> (Int, String)? {
        guard name.hasPrefix("layers.") else { return nil }
        let tail = name.dropFirst("layers.".count)
        guard let dot = tail.firstIndex(of: "."), let layer = Int(tail[..<dot]) else { return nil }
        return (layer, String(tail[tail.index(after: dot)...]))
    }

    /// `layers = L + count`; other expressions that read `layers` keep reading the old value.
    public func rewrite(_ spec: Spec, lowering old: Graph) throws -> Spec {
        var spec = spec
        let oldLayers = old.config.layers
        guard let field = spec.modelField("layers") else { throw GrowthError(internal: "the spec has no 'layers' field") }
        if spec.references(to: "layers") > 0 {
            spec.rewriteExpressions { e in
                if case .name(["layers"]) = e.kind { return Expr(.integer(oldLayers), at: e.location) }
                return nil
            }
        }
        spec.setModelField("layers", to: Expr(.integer(oldLayers + count), at: field.value.location))
        return spec
    }

    public func drift(in old: Graph) -> [String] {
        if exact { return [] }
        guard let layout = try? LayerLayout(old) else { return ["inserted layers: the layer structure is unknown"] }
        let t = min(position, old.config.layers - 1)
        if Self.isIdentity(old, layer: layout.layers[t], input: layout.inputs[t], output: layout.outputs[t], zeroSites: Self.residualSites(of: old)) {
            return []
        }
        return ["inserted layers: the block's result is not its input plus zero-valued sites, so new layers change the output"]
    }
}
