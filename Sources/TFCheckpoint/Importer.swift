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
        let text = SpecText.render(name: modelName, config: official, vocab: vocab, endToken: endToken,
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

        // Outputs never replace an input.
        let tokenizerOut = source.tokenizerPath.map { _ in name + ".tokenizer.json" }
        for output in [specPath, weightsPath] + (tokenizerOut.map { [$0] } ?? []) {
            if let input = source.inputFiles.first(where: { sameFile($0, output) }) {
                throw CheckpointError(path: output, "would replace the input \(input); choose another -o")
            }
        }

        var writer = SafetensorsWriter(metadata: ["tfc.model": modelName, "tfc.import.source": (path as NSString).lastPathComponent])
        for (parameter, entry, key) in entries {
            let checkpoint = entry.checkpoint, tensor = entry.tensor
            writer.add(parameter.name, shape: parameter.shape, chunk: chunk) { offset, buffer in
                try checkpoint.copyFloats(tensor, name: key, from: offset, into: buffer)
            }
        }
        do { try writer.write(to: weightsPath) } catch let error as WeightError {
            throw CheckpointError(path: error.path, error.message)
        }
        try writeText(text, to: specPath)
        if let from = source.tokenizerPath, let to = tokenizerOut {
            guard let data = FileManager.default.contents(atPath: from) else { throw CheckpointError(path: from, "cannot read") }
            do { try data.write(to: URL(fileURLWithPath: to), options: .atomic) } catch {
                throw CheckpointError(path: to, "cannot write: \(error.localizedDescription)")
            }
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

    static func writeText(_ text: String, to path: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CheckpointError(path: path, "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Whether two paths name the same existing file.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}
