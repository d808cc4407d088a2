import Foundation
import TFIR
import TFSpec
import TFWeights

/// `tfc import`: an official checkpoint → `NAME.tfs`, `NAME.safetensors` (tfc's names, float32)
/// and `NAME.tokenizer.json`. Tensor data goes from the mapped checkpoint to the output a chunk
/// at a time, so memory stays small whatever the checkpoint's size.
public enum Importer {
    public struct Result {
        public var source: CheckpointSource
        public var specPath: String
        public var weightsPath: String
        public var tokenizerPath: String?
        public var parameters: Int
        public var tensors: Int
        public var config: ModelConfig
    }

    /// Elements per copy from the checkpoint (16 MiB of float32).
    static let chunk = 1 << 22

    public static func run(source path: String, output name: String, config: String? = nil, step: Int? = nil) throws -> Result {
        let source = try CheckpointSource(path: path, config: config, step: step)
        let official = try OfficialConfig(keys: source.configKeys, path: source.configPath)

        // The vocabulary is the embedding's rows (the config does not say).
        let embedKey = OfficialNames.official("embed.weight", layers: official.layers)!
        guard let embed = source.tensors[embedKey] else {
            throw CheckpointError(path: path, "the state dict has no embedding '\(embedKey)'")
        }
        guard embed.tensor.shape.count == 2, embed.tensor.shape[0] >= 1 else {
            throw CheckpointError(path: path, "'\(embedKey)' has shape \(embed.tensor.shape), expected [vocab, \(official.hidden)]")
        }
        let vocab = embed.tensor.shape[0]
        let endToken = try source.tokenizerPath.flatMap { try Self.endToken(tokenizer: $0) }.flatMap { $0 < vocab ? $0 : nil }

        let modelName = (name as NSString).lastPathComponent
        let what = source.step.map { "\(source.layout.rawValue), step \($0)" } ?? source.layout.rawValue
        // NAME.tokenizer.json sits beside NAME.tfs, so the spec names it by its file name alone.
        let tokenizerFile = source.tokenizerPath.map { _ in modelName + ".tokenizer.json" }
        let text = SpecText.render(name: modelName, config: official, vocab: vocab, endToken: endToken, tokenizerFile: tokenizerFile,
                                   comment: "Imported by tfc import from \((path as NSString).lastPathComponent) (\(what)).")
        let specPath = name + ".tfs", weightsPath = name + ".safetensors"
        let graph: Graph
        do {
            graph = try lower(try parse(text, path: specPath))
        } catch {
            throw CheckpointError(path: source.configPath, "the config gives no valid model: \(error)")
        }

        // Every tensor the spec needs, found and shaped right; everything else known to be unused.
        let parameters = graph.parameters
        var missing: [String] = [], misshaped: [String] = [], used = Set<String>()
        var entries: [(Parameter, CheckpointSource.Entry, String)] = []
        for parameter in parameters {
            let key = OfficialNames.official(parameter.name, layers: official.layers)!
            guard let entry = source.tensors[key] else { missing.append("\(key) \(parameter.shape)"); continue }
            used.insert(key)
            if entry.tensor.shape != parameter.shape {
                misshaped.append("\(key) is \(entry.tensor.shape), the config needs \(parameter.shape)")
                continue
            }
            entries.append((parameter, entry, key))
        }
        let tiedCopy = "sequential.\(official.layers + 4).word_embeddings.weight"
        let unknown = source.tensors.keys.filter { !used.contains($0) && !OfficialNames.isIgnorable($0) && !(official.tieEmbeddings && $0 == tiedCopy) }.sorted()
        if !missing.isEmpty || !misshaped.isEmpty || !unknown.isEmpty {
            func list(_ items: [String]) -> String { items.prefix(6).joined(separator: ", ") + (items.count > 6 ? " and \(items.count - 6) more" : "") }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(list(missing))") }
            if !misshaped.isEmpty { parts.append("mis-shaped \(list(misshaped))") }
            if !unknown.isEmpty { parts.append("unknown \(list(unknown))") }
            throw CheckpointError(path: path, "the state dict does not match the config \(source.configPath): " + parts.joined(separator: "; "))
        }

        // tfc's output policy: every output checked before the first is written; none replaces an input.
        let tokenizerOut = source.tokenizerPath.map { _ in name + ".tokenizer.json" }
        let targets = try Self.checkOutputs([("-o", specPath), ("-o", weightsPath)] + (tokenizerOut.map { [("-o", $0)] } ?? []),
                                            inputs: source.inputFiles.map { (what: $0 == source.configPath ? "config" : $0 == source.tokenizerPath ? "tokenizer" : "checkpoint", path: $0) })

        var writer = SafetensorsWriter(metadata: ["tfc.model": modelName, "tfc.import.source": (path as NSString).lastPathComponent])
        for (parameter, entry, key) in entries {
            let checkpoint = entry.checkpoint, tensor = entry.tensor
            writer.add(parameter.name, shape: parameter.shape, chunk: chunk) { offset, buffer in
                try checkpoint.copyFloats(tensor, name: key, from: offset, into: buffer)
            }
        }
        do { try writer.write(to: targets[1]) } catch let error as WeightError {
            throw CheckpointError(path: error.path, error.message)
        }
        try writeText(text, to: targets[0])
        if let from = source.tokenizerPath, targets.count == 3 {
            guard let data = FileManager.default.contents(atPath: from) else { throw CheckpointError(path: from, "cannot read") }
            try writeBytes(Array(data), to: targets[2])
        }
        return Result(source: source, specPath: specPath, weightsPath: weightsPath, tokenizerPath: tokenizerOut,
                      parameters: graph.parameterCount, tensors: parameters.count, config: graph.config)
    }

    /// The id of `<|endoftext|>` in a Hugging Face `tokenizer.json` (added tokens, then the vocab).
    static func endToken(tokenizer path: String) throws -> Int? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CheckpointError(path: path, "not a tokenizer.json (cannot parse its JSON)")
        }
        let name = "<|endoftext|>"
        if let added = object["added_tokens"] as? [[String: Any]],
           let token = added.first(where: { $0["content"] as? String == name }), let id = token["id"] as? Int { return id }
        if let model = object["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Any], let id = vocab[name] as? Int { return id }
        return nil
    }

    /// Checks outputs with tfc's output policy, as checkpoint errors.
    static func checkOutputs(_ outputs: [(role: String, path: String)], inputs: [(what: String, path: String)]) throws -> [OutputTarget] {
        do { return try OutputPolicy.check(outputs, inputs: inputs) } catch let error as OutputError {
            throw CheckpointError(path: error.path, error.message)
        }
    }

    static func writeText(_ text: String, to target: OutputTarget) throws { try writeBytes(Array(text.utf8), to: target) }

    static func writeBytes(_ bytes: [UInt8], to target: OutputTarget) throws {
        do {
            let file = try AtomicFile(target)
            do { try file.write(bytes); try file.commit() } catch { file.abandon(); throw error }
        } catch let error as OutputError {
            throw CheckpointError(path: error.path, error.message)
        }
    }
}

