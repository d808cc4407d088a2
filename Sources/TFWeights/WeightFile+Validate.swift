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
        if !missing.isEmpty { parts.append("missing " + abbreviated(missing)) }
        if !unexpected.isEmpty { parts.append("unexpected " + abbreviated(unexpected)) }
        if misShaped.count <= Self.listAll { return parts + misShaped }
        return parts + misShaped.prefix(Self.listShown) + ["\(grouped(misShaped.count - Self.listShown)) more mis-shaped"]
    }

    /// Up to `listAll` names of a kind are listed; of more (a file of a million names would make a
    /// message of megabytes), `listShown` and a count.
    static let listAll = 20
    static let listShown = 10

    private func abbreviated(_ names: [String]) -> String {
        if names.count <= Self.listAll { return names.joined(separator: ", ") }
        return names.prefix(Self.listShown).joined(separator: ", ") + ", … and \(grouped(names.count - Self.listShown)) more"
    }

    /// 1234567 → "1,234,567".
    private func grouped(_ n: Int) -> String {
        var digits = String(n), out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return digits + out
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
