import TFSpec

/// Lowers a parsed spec to the graph IR: evaluates the constants, checks the block (names, arities,
/// shapes, cycles, sites), and unrolls it `layers` times between the embedding and the logits.
/// Every error is a `Diagnostic` pointing at the spec text that caused it.
/// `memory` is the bytes the model may need at `context` (see `SizeLimits`); nil skips that check.
public func lower(_ spec: Spec, source: SourceFile? = nil, memory: Int? = SizeLimits.machineMemory) throws -> Graph {
    var lowering = try Lowering(spec: spec, source: source)
    lowering.memory = memory
    return try lowering.run()
}

/// A value in the block: a tensor and its width.
private struct TensorValue {
    var id: ValueID
    var width: Int
}

private struct Lowering {
    let spec: Spec
    let source: SourceFile?
    let block: BlockDecl
    var constants: ConstantEvaluator
    let config: ModelConfig
    var builder = GraphBuilder()
    /// Statements in an order where each comes after the values it reads.
    var order: [Binding] = []
    var nextCacheSlot = 0
    var memory: Int? = nil

    init(spec: Spec, source: SourceFile?) throws {
        self.spec = spec
        self.source = source
        let end = source.map { SourceLocation(file: $0.path, line: max(1, $0.text.split(separator: "\n", omittingEmptySubsequences: false).count), column: 1) }
            ?? SourceLocation(file: spec.file, line: 1, column: 1)
        func error(_ message: String, at location: SourceLocation) -> Diagnostic {
            source?.error(message, at: location) ?? Diagnostic(message, at: location)
        }
        guard let model = spec.model else { throw error("the spec has no 'model { ... }' section", at: end) }
        guard let block = spec.block else { throw error("the spec has no 'block(x) { ... }' section", at: end) }
        self.block = block
        let fieldBindings = model.fields
        var seen: [String: SourceLocation] = [:]
        for b in fieldBindings + spec.constants {
            if let first = seen[b.name] { throw error("'\(b.name)' is already defined at \(first.line):\(first.column)", at: b.location) }
            seen[b.name] = b.location
        }
        constants = ConstantEvaluator(bindings: fieldBindings + spec.constants, source: source)
        config = try ModelConfig.evaluate(model, in: &constants)
        for c in spec.constants { _ = try constants.value(of: c.name, at: c.location) }
    }

    func error(_ message: String, at location: SourceLocation) -> Diagnostic {
        constants.error(message, at: location)
    }

    // MARK: block checks

    /// Names of block values an expression reads (positional arguments and operands; labelled
    /// arguments are attributes, evaluated as constants).
    func tensorReferences(_ expr: Expr, into names: inout [(String, SourceLocation)]) {
        switch expr.kind {
        case .name(let path) where path.count == 1: names.append((path[0], expr.location))
        case .negate(let e): tensorReferences(e, into: &names)
        case .binary(_, let a, let b): tensorReferences(a, into: &names); tensorReferences(b, into: &names)
        case .call(_, let args): for arg in args where arg.label == nil { tensorReferences(arg.value, into: &names) }
        default: break
        }
    }

