import ArgumentParser
import Foundation
import TFCodegen
import TFIR
import TFPasses
import TFTokenizer
import TFWeights

/// The options of `tfc compile` that build a native program or library (docs/compile.md).
struct NativeOptions: ParsableArguments {
    @Option(help: "Weights (.safetensors) to compile with (--emit exe|shared).") var weights: String?
    @Flag(name: .customLong("allow-nonfinite"), help: ArgumentHelp(NonFinitePolicy.flagHelp)) var allowNonFinite = false
    @Option(name: [.customShort("o"), .customLong("output")],
            help: "The executable, or libNAME.so with --emit shared (default: the model's name).") var output: String?
    @Option(name: .customLong("target-cpu"),
            help: "CPU to generate code for: host (default), avx2 (= x86-64-v3), avx512 (= x86-64-v4), x86-64, x86-64-v2, or a CPU name such as skylake; with --emit plan|llvm|asm, the target to show.")
    var targetCPU: String?
    @Option(help: "A tokenizer.json to ship as NAME.tokenizer instead of the one the spec names (for --prompt).") var tokenizer: String?
    @Option(name: .customLong("weights-format"),
            help: "How the packed weights are stored: f32 (default), bf16 (half the size; AVX512_BF16 CPUs use vdpbf16ps, others widen to f32) or int8 (a quarter; AVX512_VNNI CPUs use vpdpbusd). The program reads only weights of its format.")
    var weightsFormat: String?
    @Option(name: .customLong("kv"),
            help: "How the program's KV cache stores keys and values: f32 (default) or bf16 (half the cache memory and the bytes each decode step reads; rounded to bf16 as written, widened to f32 as read).")
    var kv: String?

    /// `--weights-format`, parsed (f32 when not given).
    func weightFormat() throws -> WeightFormat {
        do { return try WeightFormat.parse(weightsFormat ?? "f32") } catch let error as CodegenError { throw UserError("error: " + error.message) }
    }

    /// `--kv`, parsed (f32 when not given).
    func kvFormat() throws -> KVCacheFormat {
        do { return try KVCacheFormat.parse(kv ?? "f32") } catch let error as CodegenError { throw UserError("error: " + error.message) }
    }
}

extension CompileCommand {
    /// Builds a native executable or shared library when asked to (`-o`, `--weights`, or
    /// `--emit exe|shared`); returns the stage to print otherwise (nil: nothing left to do).
    func compileNativeIfRequested() throws -> EmitKind? {
        let nativeFlags = native.weights != nil || native.output != nil || native.tokenizer != nil
            || ((native.targetCPU != nil || native.weightsFormat != nil || native.kv != nil) && emit != .plan && emit != .llvm && emit != .asm)
        switch emit {
        case .exe?, .shared?:
            break
        case nil where nativeFlags:
            break
        case nil:
            throw UserError("error: give --emit STAGE (\(EmitKind.stages.map(\.rawValue).joined(separator: "|"))) to print a stage, or --weights W.safetensors -o NAME to build an executable")
        case let stage?:
            if nativeFlags {
                throw UserError("error: --weights, -o, --target-cpu, --weights-format, --kv and --tokenizer build a program (--emit exe or shared), not --emit \(stage.rawValue)")
            }
            return stage
        }
        try NativeBuild(spec: spec, options: native, shared: emit == .shared, schedule: schedule).run()
        return nil
    }
}

/// `tfc compile SPEC --weights W -o NAME [--emit exe|shared] [--target-cpu CPU] [--weights-format F] [--kv F]`: the model's
/// kernels as an object file (LLVM's target machine, the same code the JIT runs), the weights
/// packed into NAME.weights, and the C model host from Runtime/, linked by the system C compiler.
struct NativeBuild {
    let spec: String
    let options: NativeOptions
    let shared: Bool
    /// `--schedule`: applied to every GEMM's schedule, as for the JIT.
    var schedule: String? = nil

