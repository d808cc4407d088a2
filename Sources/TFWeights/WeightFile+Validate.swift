extension WeightFile {
    /// Everything that differs between this file and `specs`, one phrase per group, in the
    /// order: missing (spec order), unexpected (sorted), mis-shaped (spec order). Empty if
    /// the file matches.
    public func mismatches(against specs: [TensorSpec]) -> [String] {
        let expected = Set(specs.map(\.name))
        var missing: [String] = [], misShaped: [String] = []
        for spec in specs {
            guard let tensor = tensor(spec.name) else { missing.append(spec.name); continue }
            if tensor.shape != spec.shape {
                misShaped.append("\(spec.name) has shape \(formatShape(tensor.shape)), spec expects \(formatShape(spec.shape))")
            }
        }
        let unexpected = names.filter { !expected.contains($0) }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { parts.append("unexpected " + unexpected.joined(separator: ", ")) }
        return parts + misShaped
    }

    /// Throws one `WeightError` listing every missing, unexpected and mis-shaped tensor, e.g.
    /// `W.safetensors: error: weights do not match the spec: missing a; unexpected b; c has shape [1], spec expects [2]`.
    public func validate(against specs: [TensorSpec]) throws {
        let problems = mismatches(against: specs)
        if !problems.isEmpty {
            throw WeightError(path: path, message: "weights do not match the spec: " + problems.joined(separator: "; "))
        }
    }
}
