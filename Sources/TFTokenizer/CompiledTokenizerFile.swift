import Foundation

/// The tokenizer of a compiled model (`NAME.tokenizer`, written by `tfc compile`): what the C
/// runtime's tokenizer (Runtime/tokenizer.c) needs, as flat little-endian tables, so the C side
/// needs no JSON parser and no Unicode database. The Unicode tables are generated here from the
/// same code the Swift tokenizer runs (PreTokenizer.classify, NFC), so both tokenize alike.
/// The layout is documented in docs/compile.md and read by Runtime/tokenizer.c.
public enum CompiledTokenizerFile {
    public static let magic = Array("TFCTOKN1".utf8)
    public static let version: UInt32 = 1
    static let headerBytes = 64
    static let sectionCount = 13

    /// The side file's bytes for the tokenizer.json at `path` (its errors are the Swift tokenizer's).
    public static func bytes(tokenizerAt path: String) throws -> [UInt8] {
        let tokenizer = try Tokenizer(contentsOf: path)   // every check the Swift tokenizer makes
        let file = try TokenizerFile(path: path)
        let size = tokenizer.vocabularySize

        var byteIds = [UInt32](repeating: UInt32(bitPattern: -1), count: 256)
        for (byte, scalar) in ByteLevelAlphabet.characterForByte.enumerated() {
            if let id = file.vocab[String(scalar)] { byteIds[byte] = UInt32(bitPattern: id) }
        }
        // Token bytes (for decoding and whole-word lookup) and added token contents share one blob.
        var blob: [UInt8] = []
        var offsets: [UInt32] = []
        var kinds = [UInt8](repeating: 0, count: size)  // 0: no token, 1: vocabulary spelled in the byte alphabet, 2: other
        for id in 0..<size {
            offsets.append(UInt32(blob.count))
            if let b = tokenizer.bytes(of: Int32(id)) { blob += b; kinds[id] = 2 }
        }
        offsets.append(UInt32(blob.count))
        for (token, id) in file.vocab where ByteLevelAlphabet.bytes(of: token) != nil { kinds[Int(id)] = 1 }
        // An added token with the same id as a vocabulary entry decodes to its own content (as Tokenizer does).
        for token in file.addedTokens where ByteLevelAlphabet.bytes(of: token.content) == nil { kinds[Int(token.id)] = 2 }

        var merges: [UInt32] = []
        for (a, b) in file.merges {
            merges += [file.vocab[a]!, file.vocab[b]!, file.vocab[a + b]!].map { UInt32(bitPattern: $0) }
        }
        let nfc = NFC()
        func added(_ tokens: [TokenizerFile.AddedToken], normalize: Bool) -> [UInt32] {
            var out: [UInt32] = []
            for token in tokens where !token.content.isEmpty {
                let content = Array((normalize ? nfc.normalize(token.content) : token.content).utf8)
                out += [UInt32(bitPattern: token.id), UInt32(blob.count), UInt32(content.count)]
                blob += content
            }
            return out
        }
        let raw = added(file.addedTokens.filter { !$0.normalized }, normalize: false)
        let normalized = added(file.addedTokens.filter(\.normalized), normalize: file.nfc)

        let tables = file.nfc ? UnicodeTables.withNFC : UnicodeTables.classesOnly
        let endOfText = tokenizer.id(of: "<|endoftext|>") ?? -1

        var sections: [[UInt8]] = []
        func words(_ values: [UInt32]) -> [UInt8] {
            var out = [UInt8](); out.reserveCapacity(values.count * 4)
            for v in values { out += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
            return out
        }
        sections.append(words(byteIds))
        sections.append(words(offsets))
        sections.append(kinds)
        sections.append(blob)
        sections.append(words(merges))
        sections.append(words(raw))
        sections.append(words(normalized))
        sections.append(words(tables.classes))
        sections.append(words(tables.unstable))
        sections.append(words(tables.combiningClasses))
        sections.append(words(tables.decompositionIndex))
        sections.append(words(tables.decompositionPool))
        sections.append(words(tables.compositions))
        precondition(sections.count == sectionCount)

        // Header, section table (offset, byte length), sections 4-byte aligned.
        var body: [UInt8] = []
        var table: [UInt32] = []
        let bodyStart = headerBytes + sectionCount * 8
        for s in sections {
            while body.count % 4 != 0 { body.append(0) }
            table += [UInt32(bodyStart + body.count), UInt32(s.count)]
            body += s
        }
        let rest = words(table) + body
        let total = UInt64(headerBytes + rest.count)
        var header = magic
        header += words([version, (file.nfc ? 1 : 0) | (file.ignoreMerges ? 2 : 0)])
        header += words([UInt32(total & 0xFFFF_FFFF), UInt32(total >> 32)])
        let sum = fnv1a(rest)
        header += words([UInt32(sum & 0xFFFF_FFFF), UInt32(sum >> 32)])
        header += words([UInt32(size), UInt32(bitPattern: endOfText), UInt32(sectionCount)])
        while header.count < headerBytes { header.append(0) }
        return header + rest
    }

    /// FNV-1a 64: the checksum over everything after the header (a damaged file is refused).
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Writes the side file through a temporary name next to `destination`.
    public static func write(tokenizerAt path: String, to destination: String) throws {
        let data = Data(try bytes(tokenizerAt: path))
        do {
            try data.write(to: URL(fileURLWithPath: destination), options: .atomic)
        } catch {
            throw TokenizerError("\(destination): error: cannot write the tokenizer: \(error.localizedDescription)")
        }
    }
}

/// The Unicode facts the C tokenizer needs, computed once per process from the Swift tokenizer's own code.
struct UnicodeTables {
    /// (first scalar, class) runs over 0…0x10FFFF: PreTokenizer's letter / number / space / other.
    var classes: [UInt32] = []
    /// (start, end) ranges of the characters NFC.isStable rejects (at or above U+0300).
    var unstable: [UInt32] = []
    /// (start, end, class) ranges of nonzero canonical combining class.
    var combiningClasses: [UInt32] = []
    /// (scalar, pool offset, length) of every full canonical decomposition other than the scalar itself (Hangul excluded: arithmetic).
    var decompositionIndex: [UInt32] = []
    var decompositionPool: [UInt32] = []
    /// (starter, following, composite) sorted: the primary composites (Hangul excluded).
    var compositions: [UInt32] = []

