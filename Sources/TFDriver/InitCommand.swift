import ArgumentParser
import Foundation
import TFIR
import TFWeights

/// `tfc init SPEC -o W.safetensors [--seed N]`: fresh weights with the reference initialisation.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write randomly initialised weights for a spec.",
        discussion: """
        Key parameter tokens and the embedding: normal(0, 0.02); value parameter tokens:
        normal(0, 2 / layers / sqrt(hidden)); an affine final norm starts at weight 1, bias 0.
        Each tensor's values depend only on the seed and its name.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(name: .shortAndLong, help: "Output weights file (.safetensors).") var output: String
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        try reportingErrors {
            let target = try OutputPolicy.check(role: "-o", path: output, inputs: [(what: "spec", path: spec)])
            let loaded = try LoadedSpec(path: spec)
            let start = Date()
            try writeInitialWeights(loaded.graph, seed: seed, to: target)
            let count = loaded.graph.parameterCount
            print(String(format: "wrote %@ parameters (%d tensors, %.1f MiB) to %@ in %.2f s",
                         grouped(count), loaded.graph.parameters.count, Double(count) * 4 / 1_048_576, output, Date().timeIntervalSince(start)))
        }
    }
}

/// Writes a safetensors file with every parameter of `graph` initialised as its `Parameter` says.
func writeInitialWeights(_ graph: Graph, seed: UInt64, to target: OutputTarget) throws {
    var writer = SafetensorsWriter(metadata: ["tfc.model": graph.config.name, "tfc.init.seed": String(seed)])
    for parameter in graph.parameters {
        switch parameter.initialization {
        case .normal(let std):
            let spec = TensorSpec(name: parameter.name, shape: parameter.shape, initStd: Float(std))
            writer.add(parameter.name, shape: parameter.shape) { WeightInit.fill($0, for: spec, seed: seed) }
        case .constant(let value):
            writer.add(parameter.name, shape: parameter.shape) { $0.update(repeating: Float(value)) }
        }
    }
    try writer.write(to: target)
}
