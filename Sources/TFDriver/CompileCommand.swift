import ArgumentParser
import Foundation
import TFIR
import TFPasses
import TFSpec

/// The stages `tfc compile --emit` can print.
enum EmitKind: String, ExpressibleByArgument, CaseIterable {
    case ast, ir, fusedIR = "fused-ir", plan
}

/// `tfc compile SPEC --emit KIND`: print a stage of the pipeline.
struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a spec; --emit prints a stage of the pipeline.",
        discussion: "Stages: \(EmitKind.allCases.map(\.rawValue).joined(separator: ", ")).")

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "Print this stage: \(EmitKind.allCases.map(\.rawValue).joined(separator: "|")).") var emit: EmitKind

    func run() throws {
        try reportingErrors {
            let loaded = try LoadedSpec(path: spec)
            switch emit {
            case .ast: Swift.print(loaded.spec.printed, terminator: "")
            case .ir: Swift.print(loaded.graph.text, terminator: "")
            case .fusedIR: Swift.print(try PassPipeline.fusion.run(loaded.graph).text, terminator: "")
            case .plan:
                let fused = try PassPipeline.fusion.run(loaded.graph)
                Swift.print(MemoryPlan(fused).text(for: fused, rows: loaded.graph.config.context), terminator: "")
            }
        }
    }
}
