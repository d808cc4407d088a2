/// How packed weights (Pattention key/value panels, the logits head, the embedding) are stored.
///
/// How a new format plugs in (int8 is the next one):
/// 1. `storage` says what one element is in memory (`ElementFormat`), so `PanelLayout` can size
///    and lay out its panels (`PanelLayout.format`, `bytesPerElement`, `byteCount`).
/// 2. A packing routine for the format (see `BF16Packing.swift`) fills a panel buffer.
/// 3. Rows for the format go into `MicroKernelTable.entries` (one per activation format and ISA);
///    `GemmEmitter` asks the table which micro-kernel to emit, `--emit plan` prints its name.
/// 4. Remove the format from `WeightFormat.unavailable` once (1)–(3) exist; until then the
///    option refuses it with a one-line error (never computed another way).
public enum WeightFormat: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case f32, bf16, int8

    /// Bytes `count` weights take stored, read by a product along a depth of `depth` (so
    /// `count / depth` columns): the elements, plus for int8 a 2-byte (bf16) scale per column and group
    /// of `Int8Quantization.groupDepth` depth values (`Int8PanelLayout`). Panel padding aside.
    public func storedBytes(weights count: Int, depth: Int) -> Int {
        count * storage.bytes + (self == .int8 ? Int8PanelLayout.scaleBytes * Int8Quantization.groups(depth) * (count / depth) : 0)
    }

    /// The element one packed weight occupies.
    public var storage: ElementFormat {
        switch self {
        case .f32: return .f32
        case .bf16: return .bf16
        case .int8: return .i8
        }
    }

    public var description: String { rawValue }

    /// Formats named by the option but whose kernels are not plugged in yet (none today; a new
    /// format is listed here until its kernels exist).
    public static let unavailable: [WeightFormat: String] = [:]

    /// The values `--weights-format` accepts.
    public static var optionValues: [String] { allCases.map(\.rawValue) }

    /// Parses one `--weights-format` value: unknown names and formats not available yet are
    /// refused with a one-line reason.
    public static func parse(_ name: String, option: String = "--weights-format") throws -> WeightFormat {
        guard let format = WeightFormat(rawValue: name) else {
            throw CodegenError("\(option): unknown format '\(name)'; use \(optionValues.joined(separator: ", "))")
        }
        if let reason = unavailable[format] { throw CodegenError("\(option) \(name): \(reason)") }
        return format
    }

    /// Parses a comma-separated list for `bench model` (`all` = every available format).
    public static func parseList(_ list: String, option: String = "--weights-format") throws -> [WeightFormat] {
        if list == "all" { return allCases.filter { unavailable[$0] == nil } }
        let names = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !names.isEmpty, !names.contains(where: \.isEmpty) else {
            throw CodegenError("\(option): empty format in '\(list)'; use a comma-separated list of \(optionValues.joined(separator: ", ")) or all")
        }
        return try names.map { try parse($0, option: option) }
    }
}

/// An element type of stored weights, beyond IRGen's `f32`: bf16 is kept as raw 16-bit
/// integers (widened in registers), int8 as `i8`.
public enum ElementFormat: String, Hashable, Sendable {
    case f32, bf16, i8

    public var bytes: Int {
        switch self {
        case .f32: return 4
        case .bf16: return 2
        case .i8: return 1
        }
    }

    /// Consecutive k values stored together per column in a panel: bf16 pairs (what
    /// `vdpbf16ps` reads as one 32-bit lane), int8 quads (what `vpdpbusd` reads).
    public var kGroup: Int {
        switch self {
        case .f32: return 1
        case .bf16: return 2
        case .i8: return 4
        }
    }
}