    static let classesOnly = UnicodeTables(nfc: false)
    static let withNFC = UnicodeTables(nfc: true)

    init(nfc wantNFC: Bool) {
        func ranges(_ value: (UInt32) -> UInt32, from: UInt32, emitZero: Bool, into out: inout [UInt32], withValue: Bool) {
            var start = from, current = value(from)
            func close(_ end: UInt32) {
                if emitZero || current != 0 { out += withValue ? [start, end, current] : [start, end] }
            }
            for v in (from + 1)...0x110000 {
                let c = v == 0x110000 ? UInt32.max : value(v)
                if c != current { close(v); start = v; current = c }
            }
        }
        var last: UInt32 = .max
        for v: UInt32 in 0...0x10FFFF {
            let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
            let c = UInt32(PreTokenizer.classify(scalar).rawValue)
            if c != last { classes += [v, c]; last = c }
        }
        guard wantNFC else { return }
        ranges({ (0xD800...0xDFFF).contains($0) ? 0 : NFC.isStable($0) ? 0 : 1 }, from: 0x300, emitZero: false, into: &unstable, withValue: false)
        ranges({ (0xD800...0xDFFF).contains($0) ? 0 : UInt32(NFC.combiningClass($0)) }, from: 0x300, emitZero: false, into: &combiningClasses, withValue: true)
        let nfc = NFC()
        var composites: [(UInt32, UInt32, UInt32)] = []
        for v: UInt32 in 0xC0...0x10FFFF {
            if (0xAC00...0xD7A3).contains(v) || (0xD800...0xDFFF).contains(v) { continue }
            guard let scalar = Unicode.Scalar(v), scalar.properties.generalCategory != .unassigned,
                  scalar.properties.generalCategory != .privateUse else { continue }
            // Ideographs never decompose (only the compatibility ideographs, which are in their own blocks).
            if (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0x20000...0x2F7FF).contains(v) || (0x30000...0x3FFFF).contains(v) { continue }
            let d = nfc.decomposition(v)
            guard d != [v] else { continue }
            decompositionIndex += [v, UInt32(decompositionPool.count), UInt32(d.count)]
            decompositionPool += d
            // A primary composite: its last character joins the NFC of the rest, if Foundation agrees.
            if d.count >= 2 {
                let first = nfc.normalize(Array(d.dropLast()))
                if first.count == 1, nfc.composite(first[0], d.last!) == v { composites.append((first[0], d.last!, v)) }
            }
        }
        composites.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        for (a, b, c) in composites { compositions += [a, b, c] }
    }
}
