import ArgumentParser
import Foundation
import TFIR
import TFPasses
import TFAutodiff
import TFCodegen
import TFSpec

/// The stages `tfc compile --emit` can print.
enum EmitKind: String, ExpressibleByArgument, CaseIterable {
    case ast, ir, fusedIR = "fused-ir", gradIR = "grad-ir", plan, llvm, asm
    /// Not stages: build a native executable or shared library (CompileNative.swift).
    case exe, shared

    static var stages: [EmitKind] { allCases.filter { $0 != .exe && $0 != .shared } }
}

/// `tfc compile SPEC --emit KIND`: print a stage of the pipeline.
struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a spec; --emit prints a stage of the pipeline, -o builds a native program.",
        discussion: """
        Stages: \(EmitKind.stages.map(\.rawValue).joined(separator: ", ")).
        Native: tfc compile SPEC --weights W.safetensors -o NAME [--emit exe|shared] [--target-cpu CPU] [--weights-format f32|bf16|int8] [--kv f32|bf16]
        writes an executable (or libNAME.so and NAME.h) and NAME.weights; see docs/compile.md.
        """)

    @ArgumentParser.Argument(help: "The spec file (.tfs).") var spec: String
    @Option(help: "Print this stage: \(EmitKind.stages.map(\.rawValue).joined(separator: "|")); or build: exe (the default with -o) or shared.") var emit: EmitKind?
    @OptionGroup var native: NativeOptions
    @Option(help: "Override every GEMM's schedule, for experiments (e.g. \"mr=4 nr=24 kc=128\"); see --emit plan.") var schedule: String?

    func validate() throws {
        // For the target's vector width; a CPU only the C compiler knows is checked at emission.
        let target = try? NativeBuild.resolveTarget(native.targetCPU ?? "host", compiler: { throw UserError("not resolved here") })
        if let target { try validateSchedule(schedule, for: target.target.vector) }
    }

    func run() throws {
        try reportingErrors {
            guard let emit = try compileNativeIfRequested() else { return }
            let loaded = try LoadedSpec(path: spec)
            switch emit {
            case .exe, .shared: break  // built by compileNativeIfRequested
            case .ast: Swift.print(loaded.spec.printed, terminator: "")
            case .ir: Swift.print(loaded.graph.text, terminator: "")
            case .fusedIR: Swift.print(try PassPipeline.fusion.run(loaded.graph).text, terminator: "")
            case .gradIR: Swift.print(try differentiate(loaded.graph).text, terminator: "")
            case .plan, .llvm, .asm:
                let fused = try PassPipeline.fusion.run(loaded.graph)
                let target = try NativeBuild.resolveTarget(native.targetCPU ?? "host", compiler: CCompiler.find).target
                let module = try KernelModule(name: loaded.graph.config.name, target: target)
                let program = try ModelProgram(fused: fused, into: module, scheduleOverride: schedule, weightFormat: try native.weightFormat(),
                                                  kvFormat: try native.kvFormat())
                switch emit {
                case .plan:
                    Swift.print(program.plan.text(for: fused, rows: loaded.graph.config.context), terminator: "")
                    Swift.print("target: \(target.cpu), vector \(program.vector) (--target-cpu avx2|avx512 shows another)")
                    for line in program.tileChoices { Swift.print("  " + line) }
                    Swift.print("kernels (\(module.kernelNames.count - 2) distinct, \(program.schedule.count) calls per forward pass; entry points \(ModelProgram.forwardSymbol), \(ModelProgram.forwardLastSymbol)):")
                    for line in program.schedule { Swift.print("  " + line) }
                    Swift.print(try ProgramLayout(program).text, terminator: "")
                case .llvm:
                    try module.optimize()
                    Swift.print(try module.llvmIR(), terminator: "")
                default:
                    Swift.print(try module.assembly(), terminator: "")
                }
            }
        }
    }
}
