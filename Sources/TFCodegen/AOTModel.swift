import CLLVM
import TFIR
import TFWeights
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A model compiled ahead of time (`tfc compile -o`): the description the generic C model host
/// (Runtime/model_host.c) reads, and the weights side file (NAME.weights) it maps. Where every
/// slot lives is the programs' `ProgramLayout`s, serialised here; nothing is laid out again.
/// One build may hold several variants of the program (one per vector target, the host picks
/// one at start from the CPU); they share the weights file, so their layouts must agree on it.
///
/// The weights file is a header, the entries and their names, then the layout's weights block:
/// already packed into the kernels' panel layouts, so the host maps the file and points the
/// table into it (no packing code in C, nothing to do at load time). The arena is one zeroed
/// block the host allocates; the token ids and the logits are the host's. The C side of every
/// layout here is Runtime/model_desc.h (with model_layout.h, generated from `ProgramLayout`).
/// The packed entries are in the build's weight format (`--weights-format`); the program and
/// the file both record it, and the host refuses a file of another format.
public struct AOTModel {
    /// The description's format (`TFC_AOT_FORMAT_VERSION`, generated): bump when the info
    /// fields, the slot rows or the variant table change (5: `kvFormat`).
    public static let formatVersion = 5
    static let weightsMagic = "TFCWGHT1"
    /// The weights file's format (`TFC_WEIGHTS_VERSION`, generated; 2: entry sizes in bytes,
    /// formats recorded; 3: int8 entries hold scales per group of 32 depth values; 4: those
    /// scales are bf16).
    static let weightsVersion: UInt32 = 4
    static let headerBytes = 256
    static let entryBytes = 48

    public let config: ModelConfig
    /// The packed weights' format, the same in every variant.
    public let weightFormat: WeightFormat
    /// The programs' KV-cache element format (`--kv`), recorded for `--info`.
    public let kvFormat: KVCacheFormat
    /// One per variant, in order; their weight entries are the same.
    public let layouts: [ProgramLayout]
    /// The weights file's tensors (the layouts' shared weight entries).
    public var entries: [ProgramLayout.WeightEntry] { layouts[0].entries }
    /// The size of the weights file.
    public let weightsBytes: Int
    /// Where the weights block starts in the file.
    public let dataOffset: Int
    /// Whether `forward_last` writes only the last row's logits.
    public let lastRowOnly: Bool
    /// Whether the program may continue from cached tokens (false: a non-causal model).
    public let incremental: Bool
    /// FNV-1a 64 of the weights file's layout (entries, offsets, format): the program and its
    /// weights file must agree on it.
    public let layoutHash: UInt64

    /// - Parameter programs: the emitted model programs of one graph, one per variant; their
    ///   packed weights must have the same layouts (the weights file is shared).
    public init(programs: [ModelProgram]) throws {
        precondition(!programs.isEmpty)
        let graph = programs[0].graph
        config = graph.config
        let format = programs[0].weightFormat
        weightFormat = format
        guard programs.allSatisfy({ $0.weightFormat == format }) else {
            throw CodegenError("the variants of one build must store the weights in one format (one weights file serves them all)")
        }
        let kv = programs[0].kvFormat
        kvFormat = kv
        guard programs.allSatisfy({ $0.kvFormat == kv }) else {
            throw CodegenError("the variants of one build must keep one KV-cache format (--info reports one)")
        }
        let layouts = try programs.map(ProgramLayout.init)
        self.layouts = layouts
        guard layouts.allSatisfy({ $0.entries == layouts[0].entries }) else {
            throw CodegenError("the variants of one build must pack the weights alike (one weights file serves them all)")
        }

        // The file: header, entries, names, then the weights block on a page boundary.
        var names: [UInt8] = []
        var nameOffsets: [Int] = []
        for e in layouts[0].entries {
            nameOffsets.append(names.count)
            names += Array(e.name.utf8) + [0]
        }
        dataOffset = roundUp(Self.headerBytes + nameOffsets.count * Self.entryBytes + names.count, 4096)
        weightsBytes = dataOffset + layouts[0].weightsBytes
        self.nameTable = names
        self.nameOffsets = nameOffsets
        lastRowOnly = programs[0].lastRowLogitsOnly
        incremental = graph.incrementalDecodingRefusal == nil

        // The hash guards what the weights file holds, not how the program uses it: the arena
        // placements (a `--kv bf16` cache, the variants' scratch) may differ between two builds
        // whose weights files are byte for byte the same, and those accept each other's file.
        var text = "tfc aot \(Self.formatVersion) vocab \(config.vocab) file \(weightsBytes) weights \(weightFormat)\n"
        for e in layouts[0].entries {
            text += "weight \(e.name) \(e.kind) \(e.layout?.description ?? "-") \(e.format) \(e.bytes) @\(dataOffset + e.offset)\n"
        }
        layoutHash = fnv1a64(text)
    }

