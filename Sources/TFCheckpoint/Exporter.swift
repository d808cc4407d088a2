import Foundation
import TFIR
import TFSpec
import TFWeights

/// `tfc export`: a tfc model → the official layout (`config.json` + `pytorch_model.bin`, or a
/// DeepSpeed folder), for the official trainer. A model the official code would compute
/// differently is refused with the reason.
public enum Exporter {
    public enum Layout: String, CaseIterable, Sendable {
        case hf, deepspeed
    }

    /// What the export writes, once the model is known to be expressible.
    public struct Plan {
        public var config: OfficialConfig
        /// Sites whose τ is pinned to something other than sqrt(n), as `layers.I.SITE (τ = X, sqrt(n) = Y)`.
        public var pinnedSites: [String]
        /// The model as the official code computes it (τ = sqrt(n) everywhere).
        public var officialGraph: Graph
    }

    public static func plan(_ graph: Graph, spec path: String) throws -> Plan {
        func refuse(_ message: String) -> CheckpointError { CheckpointError(path: path, "cannot export: \(message)") }
        let m = graph.config
        let sites = graph.pattentionSites
        let siteNames = ["attention.query", "attention.key", "attention.value", "attention.proj", "mlp"]
        var tokens: [String: Int] = [:]
        var pinned: [String] = []
        for site in sites {
            guard siteNames.contains(site.site) else {
                throw refuse("site '\(site.site)' is not one of the official layer's (\(siteNames.joined(separator: ", ")))")
            }
            if site.norm != m.pattentionNorm {
                throw refuse("site '\(site.site)' uses \(site.norm.rawValue) while the model uses \(m.pattentionNorm.rawValue): the official code has one norm_activation_type for every site")
            }
            if site.inFeatures != m.hidden || site.outFeatures != m.hidden {
                throw refuse("site '\(site.site)' maps \(site.inFeatures) → \(site.outFeatures); the official Pattention sites map hidden → hidden (\(m.hidden))")
            }
            if let first = tokens[site.site], first != site.tokens {
                throw refuse("layer \(site.layer)'s \(site.site) has \(site.tokens) tokens, layer 0's \(first): the official code gives every layer the same")
            }
            tokens[site.site] = site.tokens
            if let scale = site.scale, scale != Double(site.tokens).squareRoot() {
                pinned.append("layers.\(site.layer).\(site.site) (τ = \(scale), sqrt(n) = \(String(format: "%.4g", Double(site.tokens).squareRoot())))")
            }
        }
        guard let qkv = tokens["attention.query"], let proj = tokens["attention.proj"], let ffn = tokens["mlp"] else {
            throw refuse("the block lacks the official layer's sites (\(siteNames.joined(separator: ", ")))")
        }
        if tokens["attention.key"] != qkv || tokens["attention.value"] != qkv {
            throw refuse("query, key and value have \(qkv), \(tokens["attention.key"] ?? 0) and \(tokens["attention.value"] ?? 0) tokens: the official code has one qkv_slot_num")
        }
        if m.rotaryDims % 2 != 0 { throw refuse("rotary_fraction \(m.rotaryFraction) gives an odd number of rotary dims") }

        var config = OfficialConfig(layers: m.layers, hidden: m.hidden, heads: m.heads, qkvTokens: qkv, projTokens: proj, ffnTokens: ffn, context: m.context)
        config.rotaryFraction = m.rotaryFraction
        config.rotaryBase = m.rotaryBase
        config.tieEmbeddings = m.tieEmbeddings
        config.finalNormAffine = m.finalNormAffine
        config.pattentionNorm = m.pattentionNorm
        config.normEps = m.normEps

        // The block must be one of the official layer's forms: compare the lowered graphs.
        let ours = withoutPinnedScales(graph)
        for parallel in [false, true] {
            for rotary in [true, false] {
                var candidate = config
                candidate.parallelBlock = parallel
                candidate.rotary = rotary
                let text = SpecText.render(name: m.name, config: candidate, vocab: m.vocab, endToken: m.endToken, tokenizerFile: nil, comment: "official")
                guard let official = try? lower(try parse(text, path: path)) else { continue }
                if sameComputation(ours, official) {
                    return Plan(config: candidate, pinnedSites: pinned, officialGraph: official)
                }
            }
        }
        throw refuse("the block is not one the official layer computes (pre-norm attention then MLP, or the gpt_j_residual parallel form, with causal attention over \(m.heads) heads and no other ops)")
    }