    func run() throws {
        let start = Date()
        let format = try options.weightFormat(), kvFormat = try options.kvFormat()
        guard let weightsPath = options.weights else {
            throw UserError("error: --emit \(shared ? "shared" : "exe") needs the weights to compile with: --weights W.safetensors")
        }
        let loaded = try LoadedSpec(path: spec)
        let config = loaded.graph.config
        let output: String
        if let given = options.output {
            output = given
        } else {
            // The model's name comes from the spec file: a file name made from it, never a path.
            let safe = OutputNames.fileName(fromModelName: config.name)
            output = shared ? "lib\(safe).so" : safe
            if safe != config.name {
                FileHandle.standardError.write("note: the model name \"\(config.name)\" is not a plain file name; writing \(output) (choose with -o)\n".data(using: .utf8)!)
            }
        }
        let names = try OutputNames(output, shared: shared)
        let compiler = try CCompiler.find()
        let runtime = try RuntimeSources.locate()
        // Every output checked against every input (and each other) before anything is written.
        var outputs = [(role: "-o", path: names.path), (role: "the packed weights file (beside -o)", path: names.weightsPath)]
        if shared { outputs.append((role: "the header (beside -o)", path: names.headerPath)) }
        // The spec's tokenizer (or --tokenizer) ships beside the model as NAME.tokenizer.
        let tokenizerSource = try loadModelTokenizer(override: options.tokenizer, for: loaded)
        if tokenizerSource != nil { outputs.append((role: "the tokenizer file (beside -o)", path: names.tokenizerPath)) }
        let inputs = [(what: "spec", path: spec), (what: "weights file", path: weightsPath)]
            + (tokenizerSource.map { [(what: "tokenizer", path: $0.path)] } ?? [])
            + RuntimeSources.linked.map { (what: "runtime source", path: runtime.path + "/" + $0) }
        let targets = try OutputPolicy.check(outputs, inputs: inputs)
        let variants = try Self.variants(options.targetCPU, weightFormat: format, compiler: { compiler })
        let weights = try loaded.graph.loadWeights(weightsPath, allowNonFinite: options.allowNonFinite)
        // The tokenizer side file, made before anything is written (a bad tokenizer leaves no files).
        let tokenizerFile = try tokenizerSource.map { try CompiledTokenizerFile.bytes(tokenizerAt: $0.path) }

        // Kernels and their description, one object per variant (vector target).
        let fused = try PassPipeline.fusion.run(loaded.graph)
        var modules: [KernelModule] = [], programs: [ModelProgram] = []
        for v in variants {
            let module = try KernelModule(name: "\(config.name)_\(v.suffix)", target: v.target.target)
            let override = [v.panelOverride, schedule].compactMap { $0 }.joined(separator: " ")
            programs.append(try ModelProgram(fused: fused, into: module, scheduleOverride: override.isEmpty ? nil : override, weightFormat: format,
                                             kvFormat: kvFormat))
            modules.append(module)
        }
        let model = try AOTModel(programs: programs)
        let specHash = Self.specHash(loaded)
        for (i, v) in variants.enumerated() {
            try model.addDescription(AOTModel.Description(
                specHash: specHash, targetCPU: v.target.target.cpu, targetLabel: v.target.label, cpuFeatures: v.target.requiredFeatures,
                weightsFile: names.weightsFile, tfcVersion: tfcVersion), variant: i, suffix: v.suffix, to: modules[i])
        }

        // Intermediate files in a private directory, removed on any exit (and on an interrupt).
        let work = try TemporaryDirectory(prefix: "tfc-compile")
        defer { work.remove() }
        var objects: [String] = []
        for (i, v) in variants.enumerated() {
            objects.append(work.file("\(names.base).\(v.suffix).o"))
            try modules[i].writeObject(to: objects[i])
        }
        let table = work.file("variants.c")
        try AOTModel.variantTable(variants.map(\.suffix)).write(toFile: table, atomically: false, encoding: .utf8)
        try AOTModel.layoutHeader.write(toFile: work.file(AOTModel.layoutHeaderName), atomically: false, encoding: .utf8)

        // Link into the output's temporary file; every output is committed once all are written.
        let binary = try AtomicFile(targets[0])
        try binary.closeForExternalWriter()
        var arguments = ["-O2", "-std=gnu11", "-I", runtime.path + "/include", "-I", runtime.path, "-I", work.path, "-DTFC_MODEL_HOST"]
        var sources = RuntimeSources.linked.map { runtime.path + "/" + $0 }
        if shared {
            let script = work.file("exports.map")
            try "{ global: tfc_model_create; tfc_model_destroy; tfc_model_describe; tfc_model_eval; tfc_model_eval_last; tfc_model_decode; tfc_model_position; tfc_model_reset; tfc_model_error; tfc_model_set_threads; tfc_model_tokenizer_open; tfc_tokenizer_open; tfc_tokenizer_close; tfc_tokenizer_encode; tfc_tokenizer_decode; tfc_tokenizer_token_bytes; tfc_tokenizer_vocab; tfc_tokenizer_end_of_text; tfc_tokenizer_error; local: *; };\n"
                .write(toFile: script, atomically: false, encoding: .utf8)
            arguments += ["-fPIC", "-shared", "-Wl,--version-script=\(script)", "-Wl,-z,nodelete", "-Wl,-soname,\(names.file)"]
        } else {
            arguments += ["-DTFC_MODEL_MAIN"]
            sources.insert(runtime.path + "/model_main.c", at: 0)
        }
        // Absolute paths only: the compiler runs in tfc's working directory.
        let linked = URL(fileURLWithPath: binary.temporaryPath).path
        arguments += sources + [table] + objects + ["-o", linked, "-lm", "-lpthread"]
        try compiler.run(arguments, temporaryDirectory: work.path)  // its own temporary files go there too
        let packedWeights = try AtomicFile(targets[1])
        do {
            try model.writeWeights(into: packedWeights, specHash: specHash) { weights.tensor($0)!.floats }
        } catch let error as CodegenError {
            throw UserError("\(names.weightsPath): error: \(error.message)")
        }
        let header = shared ? try AtomicFile(targets[2]) : nil
        if let header { try header.write(Array(headerText(names: names, runtime: runtime, config: config, specHash: specHash, format: format).utf8)) }
        let tokenizerOut = try tokenizerFile.map { bytes -> AtomicFile in
            let file = try AtomicFile(targets[targets.count - 1])
            try file.write(bytes)
            return file
        }
        try packedWeights.commit()
        try header?.commit()
        try tokenizerOut?.commit()
        try binary.commit(executable: true)
        var written = [names.path, names.weightsPath]
        if shared { written.insert(names.headerPath, at: 1) }
        if tokenizerFile != nil { written.append(names.tokenizerPath) }

        let sizes = written.map { path -> String in
            let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return "\(path) (\(Self.formatBytes(bytes)))"
        }
        print("wrote " + sizes.joined(separator: ", "))
        let described = variants.map { v in
            "\(v.target.label) [\(v.target.requiredFeatures.isEmpty ? "baseline x86-64" : v.target.requiredFeatures.joined(separator: " "))]"
        }
        print(String(format: "%@ %@%@ for %@%@ in %.1f s", shared ? "shared library" : "executable", config.name,
                     Self.storageNote(weights: format, kv: kvFormat),
                     described.joined(separator: " and "), variants.count > 1 ? " (picked at start from the CPU)" : "",
                     Date().timeIntervalSince(start)))
        if shared {
            let dir = URL(fileURLWithPath: names.directory).standardizedFileURL.path
            print("use: #include \"\(names.headerPath)\", link with -L\(dir) -l\(names.libraryName) -Wl,-rpath,\(dir)")
        } else {
            let program = names.path.contains("/") ? names.path : "./" + names.path
            print(tokenizerFile != nil ? "run: \(program) --prompt \"Once upon a time\" -n 32" : "run: \(program) --tokens 1,2,3 -n 32")
        }
    }

