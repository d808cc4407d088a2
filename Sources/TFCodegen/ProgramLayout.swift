import TFIR
import TFPasses

/// Where every slot of a `ModelProgram`'s table lives when the program runs: the one description
/// of the program's memory that the JIT (`FusedExecutor`), the AOT writer (`AOTModel`) and,
/// through the rows `AOTModel` serialises (`slotRows`, `cDefinitions`), the C model host
/// (Runtime/model_host.c) all read.
///
/// Two blocks: the weights block, every parameter once in the form its slots read (raw f32, raw
/// rounded to bf16, or packed panels in the build's format) at its offset; and the arena, the
/// activation buffers, scratch buffers and KV caches (`context` rows each, zeroed). A compiled
/// program's weights file is the weights block behind a header; the JIT fills the same block in
/// memory. The token ids and the logits are the host's.
public struct ProgramLayout: Sendable {
    /// How a weight entry is stored.
    public enum WeightKind: Int, CaseIterable, Sendable {
        case raw = 0, packedTransposed = 1, packed = 2
        /// A tensor as stored, each float rounded to bf16 (the embedding table of a bf16 build).
        case rawBF16 = 3
    }

    /// One tensor of the weights block.
    public struct WeightEntry: Equatable, Sendable {
        public let name: String
        public let kind: WeightKind
        public let layout: PanelLayout?
        /// How many floats the parameter has (what `materialise` reads).
        public let elements: Int
        public let bytes: Int
        /// Byte offset in the weights block.
        public let offset: Int
        /// Raw tensors are float32 (bf16 for `rawBF16`); packed ones are in their layout's format.
        public var format: WeightFormat { kind == .rawBF16 ? .bf16 : layout?.format ?? .f32 }
    }

    /// Where a table slot points.
    public enum Placement: Equatable, Sendable {
        case weight(entry: Int)
        case arena(offset: Int, floats: Int)
        case tokens
        case logits
    }

    public let entries: [WeightEntry]
    /// The weights block's size in bytes.
    public let weightsBytes: Int
    /// One per slot of the program's table, in slot order.
    public let placements: [Placement]
    /// The arena's size in bytes, for `rows` rows of activations.
    public let arenaBytes: Int
    /// Rows every activation and scratch buffer holds: the context, so one arena serves every
    /// call (a host that maps it lazily pays only for the rows it runs).
    public let rows: Int

    /// The layout of `program`'s table; parameter shapes come from its graph.
    public init(_ program: ModelProgram) throws {
        let graph = program.graph
        rows = graph.config.context
        var shapes: [String: Int] = [:]
        for p in graph.parameters { shapes[p.name] = p.elementCount }
        func elements(_ name: String) throws -> Int {
            guard let n = shapes[name] else { throw CodegenError("no shape for parameter \(name)") }
            return n
        }

        var entries: [WeightEntry] = []
        var entryIndex: [String: Int] = [:]
        var weightsEnd = 0
        func weight(_ name: String, _ kind: WeightKind, _ layout: PanelLayout?, elements: Int, bytes: Int) -> Placement {
            let key = "\(kind.rawValue) \(name) \(layout?.description ?? "")"
            if let i = entryIndex[key] { return .weight(entry: i) }
            // Tensors of 1 MiB or more start on a page, so a mapped file shares pages with no neighbour.
            let offset = roundUp(weightsEnd, bytes >= 1 << 20 ? 4096 : 64)
            entries.append(WeightEntry(name: name, kind: kind, layout: layout, elements: elements, bytes: bytes, offset: offset))
            weightsEnd = offset + bytes
            entryIndex[key] = entries.count - 1
            return .weight(entry: entries.count - 1)
        }

        var arenaEnd = 0
        var bufferOffsets: [Int: Int] = [:]
        func arena(_ floats: Int) -> Int {
            // Large buffers start on a 2 MiB boundary, so they can sit in huge pages.
            let bytes = floats * 4
            let offset = roundUp(arenaEnd, bytes >= 4 << 20 ? 2 << 20 : 64)
            arenaEnd = offset + max(bytes, 64)
            return offset
        }

        var placements: [Placement] = []
        for slot in program.slots {
            switch slot {
            case .raw(let name):
                let n = try elements(name)
                placements.append(weight(name, .raw, nil, elements: n, bytes: n * 4))
            case .rawBF16(let name):
                let n = try elements(name)
                placements.append(weight(name, .rawBF16, nil, elements: n, bytes: n * 2))
            case .packed(let name, let layout, let transposed):
                placements.append(weight(name, transposed ? .packedTransposed : .packed, layout, elements: layout.k * layout.n, bytes: layout.storedBytes))
            case .buffer(let index, let columnOffset):
                let floats = rows * program.plan.bufferColumns[index]
                if bufferOffsets[index] == nil { bufferOffsets[index] = arena(floats) }
                placements.append(.arena(offset: bufferOffsets[index]! + columnOffset * 4, floats: floats - columnOffset))
            case .scratch(_, let columns):
                placements.append(.arena(offset: arena(rows * columns), floats: rows * columns))
            case .keyCache(_, let floats), .valueCache(_, let floats):
                placements.append(.arena(offset: arena(floats), floats: floats))
            case .tokens:
                placements.append(.tokens)
            case .logits:
                placements.append(.logits)
            }
        }
        self.entries = entries
        self.placements = placements
        weightsBytes = roundUp(weightsEnd, 64)
        arenaBytes = roundUp(max(arenaEnd, 64), 64)
    }

