import ArgumentParser
import Foundation
import TFCheckpoint

/// `tfc import SRC -o NAME`: a released or trainer checkpoint → NAME.tfs + NAME.safetensors.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an official TokenFormer checkpoint (Hugging Face or DeepSpeed) as a spec and weights.",
        discussion: """
        SRC is a Hugging Face folder (config.json + pytorch_model.bin), a DeepSpeed checkpoint folder \
        (latest → global_stepN/, mp_rank_00_model_states.pt or layer_XX-model_00-model_states.pt), or one \
        .bin/.pt file with --config. Writes NAME.tfs, NAME.safetensors (float32, tfc's names) and, when \
        the source has a tokenizer.json, NAME.tokenizer.json. The pickle is read by a restricted \
        unpickler that never runs code.
        """)

    @ArgumentParser.Argument(help: "The checkpoint folder or file.") var source: String
    @Option(name: .shortAndLong, help: "Output name: writes NAME.tfs and NAME.safetensors.") var output: String
    @Option(help: "The model config (config.json, or the trainer's YAML) when SRC has none.") var config: String?
    @Option(help: "The DeepSpeed step to import (global_stepN); default: the one 'latest' names.") var step: Int?

    func run() throws {
        try reportingErrors {
            let start = Date()
            let result = try Importer.run(source: source, output: output, config: config, step: step)
            let what = result.source.step.map { "\(result.source.layout.rawValue), step \($0)" } ?? result.source.layout.rawValue
            print(String(format: "imported %@ (%@): %@ parameters in %d tensors, in %.2f s",
                         source, what, grouped(result.parameters), result.tensors, Date().timeIntervalSince(start)))
            print("wrote \(result.specPath), \(result.weightsPath)" + (result.tokenizerPath.map { ", \($0)" } ?? ""))
        }
    }
}