    let nameTable: [UInt8]
    let nameOffsets: [Int]

    /// What the compiled program says about itself (strings the host prints and checks).
    public struct Description: Sendable {
        public var specHash: String
        /// The LLVM CPU name the code was generated for.
        public var targetCPU: String
        /// How messages name the target ("x86-64-v3", or the build host's CPU).
        public var targetLabel: String
        /// Features the code needs, LLVM names ("avx2", "fma", ...), checked at start-up.
        public var cpuFeatures: [String]
        /// The weights file's default name (looked up next to the program).
        public var weightsFile: String
        public var tfcVersion: String

        public init(specHash: String, targetCPU: String, targetLabel: String, cpuFeatures: [String], weightsFile: String, tfcVersion: String) {
            self.specHash = specHash
            self.targetCPU = targetCPU
            self.targetLabel = targetLabel
            self.cpuFeatures = cpuFeatures
            self.weightsFile = weightsFile
            self.tfcVersion = tfcVersion
        }
    }

    /// The names of variant `suffix`'s description globals and entry points (the C side, a
    /// `tfc_aot_variant` table, is written by `variantTable`).
    public static func variantSymbols(_ suffix: String) -> (info: String, slots: String, cpu: String, label: String, features: String,
                                                          forward: String, forwardLast: String) {
        ("tfc_aot_info_\(suffix)", "tfc_aot_slots_\(suffix)", "tfc_aot_target_cpu_\(suffix)", "tfc_aot_target_label_\(suffix)",
         "tfc_aot_cpu_features_\(suffix)", "\(ModelProgram.forwardSymbol)_\(suffix)", "\(ModelProgram.forwardLastSymbol)_\(suffix)")
    }

    /// Adds the description globals of program `variant` (`tfc_aot_*_SUFFIX`, see
    /// Runtime/model_desc.h) to `module`, which must hold that program, and gives its entry points
    /// the suffix (every other kernel becomes internal, so variants link side by side). The
    /// globals the variants share (name, spec hash, weights file, version) go with `variant` 0.
    public func addDescription(_ d: Description, variant: Int, suffix: String, to module: KernelModule) throws {
        let layout = layouts[variant]
        let info: [Int64] = InfoField.allCases.map { field in
            switch field {
            case .format: return Int64(Self.formatVersion)
            case .vocab: return Int64(config.vocab)
            case .hidden: return Int64(config.hidden)
            case .context: return Int64(config.context)
            case .endToken: return Int64(config.endToken ?? -1)
            case .slotCount: return Int64(layout.placements.count)
            case .arenaBytes: return Int64(layout.arenaBytes)
            case .weightsBytes: return Int64(weightsBytes)
            case .weightCount: return Int64(entries.count)
            case .layoutHash: return Int64(bitPattern: layoutHash)
            case .lastRowOnly: return lastRowOnly ? 1 : 0
            case .incremental: return incremental ? 1 : 0
            case .weightsFormat: return Int64(ProgramLayout.code(weightFormat))
            case .kvFormat: return kvFormat == .bf16 ? 1 : 0
            }
        }
        let names = Self.variantSymbols(suffix)
        try module.exportOnly([ModelProgram.forwardSymbol: names.forward, ModelProgram.forwardLastSymbol: names.forwardLast])
        try module.addConstant(names.info, int64s: info)
        try module.addConstant(names.slots, int64s: layout.slotRows(weightsAt: dataOffset))
        try module.addConstant(names.cpu, string: d.targetCPU)
        try module.addConstant(names.label, string: d.targetLabel)
        try module.addConstant(names.features, string: d.cpuFeatures.joined(separator: ","))
        if variant == 0 {
            try module.addConstant("tfc_aot_name", string: config.name)
            try module.addConstant("tfc_aot_spec_hash", string: d.specHash)
            try module.addConstant("tfc_aot_weights_file", string: d.weightsFile)
            try module.addConstant("tfc_aot_tfc_version", string: d.tfcVersion)
        }
    }

