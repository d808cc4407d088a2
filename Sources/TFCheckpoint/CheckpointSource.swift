import Foundation

/// What `tfc import` reads: a Hugging Face folder (`config.json` + `pytorch_model.bin`), a
/// DeepSpeed checkpoint folder (`latest` → `global_stepN/`, one `mp_rank_00_model_states.pt` with
/// the state dict under `module`, or one `layer_XX-model_00-model_states.pt` per pipeline layer),
/// or one `.bin`/`.pt` file with a config given apart.
public struct CheckpointSource {
    public enum Layout: String, Sendable {
        case huggingFace = "Hugging Face folder"
        case deepSpeed = "DeepSpeed checkpoint"
        case deepSpeedLayers = "DeepSpeed per-layer checkpoint"
        case file = "PyTorch file"
    }

    /// A tensor of the state dict, by its key in the sequential wrapper's numbering.
    public struct Entry {
        public var tensor: TorchTensor
        public var checkpoint: TorchCheckpoint
    }

    public let path: String
    public let layout: Layout
    /// The training step, for DeepSpeed checkpoints.
    public let step: Int?
    public let configKeys: [String: Any]
    /// Where the config came from, for error messages.
    public let configPath: String
    public let tensors: [String: Entry]
    public let tokenizerPath: String?
    /// Every file read (outputs must not replace one).
    public let inputFiles: [String]