    mutating func orderStatements() throws {
        var byName: [String: Binding] = [:]
        for s in block.statements {
            if s.name == block.parameter { throw error("'\(s.name)' is the block's input; give this value another name", at: s.location) }
            if constants.isConstant(s.name) { throw error("'\(s.name)' is already a constant; give this value another name", at: s.location) }
            if let first = byName[s.name] { throw error("'\(s.name)' is already defined at \(first.location.line):\(first.location.column)", at: s.location) }
            byName[s.name] = s
        }
        // Depth-first, with an explicit stack: a chain of 10,000 statements written in reverse
        // order must not recurse 10,000 deep.
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []
        var used = Set<String>()
        struct Frame { var statement: Binding; var references: [(String, SourceLocation)]; var next = 0 }
        func references(_ statement: Binding) -> [(String, SourceLocation)] {
            var refs: [(String, SourceLocation)] = []
            tensorReferences(statement.value, into: &refs)
            return refs
        }
        for root in block.statements where marks[root.name] == nil {
            marks[root.name] = .visiting
            stack.append(root.name)
            var frames = [Frame(statement: root, references: references(root))]
            while !frames.isEmpty {
                let top = frames.count - 1
                guard frames[top].next < frames[top].references.count else {
                    let statement = frames.removeLast().statement
                    stack.removeLast()
                    marks[statement.name] = .done
                    order.append(statement)
                    continue
                }
                let name = frames[top].references[frames[top].next].0
                frames[top].next += 1
                used.insert(name)
                guard let dep = byName[name] else { continue }
                switch marks[dep.name] {
                case .done: continue
                case .visiting:
                    let start = stack.firstIndex(of: dep.name)!
                    let cycle = (stack[start...] + [dep.name]).joined(separator: " → ")
                    throw error("cycle in block: \(cycle)", at: dep.location)
                case nil:
                    marks[dep.name] = .visiting
                    stack.append(dep.name)
                    frames.append(Frame(statement: dep, references: references(dep)))
                }
            }
        }
        var resultRefs: [(String, SourceLocation)] = []
        tensorReferences(block.result, into: &resultRefs)
        for (name, _) in resultRefs { used.insert(name) }
        for s in block.statements where !used.contains(s.name) {
            throw error("'\(s.name)' is computed but never used", at: s.location)
        }
        // A site may appear once per block: it names one pair of weight tensors per layer.
        var sites: [String: SourceLocation] = [:]
        func collectSites(_ expr: Expr) throws {
            switch expr.kind {
            case .call(let name, let args):
                if name == "pattention", let site = args.first(where: { $0.label == "site" }), case .name(let path) = site.value.kind {
                    let siteName = path.joined(separator: ".")
                    if let first = sites[siteName] {
                        throw error("site '\(siteName)' is already used at \(first.line):\(first.column); each site names its own weights", at: site.value.location)
                    }
                    sites[siteName] = site.value.location
                }
                for arg in args { try collectSites(arg.value) }
            case .binary(_, let a, let b): try collectSites(a); try collectSites(b)
            case .negate(let e): try collectSites(e)
            default: break
            }
        }
        for s in block.statements { try collectSites(s.value) }
        try collectSites(block.result)
    }

    // MARK: lowering

    mutating func run() throws -> Graph {
        try orderStatements()
        let tokens = builder.emit(.tokens, [], .tokenIDs)
        var x = builder.emit(.embedding(table: "embed.weight"), [tokens], .activations(config.hidden))
        for layer in 0..<config.layers {
            var env: [String: TensorValue] = [block.parameter: TensorValue(id: x, width: config.hidden)]
            for statement in order {
                env[statement.name] = try lowerTensor(statement.value, env: env, layer: layer)
            }
            let result = try lowerTensor(block.result, env: env, layer: layer)
            if result.width != config.hidden {
                throw error("shape mismatch: the block must return [T, \(config.hidden)] (hidden), but this is [T, \(result.width)]", at: block.result.location)
            }
            x = result.id
        }
        let affine = config.finalNormAffine ? (weight: "final_norm.weight", bias: "final_norm.bias") : nil
        let normed = builder.emit(.layerNorm(LayerNormOp(eps: config.normEps, affine: affine)), [x], .activations(config.hidden))
        let table = config.tieEmbeddings ? "embed.weight" : "lm_head.weight"
        let logits = builder.emit(.logits(table: table), [normed], .activations(config.vocab))
        let graph = Graph(config: config, instructions: builder.instructions, output: logits, source: source?.path ?? spec.file)
        let model = spec.model!
        let contextAt = model.fields.first { $0.name == ModelField.context.rawValue }?.value.location ?? model.location
        try graph.checkSizes(memory: memory ?? Int.max, context: contextAt, model: model.location) { error($0, at: $1) }
        try graph.verify()
        return graph
    }

    mutating func lowerTensor(_ expr: Expr, env: [String: TensorValue], layer: Int) throws -> TensorValue {
        switch expr.kind {
        case .name(let path) where path.count == 1:
            if let v = env[path[0]] { return v }
            if constants.isConstant(path[0]) {
                throw error("'\(path[0])' is a constant, but a tensor is needed here", at: expr.location)
            }
            let known = Array(env.keys) + block.statements.map(\.name)
            throw error("unknown identifier '\(path[0])'\(suggestion(for: path[0], among: known))", at: expr.location)
        case .binary(.add, let lhs, let rhs):
            let a = try lowerTensor(lhs, env: env, layer: layer)
            let b = try lowerTensor(rhs, env: env, layer: layer)
            return try add(a, b, at: expr.location)
        case .call(let name, let args):
            return try lowerCall(name, args, at: expr.location, env: env, layer: layer)
        case .binary(let op, _, _):
            throw error("'\(op.rawValue)' is not defined on tensors (only '+', the residual add)", at: expr.location)
        default:
            throw error("expected a tensor (a value of the block or an op), found \(expr.kind.summary)", at: expr.location)
        }
    }