    /// The hash of the spec as tfc reads it (its canonical print: comments and layout do not count).
    static func specHash(_ loaded: LoadedSpec) -> String {
        let hex = String(fnv1a64(loaded.spec.printed), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// " with int8 weights and a bf16 KV cache" (empty for f32 weights and cache).
    static func storageNote(weights: WeightFormat, kv: KVCacheFormat) -> String {
        let parts = (weights == .f32 ? [] : ["\(weights) weights"]) + (kv == .f32 ? [] : ["a \(kv) KV cache"])
        return parts.isEmpty ? "" : " with " + parts.joined(separator: " and ")
    }

    static func formatBytes(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576) : String(format: "%.0f KiB", Double(bytes) / 1024)
    }

    /// One program variant of a build: the CPU it is for, its symbol suffix, and the schedule
    /// that makes its weight panels those of the other variants.
    struct Variant {
        var target: AOTTarget
        var suffix: String
        var panelOverride: String?
    }

    /// The variants for `--target-cpu`: given, that target alone; by default an AVX-512 and an
    /// AVX2 program (x86-64-v4 and x86-64-v3; the host tries them in that order), whose weight
    /// panels agree, so one weights file serves both — or the host alone when it lacks AVX2.
    /// f32 and int8 builds give the AVX-512 code 16x16 register tiles (the AVX2 panel width).
    /// bf16 builds use 32-column panels instead: the AVX-512 code takes its best tiles, 12x32,
    /// and the AVX2 code reads its 16-column tiles out of them (`GemmSchedule.panel`). (Measured
    /// on Zen 4, 150M, 512-token prefill, one thread: `vdpbf16ps` 12x32 is 1.24x faster than
    /// 16x16; f32 16x16 is 1.05x faster than 12x32.) A format whose AVX-512 micro-kernel needs an
    /// extra feature (bf16: AVX512_BF16 for `vdpbf16ps`; int8: VNNI) adds, first, x86-64-v4 with
    /// that feature; the others use the format's plain kernel. Its panels are one layout for
    /// both kernels, so the weights file is still shared.
    static func variants(_ name: String?, weightFormat: WeightFormat = .f32, compiler: () throws -> CCompiler) throws -> [Variant] {
        if let name { return [Variant(target: try resolveTarget(name, compiler: compiler), suffix: "0", panelOverride: nil)] }
        guard VectorTarget.avx2.missing(has: TargetHost.host.has).isEmpty else { return [Variant(target: .host, suffix: "0", panelOverride: nil)] }
        let v4 = VectorTarget.avx512.portableCPU, v3 = VectorTarget.avx2.portableCPU
        let (wide, narrow): (String, String?) = weightFormat == .bf16 ? ("nr=32", "panel=32") : ("mr=16 nr=16", nil)
        let portable = [Variant(target: .named(v4, features: AOTTarget.levels[v4]!), suffix: "avx512", panelOverride: wide),
                        Variant(target: .named(v3, features: AOTTarget.levels[v3]!), suffix: "avx2", panelOverride: narrow)]
        let special = MicroKernelTable.entries.first { $0.weights == weightFormat && $0.isa == .avx512 && $0.extraFeature != nil }
        guard let feature = special?.extraFeature else { return portable }
        let first = Variant(target: .named(v4, features: AOTTarget.levels[v4]! + [feature], label: "\(v4)+\(feature)"),
                            suffix: "avx512" + feature.replacingOccurrences(of: "avx512", with: ""), panelOverride: wide)
        return [first] + portable
    }

    /// `--target-cpu`: host, a vector target (avx2, avx512: their x86-64 levels), an x86-64
    /// level, or any CPU name the C compiler knows (its predefined macros give the features to
    /// check at start-up). The vector target follows the features (AVX-512 where they allow).
    static func resolveTarget(_ name: String, compiler: () throws -> CCompiler) throws -> AOTTarget {
        if name == "host" || name == "native" { return .host }
        if let isa = VectorTarget.ISA(rawValue: name) {
            let level = VectorTarget(isa).portableCPU
            return .named(level, features: AOTTarget.levels[level]!)
        }
        if let features = AOTTarget.levels[name] { return .named(name, features: features) }
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
              let macros = try? compiler().output(["-march=\(name)", "-dM", "-E", "-x", "c", "/dev/null"]) else {
            throw UserError("error: --target-cpu: unknown CPU '\(name)'; use host, avx2, avx512, x86-64, x86-64-v2, x86-64-v3, x86-64-v4, or a CPU name the C compiler accepts for -march (e.g. skylake, znver3)")
        }
        let byMacro = ["__SSE3__": "sse3", "__SSSE3__": "ssse3", "__SSE4_1__": "sse4.1", "__SSE4_2__": "sse4.2",
                       "__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16": "cx16", "__POPCNT__": "popcnt", "__MOVBE__": "movbe",
                       "__AVX__": "avx", "__AVX2__": "avx2", "__FMA__": "fma", "__F16C__": "f16c", "__BMI__": "bmi",
                       "__BMI2__": "bmi2", "__LZCNT__": "lzcnt", "__AVX512F__": "avx512f", "__AVX512DQ__": "avx512dq",
                       "__AVX512CD__": "avx512cd", "__AVX512BW__": "avx512bw", "__AVX512VL__": "avx512vl",
                       "__AVX512BF16__": "avx512bf16", "__AVX512VNNI__": "avx512vnni"]
        var features: [String] = []
        for line in macros.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, parts[0] == "#define", let f = byMacro[String(parts[1])] { features.append(f) }
        }
        return .named(name, features: features)
    }