    public init(path: String, config explicitConfig: String?, step requestedStep: Int?) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CheckpointError(path: path, "no such file or folder") }
        func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }
        func exists(_ p: String) -> Bool { fm.fileExists(atPath: p) }

        var files: [String] = []
        var checkpoints: [(TorchCheckpoint, prefixIndex: Int?)] = []
        var namespaceConfig: [String: Any]? = nil
        var folderConfig: String? = nil
        var step: Int? = nil
        let layout: Layout
        var tokenizer: String? = nil
        var yamlConfigs: [String] = []

        if !isDirectory.boolValue {
            if requestedStep != nil { throw CheckpointError(path: path, "--step applies to a DeepSpeed checkpoint folder, not to a file") }
            layout = .file
            let folder = (path as NSString).deletingLastPathComponent
            let dir = folder.isEmpty ? "." : folder
            if exists(join(dir, "config.json")) { folderConfig = join(dir, "config.json") }
            if exists(join(dir, "tokenizer.json")) { tokenizer = join(dir, "tokenizer.json") }
            checkpoints.append((try TorchCheckpoint(path: path), nil))
            files.append(path)
        } else if exists(join(path, "pytorch_model.bin")) {
            if requestedStep != nil { throw CheckpointError(path: path, "--step applies to a DeepSpeed checkpoint folder; this is a Hugging Face folder") }
            layout = .huggingFace
            if exists(join(path, "config.json")) { folderConfig = join(path, "config.json") }
            if exists(join(path, "tokenizer.json")) { tokenizer = join(path, "tokenizer.json") }
            let file = join(path, "pytorch_model.bin")
            checkpoints.append((try TorchCheckpoint(path: file), nil))
            files.append(file)
        } else {
            // A DeepSpeed folder, or one of its global_stepN folders.
            var stepFolder = path
            let names = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            let isStepFolder = names.contains("mp_rank_00_model_states.pt") || names.contains { Self.layerIndex($0) != nil }
            if !isStepFolder {
                let steps = names.compactMap { $0.hasPrefix("global_step") ? Int($0.dropFirst("global_step".count)) : nil }.sorted()
                if let requestedStep {
                    guard steps.contains(requestedStep) else {
                        throw CheckpointError(path: path, "no global_step\(requestedStep) (steps here: \(steps.isEmpty ? "none" : steps.map(String.init).joined(separator: ", ")))")
                    }
                    step = requestedStep
                } else if exists(join(path, "latest")) {
                    let text = (try? String(contentsOfFile: join(path, "latest"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                    guard text.hasPrefix("global_step"), let n = Int(text.dropFirst("global_step".count)) else {
                        throw CheckpointError(path: join(path, "latest"), "expected a name like global_step1000, found '\(text.prefix(60))'")
                    }
                    step = n
                } else if let last = steps.last {
                    step = last
                } else {
                    throw CheckpointError(path: path, "neither a Hugging Face folder (config.json + pytorch_model.bin) nor a DeepSpeed checkpoint folder (latest, global_stepN/)")
                }
                stepFolder = join(path, "global_step\(step!)")
                guard fm.fileExists(atPath: stepFolder, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw CheckpointError(path: stepFolder, "the checkpoint folder named by 'latest' does not exist")
                }
                if exists(join(path, "config.json")) { folderConfig = join(path, "config.json") }
                if exists(join(path, "tokenizer.json")) { tokenizer = join(path, "tokenizer.json") }
            } else {
                step = Int(((path as NSString).standardizingPath as NSString).lastPathComponent.dropFirst("global_step".count))
                if let requestedStep, requestedStep != step { throw CheckpointError(path: path, "--step \(requestedStep) does not name this step folder") }
            }
            if folderConfig == nil, exists(join(stepFolder, "config.json")) { folderConfig = join(stepFolder, "config.json") }
            let configs = join(stepFolder, "configs")
            yamlConfigs = ((try? fm.contentsOfDirectory(atPath: configs)) ?? []).filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted().map { join(configs, $0) }

            let stepNames = (try? fm.contentsOfDirectory(atPath: stepFolder)) ?? []
            let layerFiles = stepNames.compactMap { name in Self.layerIndex(name).map { (name, $0) } }.sorted { $0.1 < $1.1 }
            let modelStates = join(stepFolder, "mp_rank_00_model_states.pt")
            var states: TorchCheckpoint? = nil
            if exists(modelStates) {
                let checkpoint = try TorchCheckpoint(path: modelStates)
                files.append(modelStates)
                states = checkpoint
                if let root = checkpoint.root.asDict, let args = root["args"] { namespaceConfig = ConfigFile.keys(fromNamespace: args) }
            }
            if !layerFiles.isEmpty {
                layout = .deepSpeedLayers
                for (name, index) in layerFiles {
                    let file = join(stepFolder, name)
                    checkpoints.append((try TorchCheckpoint(path: file), index))
                    files.append(file)
                }
            } else if let states {
                layout = .deepSpeed
                guard let module = states.root.asDict?["module"], module.asDict != nil else {
                    throw CheckpointError(path: modelStates, "no state dict under 'module' (and no layer_XX-model_00-model_states.pt files)")
                }
                checkpoints.append((states, nil))
            } else {
                throw CheckpointError(path: stepFolder, "no mp_rank_00_model_states.pt and no layer_XX-model_00-model_states.pt files")
            }
        }

        // The config: --config, else config.json, else the trainer's YAML, else the saved arguments.
        let keys: [String: Any], configPath: String
        if let explicitConfig {
            keys = try ConfigFile.read(explicitConfig); configPath = explicitConfig
        } else if let folderConfig {
            keys = try ConfigFile.read(folderConfig); configPath = folderConfig
        } else if !yamlConfigs.isEmpty {
            var merged: [String: Any] = [:]
            for file in yamlConfigs { merged.merge(try ConfigFile.read(file)) { $1 } }
            keys = merged; configPath = yamlConfigs.count == 1 ? yamlConfigs[0] : (yamlConfigs[0] as NSString).deletingLastPathComponent
        } else if let namespaceConfig, namespaceConfig["num_layers"] != nil {
            keys = namespaceConfig; configPath = files.first { $0.hasSuffix("mp_rank_00_model_states.pt") }! + " (args)"
        } else {
            throw CheckpointError(path: path, layout == .file ? "a single checkpoint file needs --config FILE (config.json or the trainer's YAML)"
                                                              : "no config.json here; give one with --config FILE")
        }

        var tensors: [String: Entry] = [:]
        for (checkpoint, layerIndex) in checkpoints {
            guard let dict = Self.stateDict(checkpoint.root) else {
                throw CheckpointError(path: checkpoint.path, "holds \(checkpoint.root), not a state dict of tensors")
            }
            for (key, value) in dict.entries {
                guard let name = key.asString, case .tensor(let tensor) = value else { continue }
                let full = layerIndex.map { OfficialNames.sequentialKey(layerFile: $0, key: name) } ?? OfficialNames.normalized(name)
                tensors[full] = Entry(tensor: tensor, checkpoint: checkpoint)
            }
        }
        self.layout = layout
        self.step = step
        self.configKeys = keys
        self.configPath = configPath
        self.tensors = tensors
        self.tokenizerPath = tokenizer
        self.inputFiles = files + [configPath] + (tokenizer.map { [$0] } ?? [])
    }

    /// `layer_05-model_00-model_states.pt` → 5.
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("layer_"), name.hasSuffix("-model_00-model_states.pt") else { return nil }
        return Int(name.dropFirst("layer_".count).prefix { $0.isNumber })
    }

    /// The state dict in a checkpoint's root: the root itself, or a trainer's `module` / `state_dict`.
    static func stateDict(_ root: PickleValue) -> PickleDict? {
        guard let dict = root.asDict else { return nil }
        for key in ["module", "state_dict", "model"] {
            if let inner = dict[key]?.asDict { return inner }
        }
        return dict
    }
}
