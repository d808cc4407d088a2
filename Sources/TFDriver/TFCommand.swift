import ArgumentParser

/// `tfc`: the command line. Each subcommand is a thin layer over the pipeline modules.
public struct TFCommand: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "tfc",
        abstract: "A compiler for TokenFormer models.",
        discussion: """
        A model is described in a spec file (specs/*.tfs). tfc parses it, lowers it to a graph IR, \
        fuses it into vectorised kernels and runs it; the naive OpenBLAS backend is the oracle.

        Start with:  tfc check specs/tiny.tfs
                     tfc init specs/tiny.tfs -o tiny.safetensors
                     tfc run specs/tiny.tfs --weights tiny.safetensors --tokens 1,2,3
        """,
        version: tfcVersion,
        subcommands: [CheckCommand.self, InitCommand.self, RunCommand.self, GenerateCommand.self, TokenizeCommand.self, EvalCommand.self, CompileCommand.self, BenchCommand.self, GrowCommand.self, GradCommand.self, TrainCommand.self, ExperimentCommand.self, ImportCommand.self, ExportCommand.self]
    )
}

/// Part of the compiled-code cache key, and `tfc --version`.
public let tfcVersion = "0.1.0"