    /// C source of the `tfc_aot_variants` table (Runtime/model_desc.h) for variants `suffixes`,
    /// in the order the host tries them (the widest vector target first).
    public static func variantTable(_ suffixes: [String]) -> String {
        var c = "// Generated by tfc compile: the program variants, tried in order at start.\n#include \"model_desc.h\"\n"
        for s in suffixes {
            let n = variantSymbols(s)
            c += "extern const int64_t \(n.info)[], \(n.slots)[];\nextern const char \(n.cpu)[], \(n.label)[], \(n.features)[];\n"
            c += "void \(n.forward)(void *const *, int64_t, int64_t);\nvoid \(n.forwardLast)(void *const *, int64_t, int64_t);\n"
        }
        c += "const tfc_aot_variant tfc_aot_variants[] = {\n"
        for s in suffixes {
            let n = variantSymbols(s)
            c += "    {\(n.info), \(n.slots), \(n.cpu), \(n.label), \(n.features), \(n.forward), \(n.forwardLast)},\n"
        }
        return c + "};\nconst int tfc_aot_variant_count = \(suffixes.count);\n"
    }

    /// A program's `tfc_aot_info_SUFFIX` entries, in order: the C host reads them by the names
    /// `layoutHeader` generates (`TFC_AOT_VOCAB`, …). New fields go last (and bump `formatVersion`).
    public enum InfoField: Int, CaseIterable, Sendable {
        /// `formatVersion`, checked first.
        case format = 0
        case vocab, hidden, context
        /// -1: none.
        case endToken
        case slotCount
        /// Activations, scratch and KV caches, one zeroed block.
        case arenaBytes
        /// The size of the weights file.
        case weightsBytes
        /// Entries in the weights file.
        case weightCount
        /// FNV-1a 64 of the weights file's entries and format (also in the file).
        case layoutHash
        /// 1: `tfc_model_forward_last` writes one logits row, else T rows.
        case lastRowOnly
        /// 1: continuing from cached tokens computes the model; 0: non-causal, whole sequences only.
        case incremental
        /// `TFC_WEIGHTS_FORMAT_*`: the packed weights the program reads (`--weights-format`).
        case weightsFormat
        /// 0: the KV cache holds f32, 1: bf16 (`--kv`).
        case kvFormat
    }

    /// The generated header model_desc.h includes: the C names of `ProgramLayout`'s numbers and
    /// of the description's info fields, so the Swift writer and the C reader cannot drift.
    public static let layoutHeaderName = "model_layout.h"
    public static var layoutHeader: String {
        "// Generated by tfc compile from Sources/TFCodegen/ProgramLayout.swift and AOTModel.swift: do not edit.\n#pragma once\n"
            + ProgramLayout.cDefinitions
            + "#define TFC_AOT_FORMAT_VERSION \(formatVersion)\n"
            + "#define TFC_WEIGHTS_MAGIC \"\(weightsMagic)\"\n#define TFC_WEIGHTS_VERSION \(weightsVersion)\n"
            + ProgramLayout.cEnum("TFC_AOT_", InfoField.allCases.map { ("\($0)", $0.rawValue) },
                                  "tfc_aot_info[]'s fields (AOTModel.InfoField): sizes, layout and formats of one variant.")
            + "#define TFC_AOT_INFO_COUNT \(InfoField.allCases.count)\n"
    }