    /// NAME.h: the C API (Runtime/include/tfc_model.h) with the model's constants.
    func headerText(names: OutputNames, runtime: URL, config: ModelConfig, specHash: String, format: WeightFormat) throws -> String {
        let api = try String(contentsOfFile: runtime.path + "/include/tfc_model.h", encoding: .utf8)
        let prefix = names.base.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        let macro = prefix.first?.isNumber == true ? "M" + prefix : prefix
        return """
        // \(names.base).h: the compiled TokenFormer model "\(config.name)" (\(names.file)), generated by
        // `tfc compile \(spec) --emit shared` (tfc \(tfcVersion)). Link with -L DIR -l\(names.libraryName); the
        // weights are read from \(names.weightsFile) next to the library unless tfc_model_create gets a path.
        #pragma once

        #define \(macro)_VOCAB \(config.vocab)
        #define \(macro)_HIDDEN \(config.hidden)
        #define \(macro)_CONTEXT \(config.context)
        #define \(macro)_END_TOKEN \(config.endToken ?? -1)
        #define \(macro)_SPEC_HASH "\(specHash)"
        #define \(macro)_WEIGHTS_FORMAT "\(format)"

        """ + api.replacingOccurrences(of: "#pragma once\n", with: "")
            + (try String(contentsOfFile: runtime.path + "/include/tfc_tokenizer.h", encoding: .utf8)).replacingOccurrences(of: "#pragma once\n", with: "")
    }
}