    /// One line per weight entry and a summary of the arena (`--emit plan`).
    public var text: String {
        var s = "layout: weights \(entries.count) entries, \(formatBytes(weightsBytes)); arena \(formatBytes(arenaBytes)) (\(rows) rows); \(placements.count) slots\n"
        for e in entries {
            s += "  weight @\(e.offset) \(e.bytes) bytes \(e.kind) \(e.format) \(e.layout?.description ?? "-") \(e.name)\n"
        }
        return s
    }
}

extension ProgramLayout.WeightEntry {
    /// Writes this entry's `bytes` bytes at `dst` (64-byte aligned) from the parameter's float32
    /// values: the one conversion both the JIT and the weights-file writer use.
    public func materialise(from source: UnsafeBufferPointer<Float>, into dst: UnsafeMutableRawPointer) throws {
        guard source.count == elements, let base = source.baseAddress else {
            throw CodegenError("parameter \(name) has \(source.count) floats, expected \(elements)")
        }
        switch kind {
        case .raw:
            dst.copyMemory(from: base, byteCount: bytes)
        case .rawBF16:
            BF16.round(source, into: dst.assumingMemoryBound(to: UInt16.self))
        case .packedTransposed, .packed:
            layout!.packStored(base, transposed: kind == .packedTransposed, into: dst)
        }
    }
}

/// The serialised placements (a compiled program's `tfc_aot_slots`) and the C names of every
/// number they and the weights file hold, generated into the C host's model_layout.h.
extension ProgramLayout {
    /// A slot row's kind (`TFC_SLOT_*`).
    enum SlotKind: Int, CaseIterable { case weight = 0, arena = 1, tokens = 2, logits = 3 }
    /// A slot row's fields, in order (`TFC_SLOT_*` indices, `TFC_AOT_SLOT_FIELDS` of them).
    enum SlotField: Int, CaseIterable { case kind = 0, offset, size, entry }

    /// The table's rows, `SlotField.allCases.count` int64 per slot: kind, byte offset (into the
    /// weights file, whose block starts at `weightsAt`, or into the arena), size (bytes for a
    /// weight, floats for an arena slot, int32 for the tokens), weight entry (or -1).
    func slotRows(weightsAt base: Int) -> [Int64] {
        func row(_ kind: SlotKind, offset: Int = 0, size: Int = 0, entry: Int = -1) -> [Int64] {
            var r = [Int64](repeating: 0, count: SlotField.allCases.count)
            r[SlotField.kind.rawValue] = Int64(kind.rawValue)
            r[SlotField.offset.rawValue] = Int64(offset)
            r[SlotField.size.rawValue] = Int64(size)
            r[SlotField.entry.rawValue] = Int64(entry)
            return r
        }
        return placements.flatMap { p -> [Int64] in
            switch p {
            case .weight(let e): return row(.weight, offset: base + entries[e].offset, size: entries[e].bytes, entry: e)
            case .arena(let offset, let floats): return row(.arena, offset: offset, size: floats)
            case .tokens: return row(.tokens, size: rows)
            case .logits: return row(.logits)
            }
        }
    }

    /// How the weights file numbers a format (`TFC_WEIGHTS_FORMAT_*`).
    static func code(_ format: WeightFormat) -> Int {
        switch format {
        case .f32: return 0
        case .bf16: return 1
        case .int8: return 2
        }
    }

    /// The C spelling of a Swift case name: camelCase → SNAKE_CASE ("packedTransposed" →
    /// "PACKED_TRANSPOSED", "rawBF16" → "RAW_BF16").
    static func cConstant(_ swiftName: String) -> String {
        var out = ""
        var previousLower = false
        for c in swiftName {
            if c.isUppercase && previousLower { out += "_" }
            out += c.uppercased()
            previousLower = c.isLowercase || c.isNumber
        }
        return out
    }

    /// `// comment` and `enum { PREFIX_NAME = value, … };`.
    static func cEnum(_ prefix: String, _ cases: [(String, Int)], _ comment: String) -> String {
        "// \(comment)\nenum { " + cases.map { "\(prefix)\(cConstant($0.0)) = \($0.1)" }.joined(separator: ", ") + " };\n"
    }

    /// The C host's names for the numbers above, generated from these definitions so the two
    /// sides cannot drift (part of model_layout.h, see `AOTModel.layoutHeader`).
    static var cDefinitions: String {
        cEnum("TFC_SLOT_", SlotKind.allCases.map { ("\($0)", $0.rawValue) }, "A tfc_aot_slots row's kind: where the slot points.")
            + cEnum("TFC_SLOT_", SlotField.allCases.map { ("\($0)", $0.rawValue) },
                    "A tfc_aot_slots row's fields: kind, byte offset (into the weights file or the arena), size (bytes for WEIGHT, floats for ARENA, int32 for TOKENS), weight entry (or -1).")
            + "#define TFC_AOT_SLOT_FIELDS \(SlotField.allCases.count)\n"
            + cEnum("TFC_WEIGHT_", WeightKind.allCases.map { ("\($0)", $0.rawValue) }, "How a weights-file entry is stored (RAW_BF16: the embedding of a bf16 build).")
            + cEnum("TFC_WEIGHTS_FORMAT_", WeightFormat.allCases.map { ("\($0)", code($0)) },
                    "How packed tensors are stored (raw tensors are f32, or bf16 for TFC_WEIGHT_RAW_BF16): the header's and each entry's format.")
    }
}