    mutating func add(_ a: TensorValue, _ b: TensorValue, at location: SourceLocation) throws -> TensorValue {
        if a.width != b.width {
            throw error("shape mismatch: cannot add [T, \(a.width)] and [T, \(b.width)]", at: location)
        }
        return TensorValue(id: builder.emit(.add, [a.id, b.id], .activations(a.width), at: location), width: a.width)
    }

    /// The ops of the spec language, with their tensor arity and the labels they accept.
    static let signatures: [String: (tensors: [String], labels: [String], required: [String])] = [
        "layernorm": (["x"], [], []),
        "pattention": (["x"], ["site", "tokens", "out", "scale", "norm"], ["site", "tokens"]),
        "attention": (["q", "k", "v"], ["heads", "causal", "rotary"], ["heads"]),
        "add": (["a", "b"], [], []),
    ]

    mutating func lowerCall(_ name: String, _ args: [Argument], at location: SourceLocation,
                            env: [String: TensorValue], layer: Int) throws -> TensorValue {
        guard let signature = Self.signatures[name] else {
            throw error("unknown op '\(name)'\(suggestion(for: name, among: Array(Self.signatures.keys))); the ops are \(Self.signatures.keys.sorted().joined(separator: ", "))", at: location)
        }
        let positional = args.filter { $0.label == nil }
        if let firstLabelled = args.firstIndex(where: { $0.label != nil }), args[firstLabelled...].contains(where: { $0.label == nil }) {
            throw error("positional arguments must come before labelled ones", at: args[firstLabelled...].first { $0.label == nil }!.location)
        }
        if positional.count != signature.tensors.count {
            let expected = signature.tensors.count == 1 ? "1 tensor argument" : "\(signature.tensors.count) tensor arguments"
            throw error("\(name) expects \(expected) (\(signature.tensors.joined(separator: ", "))), got \(positional.count)", at: location)
        }
        var labelled: [String: Argument] = [:]
        for arg in args {
            guard let label = arg.label else { continue }
            if !signature.labels.contains(label) {
                let accepted = signature.labels.isEmpty ? "it takes no labelled arguments" : "expected one of \(signature.labels.joined(separator: ", "))"
                throw error("unknown argument '\(label)' for \(name); \(accepted)", at: arg.location)
            }
            if labelled[label] != nil { throw error("argument '\(label)' is given twice", at: arg.location) }
            labelled[label] = arg
        }
        for label in signature.required where labelled[label] == nil {
            throw error("\(name) needs the argument '\(label):'", at: location)
        }
        let inputs = try positional.map { try lowerTensor($0.value, env: env, layer: layer) }

        switch name {
        case "layernorm":
            let op = LayerNormOp(eps: config.normEps)
            return TensorValue(id: builder.emit(.layerNorm(op), [inputs[0].id], .activations(inputs[0].width), at: location), width: inputs[0].width)
        case "add":
            return try add(inputs[0], inputs[1], at: location)
        case "pattention":
            let siteArg = labelled["site"]!
            guard case .name(let path) = siteArg.value.kind else {
                throw error("'site:' takes a site name such as attention.query or mlp", at: siteArg.value.location)
            }
            let tokens = try positiveInteger(labelled["tokens"]!, what: "token count")
            let out = try labelled["out"].map { try positiveInteger($0, what: "'out' width") } ?? config.hidden
            var scale: Double? = nil
            if let s = labelled["scale"] {
                guard let v = try constants.evaluate(s.value).asDouble, v > 0, v.isFinite else {
                    throw error("'scale:' must be a positive number", at: s.value.location)
                }
                // Both backends apply τ in float32: a value it cannot hold would be inf or 0 there.
                guard v <= Double(Float.greatestFiniteMagnitude), v >= Double(Float.leastNormalMagnitude) else {
                    throw error("'scale:' \(v) does not fit in float32 (\(Float.leastNormalMagnitude) to \(Float.greatestFiniteMagnitude))", at: s.value.location)
                }
                scale = v
            }
            var norm = config.pattentionNorm
            if let n = labelled["norm"] {
                let v = try constants.evaluate(n.value)
                guard case .symbol(let s) = v, let parsed = PattentionNorm(rawValue: s) else {
                    throw error("'norm:' must be one of \(PattentionNorm.allCases.map(\.rawValue).joined(separator: ", ")), found \(v)", at: n.value.location)
                }
                norm = parsed
            }
            if norm == .softmax, let s = labelled["scale"] {
                throw error("'scale:' applies to l2_norm_gelu and gelu_l2_norm sites; a softmax site always multiplies by its token count", at: s.location)
            }
            let op = PattentionOp(site: path.joined(separator: "."), layer: layer, tokens: tokens,
                                  inFeatures: inputs[0].width, outFeatures: out, norm: norm, scale: scale)
            return TensorValue(id: builder.emit(.pattention(op), [inputs[0].id], .activations(out), at: location), width: out)
        case "attention":
            let heads = try positiveInteger(labelled["heads"]!, what: "'heads'")
            let causal = try boolean(labelled["causal"], default: true)
            let rotary = try boolean(labelled["rotary"], default: true)
            let width = inputs[0].width
            for (i, input) in inputs.enumerated() where input.width != width {
                throw error("shape mismatch: attention's \(signature.tensors[i]) is [T, \(input.width)] but q is [T, \(width)]", at: positional[i].location)
            }
            if width % heads != 0 {
                throw error("attention width \(width) is not divisible by heads (\(heads))", at: labelled["heads"]!.value.location)
            }
            let headDim = width / heads
            var q = inputs[0].id, k = inputs[1].id
            let rotaryDims = Int(Double(headDim) * config.rotaryFraction)
            if rotary && rotaryDims > 0 {
                if rotaryDims % 2 != 0 {
                    throw error("rotary needs an even number of dims per head; head_dim \(headDim) × rotary_fraction \(config.rotaryFraction) = \(rotaryDims)", at: labelled["rotary"]?.location ?? location)
                }
                let r = RotaryOp(heads: heads, headDim: headDim, rotaryDims: rotaryDims, base: config.rotaryBase)
                q = builder.emit(.rotary(r), [q], .activations(width), at: location)
                k = builder.emit(.rotary(r), [k], .activations(width), at: location)
            }
            let op = AttentionOp(heads: heads, headDim: headDim, causal: causal, cacheSlot: nextCacheSlot)
            nextCacheSlot += 1
            return TensorValue(id: builder.emit(.attention(op), [q, k, inputs[2].id], .activations(width), at: location), width: width)
        default:
            fatalError("unreachable: op \(name) has a signature but no lowering")
        }
    }

