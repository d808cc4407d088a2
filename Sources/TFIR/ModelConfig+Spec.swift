import TFSpec

/// The `model { ... }` fields a spec may set, with their defaults.
enum ModelField: String, CaseIterable {
    case vocab, hidden, heads, layers, context
    case tieEmbeddings = "tie_embeddings"
    case pattention
    case normEps = "norm_eps"
    case finalNorm = "final_norm"
    case rotaryFraction = "rotary_fraction"
    case rotaryBase = "rotary_base"
    case endToken = "end_token"
    case tokenizer

    static let required: [ModelField] = [.vocab, .hidden, .heads, .layers, .context]
}

extension ModelConfig {
    /// Evaluates and checks the model fields.
    static func evaluate(_ model: ModelDecl, in constants: inout ConstantEvaluator) throws -> ModelConfig {
        var fields: [ModelField: Binding] = [:]
        for field in model.fields {
            guard let known = ModelField(rawValue: field.name) else {
                throw constants.error("unknown model field '\(field.name)'\(suggestion(for: field.name, among: ModelField.allCases.map(\.rawValue))); the fields are \(ModelField.allCases.map(\.rawValue).joined(separator: ", "))", at: field.location)
            }
            fields[known] = field
        }
        for field in ModelField.required where fields[field] == nil {
            throw constants.error("model '\(model.name)' is missing the field '\(field.rawValue)'", at: model.location)
        }

        func integer(_ field: ModelField, minimum: Int = 1) throws -> Int {
            let binding = fields[field]!
            guard case .integer(let v) = try constants.value(of: field.rawValue, at: binding.location) else {
                throw constants.error("'\(field.rawValue)' must be an integer, found \(try constants.value(of: field.rawValue, at: binding.location))", at: binding.value.location)
            }
            if v < minimum { throw constants.error("'\(field.rawValue)' must be at least \(minimum), got \(v)", at: binding.value.location) }
            let maximum = field == .layers ? SizeLimits.maximumLayers : SizeLimits.maximumDimension
            if v > maximum { throw constants.error("'\(field.rawValue)' must be at most \(maximum), got \(v)", at: binding.value.location) }
            return v
        }
        func number(_ field: ModelField, default value: Double) throws -> Double {
            guard let binding = fields[field] else { return value }
            let v = try constants.value(of: field.rawValue, at: binding.location)
            guard let d = v.asDouble else { throw constants.error("'\(field.rawValue)' must be a number, found \(v)", at: binding.value.location) }
            return d
        }
        func choice(_ field: ModelField, _ options: [String], default value: String) throws -> String {
            guard let binding = fields[field] else { return value }
            let v = try constants.value(of: field.rawValue, at: binding.location)
            let text: String
            switch v {
            case .symbol(let s), .string(let s): text = s
            case .boolean(let b): text = b ? "true" : "false"
            default: text = "\(v)"
            }
            guard options.contains(text) else {
                throw constants.error("'\(field.rawValue)' must be one of \(options.joined(separator: ", ")), found \(text)", at: binding.value.location)
            }
            return text
        }

        var config = ModelConfig(name: model.name,
                                 vocab: try integer(.vocab), hidden: try integer(.hidden), heads: try integer(.heads),
                                 layers: try integer(.layers), context: try integer(.context))
        config.tieEmbeddings = try choice(.tieEmbeddings, ["true", "false"], default: "true") == "true"
        config.pattentionNorm = PattentionNorm(rawValue: try choice(.pattention, PattentionNorm.allCases.map(\.rawValue), default: "l2_norm_gelu"))!
        config.finalNormAffine = try choice(.finalNorm, ["plain", "affine"], default: "plain") == "affine"
        config.normEps = try number(.normEps, default: 1e-5)
        config.rotaryFraction = try number(.rotaryFraction, default: 0.25)
        config.rotaryBase = try number(.rotaryBase, default: 10000)
        if fields[.endToken] != nil { config.endToken = try integer(.endToken, minimum: 0) }
        if let binding = fields[.tokenizer] {
            guard case .string(let path) = try constants.value(of: ModelField.tokenizer.rawValue, at: binding.location), !path.isEmpty else {
                throw constants.error("'tokenizer' must be a non-empty string naming a tokenizer.json (relative to the spec file)", at: binding.value.location)
            }
            config.tokenizer = path
        }

        if config.hidden % config.heads != 0 {
            throw constants.error("hidden (\(config.hidden)) is not divisible by heads (\(config.heads))", at: fields[.heads]!.value.location)
        }
        if !(config.normEps > 0) {
            throw constants.error("'norm_eps' must be positive, got \(config.normEps)", at: fields[.normEps]!.value.location)
        }
        if !(0...1).contains(config.rotaryFraction) {
            throw constants.error("'rotary_fraction' must be between 0 and 1, got \(config.rotaryFraction)", at: fields[.rotaryFraction]!.value.location)
        }
        if config.rotaryDims % 2 != 0 {
            throw constants.error("rotary_fraction \(config.rotaryFraction) gives \(config.rotaryDims) rotary dims per head (head_dim \(config.headDim)); it must be even", at: (fields[.rotaryFraction] ?? fields[.heads]!).value.location)
        }
        if !(config.rotaryBase > 0) {
            throw constants.error("'rotary_base' must be positive, got \(config.rotaryBase)", at: fields[.rotaryBase]!.value.location)
        }
        if let end = config.endToken, end >= config.vocab {
            throw constants.error("'end_token' \(end) is outside the vocabulary (0..<\(config.vocab))", at: fields[.endToken]!.value.location)
        }
        return config
    }
}

public extension ModelConfig {
    var headDim: Int { hidden / heads }
    /// `int(head_dim · rotary_fraction)`, as the reference computes it.
    var rotaryDims: Int { Int(Double(headDim) * rotaryFraction) }
}