    /// The graph with every pinned τ released to sqrt(n).
    static func withoutPinnedScales(_ graph: Graph) -> Graph {
        var g = graph
        for i in g.instructions.indices {
            if case .pattention(var p) = g.instructions[i].op { p.scale = nil; g.instructions[i].op = .pattention(p) }
        }
        return g
    }

    static func sameComputation(_ a: Graph, _ b: Graph) -> Bool {
        guard a.instructions.count == b.instructions.count, a.output == b.output else { return false }
        return zip(a.instructions, b.instructions).allSatisfy { $0.op == $1.op && $0.operands == $1.operands && $0.type == $1.type && $0.result == $1.result }
    }

    /// Writes the export; returns the files written. `weights` must hold the graph's parameters.
    public static func write(_ plan: Plan, graph: Graph, weights: WeightFile, to directory: String, layout: Layout,
                             inputs: [String] = []) throws -> [String] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw CheckpointError(path: directory, "exists and is not a folder")
        }
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CheckpointError(path: directory, "cannot create the folder: \(error.localizedDescription)")
        }
        func join(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let states = join("global_step0/mp_rank_00_model_states.pt")
        if layout == .deepspeed {
            let step = join("global_step0")
            do { try fm.createDirectory(atPath: step, withIntermediateDirectories: true) } catch {
                throw CheckpointError(path: step, "cannot create the folder: \(error.localizedDescription)")
            }
        }
        // tfc's output policy: every output checked before the first is written; none replaces an input.
        let paths = layout == .hf ? [join("pytorch_model.bin"), join("config.json")] : [states, join("latest"), join("config.json")]
        let targets = try Importer.checkOutputs(paths.map { (role: "-o", path: $0) },
                                                inputs: inputs.map { (what: "spec", path: $0) } + [(what: "weights file", path: weights.path)])

        var entries: [(String, PickleWriter.Value)] = []
        var storages: [TorchZipWriter.Storage] = []
        for (index, parameter) in graph.parameters.enumerated() {
            let key = OfficialNames.official(parameter.name, layers: plan.config.layers)!
            guard let tensor = weights.tensor(parameter.name) else { throw CheckpointError(path: weights.path, "no tensor '\(parameter.name)'") }
            entries.append((key, .tensor(storageKey: String(index), dtype: .float32, shape: parameter.shape)))
            let floats = tensor.floats
            storages.append(TorchZipWriter.Storage(key: String(index), size: floats.count * 4) { offset, count in
                Data(bytes: UnsafeRawPointer(floats.baseAddress!) + offset, count: count)
            })
        }
        let stateDict = PickleWriter.Value.orderedDict(entries)
        let json = try jsonText(plan.config)
        switch layout {
        case .hf:
            var pickle = PickleWriter()
            pickle.write(stateDict)
            try TorchZipWriter.write(pickle: pickle.bytes, storages: storages, to: targets[0])
        case .deepspeed:
            var pickle = PickleWriter()
            pickle.write(.dict([("module", stateDict), ("buffer_names", .list([])), ("optimizer", .none), ("lr_scheduler", .none),
                                ("csr_tensor_module_names", .list([])), ("skipped_steps", .int(0)), ("global_steps", .int(0)),
                                ("global_samples", .int(0)), ("dp_world_size", .int(1)), ("mp_world_size", .int(1)), ("iteration", .int(0))]))
            try TorchZipWriter.write(pickle: pickle.bytes, storages: storages, to: targets[0])
            try Importer.writeText("global_step0\n", to: targets[1])
        }
        try Importer.writeText(json, to: targets[targets.count - 1])
        return paths
    }

    /// `config.json`, keys in the official order.
    static func jsonText(_ config: OfficialConfig) throws -> String {
        let parts = try config.jsonKeys.map { key, value -> String in
            let data = try JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed])
            let text = String(decoding: data, as: UTF8.self)
            return "  \"\(key)\": " + String(text.dropFirst().dropLast())
        }
        return "{\n" + parts.joined(separator: ",\n") + "\n}\n"
    }
}