/// The files `-o` names: the program or library, NAME.weights and (shared) NAME.h beside it.
struct OutputNames {
    let path: String
    let directory: String
    let file: String
    /// NAME: the file name without `lib` and `.so`.
    let base: String
    var weightsFile: String { base + ".weights" }
    var weightsPath: String { prefix + weightsFile }
    var headerPath: String { prefix + base + ".h" }
    var tokenizerPath: String { prefix + base + ".tokenizer" }
    /// The output's directory part as given ("" or ending in "/").
    var prefix: String { path.lastIndex(of: "/").map { String(path[...$0]) } ?? "" }
    /// For `-lNAME`.
    var libraryName: String { file.hasPrefix("lib") && file.hasSuffix(".so") ? String(file.dropFirst(3).dropLast(3)) : base }

    /// Splits `-o` into its parts; the file system is checked by `OutputPolicy`.
    init(_ output: String, shared: Bool) throws {
        let url = URL(fileURLWithPath: output)
        path = output
        file = url.lastPathComponent
        let slash = output.lastIndex(of: "/")
        directory = slash.map { $0 == output.startIndex ? "/" : String(output[..<$0]) } ?? "."
        var base = file
        if shared && base.hasPrefix("lib") && base.count > 3 { base = String(base.dropFirst(3)) }
        if base.hasSuffix(".so") && base.count > 3 { base = String(base.dropLast(3)) }
        if base.isEmpty || output.hasSuffix("/") || file == "." || file == ".." {
            throw UserError("\(output): error: -o names a directory; give a file name")
        }
        self.base = base
    }

    /// A file name for the default `-o`, made from the model's name: letters, digits and `._+-`
    /// kept, anything else (a `/`, a space) `_`, no leading `.` or `-`; "model" if nothing is left.
    static func fileName(fromModelName name: String) -> String {
        let kept = name.unicodeScalars.map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "._+-".unicodeScalars.contains(c)) ? Character(c) : "_"
        }
        let trimmed = String(kept).drop { $0 == "." || $0 == "-" }
        return trimmed.isEmpty ? "model" : String(trimmed.prefix(200))
    }
}

