// swift-tools-version:5.10
// tfc — a compiler for TokenFormer models.
// The pipeline reads top to bottom: TFSpec (text → AST) → TFIR (AST → graph IR) → TFPasses (rewrites)
// → TFNaive (OpenBLAS oracle) | TFCodegen (LLVM JIT / objects) → tfc (command line).
import PackageDescription

// LLVM 14 from Debian's llvm-14-dev. Its headers are reached through symbolic links in
// Sources/CLLVM/include (so every importer of CLLVM finds them); only the library path is a flag.
// See docs/llvm.md.
let llvmLib = "/usr/lib/llvm-14/lib"

let package = Package(
    name: "tfc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tfc", targets: ["tfc"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // The C runtime the generated code calls and links against (no OpenBLAS, no LLVM).
        .target(name: "TFRuntime", path: "Runtime", publicHeadersPath: "include",
                cSettings: [.unsafeFlags(["-O2", "-march=x86-64-v2"])],
                linkerSettings: [.linkedLibrary("m"), .linkedLibrary("pthread")]),
        // System libraries.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .target(name: "CLLVM", path: "Sources/CLLVM",
                linkerSettings: [.unsafeFlags(["-L", llvmLib, "-Xlinker", "-rpath", "-Xlinker", llvmLib]),
                                 .linkedLibrary("LLVM-14")]),
        // The compiler, phase by phase.
        .target(name: "TFSpec", dependencies: ["TFRuntime"], path: "Sources/TFSpec"),  // input-file checks (Runtime/input_file.c)
        .target(name: "TFIR", dependencies: ["TFSpec"], path: "Sources/TFIR"),
        .target(name: "TFPasses", dependencies: ["TFIR"], path: "Sources/TFPasses"),
        .target(name: "TFWeights", dependencies: ["TFRuntime"], path: "Sources/TFWeights"),
        .target(name: "TFAutodiff", dependencies: ["TFIR"], path: "Sources/TFAutodiff"),
        .target(name: "TFNaive", dependencies: ["TFIR", "TFAutodiff", "TFWeights", "TFRuntime", "COpenBLAS"], path: "Sources/TFNaive"),
        .target(name: "TFTraining", dependencies: ["TFIR", "TFPasses", "TFAutodiff", "TFNaive", "TFCodegen", "TFWeights", "TFRuntime"], path: "Sources/TFTraining"),
        .target(name: "TFCodegen", dependencies: ["TFIR", "TFPasses", "TFWeights", "TFRuntime", "CLLVM"],
                path: "Sources/TFCodegen"),
        .target(name: "TFBench", dependencies: ["TFIR", "TFPasses", "TFNaive", "TFCodegen", "TFWeights", "TFRuntime", "COpenBLAS"],
                path: "Sources/TFBench"),
        // The growth experiment (docs/experiments.md): plan, FLOPs accounting, table, JSON and plot.
        .target(name: "TFExperiment", dependencies: ["TFIR", "TFTraining", "TFBench"], path: "Sources/TFExperiment"),
        // PyTorch and DeepSpeed checkpoints: reader, restricted unpickler, import and export.
        .target(name: "TFCheckpoint", dependencies: ["TFSpec", "TFIR", "TFWeights",
                                                     .product(name: "ZIPFoundation", package: "ZIPFoundation")],
                path: "Sources/TFCheckpoint"),
        .target(name: "TFDriver", dependencies: [
                    "TFSpec", "TFCheckpoint", "TFIR", "TFPasses", "TFAutodiff", "TFTraining", "TFWeights", "TFNaive", "TFCodegen", "TFBench", "TFRuntime", "TFTokenizer", "TFExperiment",
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                ], path: "Sources/TFDriver"),
        // Shared by the test targets only: `tfc init`-style weights in memory.
        // Text ↔ token ids: byte-level BPE tokenizer.json files (GPT-2, GPT-NeoX, Pythia).
        .target(name: "TFTokenizer", path: "Sources/TFTokenizer"),
        .target(name: "TFTestSupport", dependencies: ["TFIR", "TFWeights"], path: "Sources/TFTestSupport"),
        .executableTarget(name: "tfc", dependencies: ["TFDriver"], path: "Sources/tfc"),

        .testTarget(name: "TFSpecTests", dependencies: ["TFSpec", "TFIR", "TFTestSupport"], path: "Tests/TFSpecTests"),
        .testTarget(name: "TFIRTests", dependencies: ["TFSpec", "TFIR", "TFPasses", "TFTestSupport"], path: "Tests/TFIRTests"),
        .testTarget(name: "TFPassesTests", dependencies: ["TFSpec", "TFIR", "TFPasses", "TFNaive", "TFWeights", "TFTestSupport"], path: "Tests/TFPassesTests"),
        .testTarget(name: "TFBenchTests", dependencies: ["TFBench", "TFIR"], path: "Tests/TFBenchTests"),
        .testTarget(name: "TFWeightsTests", dependencies: ["TFWeights"], path: "Tests/TFWeightsTests"),
        .testTarget(name: "TFNaiveTests", dependencies: ["TFSpec", "TFIR", "TFWeights", "TFNaive", "TFTestSupport"], path: "Tests/TFNaiveTests"),
        .testTarget(name: "TFCodegenTests", dependencies: ["TFCodegen", "TFNaive", "TFSpec", "TFIR", "TFPasses", "TFWeights", "CLLVM", "TFRuntime", "TFTestSupport"],
                    path: "Tests/TFCodegenTests"),
        .testTarget(name: "TFTokenizerTests", dependencies: ["TFTokenizer", "TFTestSupport"], path: "Tests/TFTokenizerTests"),
        .testTarget(name: "TFCheckpointTests", dependencies: ["TFCheckpoint", "TFWeights"], path: "Tests/TFCheckpointTests"),
        .testTarget(name: "TFAutodiffTests", dependencies: ["TFSpec", "TFIR", "TFPasses", "TFAutodiff", "TFNaive", "TFTraining", "TFTestSupport"], path: "Tests/TFAutodiffTests"),
        .testTarget(name: "TFExperimentTests", dependencies: ["TFExperiment", "TFTraining", "TFSpec", "TFIR"], path: "Tests/TFExperimentTests"),
        .testTarget(name: "CLITests", dependencies: ["TFDriver", "TFWeights"], path: "Tests/CLITests"),
    ]
)