    /// Writes the packed weights file (see Runtime/model_desc.h) into `file` (the caller commits
    /// it). `weights` gives a parameter's float32 data by name.
    public func writeWeights(into file: AtomicFile, specHash: String, weights: (String) -> UnsafeBufferPointer<Float>) throws {
        var header = [UInt8](repeating: 0, count: Self.headerBytes)
        func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { header[offset + i] = b } }
        }
        func putString(_ s: String, at offset: Int, max: Int) {
            for (i, b) in s.utf8.prefix(max - 1).enumerated() { header[offset + i] = b }
        }
        for (i, b) in Self.weightsMagic.utf8.enumerated() { header[i] = b }
        put(Self.weightsVersion, at: 8)
        put(UInt32(entries.count), at: 12)
        put(UInt64(weightsBytes), at: 16)
        put(UInt64(dataOffset), at: 24)
        put(layoutHash, at: 32)
        putString(specHash, at: 40, max: 64)
        putString(config.name, at: 104, max: 64)
        put(UInt32(ProgramLayout.code(weightFormat)), at: 168)
        var table = [UInt8](repeating: 0, count: entries.count * Self.entryBytes)
        for (i, e) in entries.enumerated() {
            var fields: [UInt8] = []
            withUnsafeBytes(of: UInt64(dataOffset + e.offset).littleEndian) { fields += $0 }
            withUnsafeBytes(of: UInt64(e.bytes).littleEndian) { fields += $0 }
            for v in [UInt32(e.kind.rawValue), UInt32(nameOffsets[i]), UInt32(e.layout?.k ?? 0), UInt32(e.layout?.n ?? 0), UInt32(e.layout?.nr ?? 0),
                      UInt32(ProgramLayout.code(e.format)), 0, 0] {
                withUnsafeBytes(of: v.littleEndian) { fields += $0 }
            }
            table.replaceSubrange(i * Self.entryBytes ..< (i + 1) * Self.entryBytes, with: fields)
        }

        // In file order, sequentially (zero padding between entries), so any output works: a
        // regular file, /dev/null or a FIFO.
        var written = 0
        func write(_ p: UnsafeRawPointer, _ count: Int, at offset: Int) throws {
            try pad(to: offset)
            try file.write(UnsafeRawBufferPointer(start: p, count: count))
            written += count
        }
        func pad(to offset: Int) throws {
            guard offset > written else { return }
            try file.write([UInt8](repeating: 0, count: offset - written))
            written = offset
        }
        try header.withUnsafeBytes { try write($0.baseAddress!, $0.count, at: 0) }
        if !table.isEmpty { try table.withUnsafeBytes { try write($0.baseAddress!, $0.count, at: Self.headerBytes) } }
        if !nameTable.isEmpty { try nameTable.withUnsafeBytes { try write($0.baseAddress!, $0.count, at: Self.headerBytes + table.count) } }
        // One entry's bytes at a time, converted by the same function the JIT uses.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(entries.map(\.bytes).max() ?? 0, 1), alignment: 64)
        defer { scratch.deallocate() }
        for e in entries {
            precondition(dataOffset + e.offset >= written, "weight entries overlap")
            try e.materialise(from: weights(e.name), into: scratch)
            try write(scratch, e.bytes, at: dataOffset + e.offset)
        }
        try pad(to: weightsBytes)
    }
}