/// The system C compiler, used as the linker driver: `$CC` (a program, optionally with
/// arguments) or `cc` on the PATH.
struct CCompiler {
    let program: String
    let leading: [String]
    let display: String

    static func find() throws -> CCompiler {
        let env = ProcessInfo.processInfo.environment
        let fromEnv = env["CC"].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        let words = (fromEnv ?? "cc").split(separator: " ").map(String.init)
        let name = words[0]
        var resolved: String? = nil
        if name.contains("/") {
            if FileManager.default.isExecutableFile(atPath: name) { resolved = name }
        } else {
            for dir in (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { resolved = candidate; break }
            }
        }
        guard let program = resolved else {
            if fromEnv != nil {
                throw UserError("error: no C compiler: '\(name)' (from $CC) was not found; tfc compile links with the system C compiler: set CC to gcc or clang, or unset it to use cc")
            }
            throw UserError("error: no C compiler: 'cc' is not on the PATH; tfc compile links with the system C compiler: install gcc or clang (apt-get install gcc), or set CC")
        }
        return CCompiler(program: program, leading: Array(words.dropFirst()), display: fromEnv ?? "cc")
    }

    /// Runs the compiler (its temporary files in `temporaryDirectory`, when given); throws its
    /// diagnostics when it fails.
    func run(_ arguments: [String], temporaryDirectory: String? = nil) throws {
        let (status, _, err) = try execute(arguments, temporaryDirectory: temporaryDirectory)
        if status != 0 {
            throw UserError("error: the C compiler failed (\(display), exit status \(status)):\n\(err.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Standard output of a successful run, or nil.
    func output(_ arguments: [String]) throws -> String? {
        let (status, out, _) = try execute(arguments)
        return status == 0 ? out : nil
    }

    private func execute(_ arguments: [String], temporaryDirectory: String? = nil) throws -> (Int32, String, String) {
        do {
            return try runChildProcess(program, leading + arguments, temporaryDirectory: temporaryDirectory)
        } catch let error as UserError {
            throw UserError(error.description.replacingOccurrences(of: "error: cannot run ", with: "error: cannot run the C compiler "))
        }
    }
}

/// Finds the C runtime sources (Runtime/ of a tfc checkout) compiled into every program:
/// `$TFC_RUNTIME_DIR`, else a `Runtime/` above the tfc executable (`.build/<config>/tfc` in a
/// checkout), else the checkout tfc was built from.
enum RuntimeSources {
    /// The C files compiled into every program or library (model_main.c too for an executable).
    static let linked = ["model_host.c", "threadpool.c", "sampling.c", "random.c", "input_file.c", "output_file.c", "cleanup.c",
                         "tokenizer.c", "utf8.c", "text_stream.c"]
    static let required = linked + ["model_main.c", "model_desc.h", "error_text.h", "include/tfc_model.h", "include/tfc_tokenizer.h"]

    static func isRuntime(_ dir: URL) -> Bool {
        required.allSatisfy { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }
    }

    static func locate() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["TFC_RUNTIME_DIR"], !env.isEmpty {
            let dir = URL(fileURLWithPath: env)
            guard isRuntime(dir) else {
                throw UserError("error: TFC_RUNTIME_DIR=\(env) is not tfc's C runtime (it needs \(required.joined(separator: ", ")))")
            }
            return dir
        }
        var candidates: [URL] = []
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        }
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("Runtime"))
            candidates.append(dir.appendingPathComponent("share/tfc/Runtime"))
            dir = dir.deletingLastPathComponent()
        }
        // The checkout this tfc was built from (Sources/TFDriver/CompileNative.swift → ../../Runtime).
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Runtime"))
        if let found = candidates.first(where: isRuntime) { return found.standardizedFileURL }
        throw UserError("error: cannot find tfc's C runtime sources (a Runtime/ directory with model_host.c); set TFC_RUNTIME_DIR to the Runtime directory of a tfc checkout")
    }
}