    mutating func positiveInteger(_ arg: Argument, what: String) throws -> Int {
        let v = try constants.evaluate(arg.value)
        guard case .integer(let n) = v else {
            if case .symbol(let s) = v, !s.contains(".") {
                throw error("unknown identifier '\(s)'\(suggestion(for: s, among: constants.names))", at: arg.value.location)
            }
            throw error("\(what) must be an integer, found \(v)", at: arg.value.location)
        }
        if n <= 0 { throw error("\(what) must be positive, got \(n)", at: arg.value.location) }
        if n > SizeLimits.maximumDimension { throw error("\(what) must be at most \(SizeLimits.maximumDimension), got \(n)", at: arg.value.location) }
        return n
    }

    mutating func boolean(_ arg: Argument?, default value: Bool) throws -> Bool {
        guard let arg else { return value }
        guard case .boolean(let b) = try constants.evaluate(arg.value) else {
            throw error("'\(arg.label ?? "")' must be true or false", at: arg.value.location)
        }
        return b
    }
}

extension Expr.Kind {
    var summary: String {
        switch self {
        case .integer(let v): return "integer \(v)"
        case .float(let v): return "number \(v)"
        case .boolean(let v): return "\(v)"
        case .string(let v): return "string \"\(v)\""
        case .name(let p): return "'\(p.joined(separator: "."))'"
        case .negate: return "a negation"
        case .binary(let op, _, _): return "an arithmetic expression ('\(op.rawValue)')"
        case .call(let n, _): return "\(n)(...)"
        }
    }
}