extension KernelModule {
    /// An exported constant `int64_t name[]`.
    func addConstant(_ name: String, int64s values: [Int64]) throws {
        let m = try liveModule()
        let i64 = LLVMInt64TypeInContext(context)!
        var elements: [LLVMValueRef?] = values.map { LLVMConstInt(i64, UInt64(bitPattern: $0), 0) }
        let array = elements.withUnsafeMutableBufferPointer { LLVMConstArray(i64, $0.baseAddress, UInt32(values.count)) }
        define(name, type: LLVMArrayType(i64, UInt32(values.count)), initializer: array!, in: m)
    }

    /// An exported constant NUL-terminated `char name[]`.
    func addConstant(_ name: String, string: String) throws {
        let m = try liveModule()
        let bytes = Array(string.utf8)
        let value = bytes.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { LLVMConstStringInContext(context, $0.baseAddress, UInt32(bytes.count), 0) }
        }
        define(name, type: LLVMArrayType(LLVMInt8TypeInContext(context), UInt32(bytes.count + 1)), initializer: value!, in: m)
    }

    private func define(_ name: String, type: LLVMTypeRef, initializer: LLVMValueRef, in m: LLVMModuleRef) {
        precondition(LLVMGetNamedGlobal(m, name) == nil, "global \(name) defined twice")
        let g = LLVMAddGlobal(m, type, name)
        LLVMSetInitializer(g, initializer)
        LLVMSetGlobalConstant(g, 1)
        LLVMSetLinkage(g, LLVMExternalLinkage)
        LLVMSetAlignment(g, 8)
    }
}

/// FNV-1a 64 of a string (layout and spec hashes: not cryptographic, only to detect changes).
public func fnv1a64(_ text: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    return h
}

/// What `--target-cpu` means: the LLVM target, how to name it, and which CPU features the
/// compiled code may use (checked by the compiled program before it runs anything).
public struct AOTTarget: Sendable {
    public let target: TargetHost
    public let label: String
    public let requiredFeatures: [String]

    /// Features the model host can test (LLVM names), in the order messages list them.
    public static let checkable = ["sse3", "ssse3", "sse4.1", "sse4.2", "cx16", "popcnt", "movbe", "avx", "avx2", "fma", "f16c",
                                   "bmi", "bmi2", "lzcnt", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512bf16", "avx512vnni"]

    /// The x86-64 micro-architecture levels (psABI), by LLVM feature name.
    public static let levels: [String: [String]] = {
        let v2 = ["sse3", "ssse3", "sse4.1", "sse4.2", "cx16", "popcnt"]
        let v3 = v2 + ["movbe", "avx", "avx2", "fma", "f16c", "bmi", "bmi2", "lzcnt"]
        let v4 = v3 + ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]
        return ["x86-64": [], "x86-64-v2": v2, "x86-64-v3": v3, "x86-64-v4": v4]
    }()

    public init(target: TargetHost, label: String, requiredFeatures: [String]) {
        self.target = target
        self.label = label
        self.requiredFeatures = Self.checkable.filter(requiredFeatures.contains)
    }

    /// The machine tfc runs on (what the JIT uses).
    public static var host: AOTTarget {
        let h = TargetHost.host
        return AOTTarget(target: h, label: h.cpu, requiredFeatures: checkable.filter(h.has))
    }

    /// A named CPU (`x86-64-v3`, `skylake`, ...) whose features are `features` (LLVM names).
    /// Those the micro-kernel table looks for (`avx512bf16`) are also enabled in the LLVM target,
    /// so the table sees them (the CPU name alone would leave them to LLVM).
    public static func named(_ cpu: String, features: [String], label: String? = nil) -> AOTTarget {
        let kernelFeatures = Set(MicroKernelTable.entries.compactMap(\.extraFeature)).filter(features.contains).sorted()
        return AOTTarget(target: TargetHost(triple: TargetHost.host.triple, cpu: cpu, features: kernelFeatures.map { "+" + $0 }.joined(separator: ","),
                                            vector: VectorTarget.best(has: features.contains)),
                         label: label ?? cpu, requiredFeatures: features)
    }
}
