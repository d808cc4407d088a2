import Foundation

/// Unicode canonical composition (NFC), as the tokenizer's "NFC" normalizer does.
///
/// The text is cut before every character that is NFC-stable (combining class 0, never changed,
/// never composed with what precedes it: ICU's "boundary before"); stretches of stable characters
/// are copied as they are, and each other stretch is normalised by the textbook algorithm (full
/// canonical decomposition, canonical ordering, canonical composition). Only two small questions
/// go to Foundation, per character and per pair, cached: a character's decomposition, and whether
/// two characters compose. Foundation's own whole-string NFC cannot be used: on Linux (Swift 6.3)
/// it skips canonical ordering after some decompositions (U+1D15E U+0F75), leaves an LV syllable's
/// trailing jamo apart, and its time is quadratic in the length of a text with many compositions.
final class NFC {
    /// The NFC form of UTF-8 `text[range]`, appended to `out`.
    func normalize(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [UInt8]) {
        var emitted = range.lowerBound, stretchStart = range.lowerBound, unstable = false
        var i = range.lowerBound
        func flush(upTo end: Int) {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[emitted..<stretchStart]))
            var scalars: [UInt32] = []
            var j = stretchStart
            while j < end { let (v, l) = Self.decode(text, at: j); scalars.append(v); j += l }
            for v in normalize(scalars) { Self.appendUTF8(v, to: &out) }
            emitted = end
        }
        while i < range.upperBound {
            let (scalar, length) = Self.decode(text, at: i)
            if Self.isStable(scalar) {
                if unstable { flush(upTo: i); unstable = false }
                stretchStart = i
            } else {
                unstable = true
            }
            i += length
        }
        if unstable {
            flush(upTo: range.upperBound)
        } else {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[emitted..<range.upperBound]))
        }
    }

    /// Whether the character is a starter that NFC neither changes nor composes with what precedes
    /// it. Conservative: whole blocks holding any exception (Indic, Tibetan, Myanmar and Hangul jamo
    /// second elements, Greek Extended, CJK compatibility, most supplementary planes) count as unstable,
    /// which only makes a stretch longer.
    @inline(__always)
    static func isStable(_ value: UInt32) -> Bool {
        if value < 0x300 { return true }
        switch value {
        case 0x340...0x344, 0x374, 0x37E, 0x387, 0x900...0xDFF, 0xF00...0xFFF, 0x1000...0x109F, 0x1100...0x11FF,
             0x1B00...0x1B7F, 0x1F00...0x1FFF, 0x2000...0x2001, 0x2126, 0x212A...0x212B, 0x2329...0x232A, 0x2ADC,
             0xF900...0xFAFF, 0xFB1D...0xFB4F:
            return false
        case 0x10000...:
            if !(0x1F000...0x1FAFF).contains(value) { return false }
        default: break
        }
        return Unicode.Scalar(value)?.properties.canonicalCombiningClass == .notReordered
    }

    @inline(__always)
    static func decode(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let b0 = text[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        if b0 < 0xE0 { return (UInt32(b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return (UInt32(b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F), 3) }
        return (UInt32(b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F), 4)
    }

    /// NFC of a whole string (the added tokens' contents).
    func normalize(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for v in normalize(text.unicodeScalars.map(\.value)) { scalars.append(Unicode.Scalar(v)!) }
        return String(scalars)
    }

    /// Decomposition, canonical ordering, composition (Unicode §3.11).
    func normalize(_ scalars: [UInt32]) -> [UInt32] {
        var decomposed: [UInt32] = []
        decomposed.reserveCapacity(scalars.count + 4)
        for v in scalars { decomposed.append(contentsOf: decomposition(v)) }
        // Canonical ordering: each run of non-starters, stably sorted by combining class.
        var i = 0
        while i < decomposed.count {
            guard Self.combiningClass(decomposed[i]) != 0 else { i += 1; continue }
            var j = i
            while j < decomposed.count && Self.combiningClass(decomposed[j]) != 0 { j += 1 }
            if j - i > 1 {
                let run = decomposed[i..<j].enumerated().sorted {
                    let a = Self.combiningClass($0.element), b = Self.combiningClass($1.element)
                    return a != b ? a < b : $0.offset < $1.offset
                }.map(\.element)
                decomposed.replaceSubrange(i..<j, with: run)
            }
            i = j
        }
        // Canonical composition: each character joins the last starter unless something between blocks it.
        var result: [UInt32] = []
        result.reserveCapacity(decomposed.count)
        var starter = -1
        var lastClass: UInt8 = 0
        for c in decomposed {
            let cc = Self.combiningClass(c)
            if starter >= 0 {
                let adjacent = result.count - 1 == starter
                if adjacent || lastClass < cc, let p = composite(result[starter], c) {
                    result[starter] = p
                    continue
                }
            }
            if cc == 0 { starter = result.count }
            lastClass = cc
            result.append(c)
        }
        return result
    }

    private var decompositions: [UInt32: [UInt32]] = [:]
    private var composites: [UInt64: UInt32] = [:]

    /// The full canonical decomposition of one character.
    func decomposition(_ v: UInt32) -> [UInt32] {
        if v < 0xC0 { return [v] }
        if v >= 0xAC00 && v <= 0xD7A3 {           // Hangul syllables, by arithmetic (§3.12)
            let index = v - 0xAC00
            let l = 0x1100 + index / 588, vowel = 0x1161 + (index % 588) / 28, t = index % 28
            return t == 0 ? [l, vowel] : [l, vowel, 0x11A7 + t]
        }
        if let known = decompositions[v] { return known }
        let mapped = String(Unicode.Scalar(v)!).decomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
        decompositions[v] = mapped
        return mapped
    }

    /// The primary composite of a starter and a following character, if any.
    func composite(_ a: UInt32, _ b: UInt32) -> UInt32? {
        if a >= 0x1100 && a <= 0x1112 && b >= 0x1161 && b <= 0x1175 { return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28 }
        if a >= 0xAC00 && a <= 0xD7A3 && (a - 0xAC00) % 28 == 0 && b >= 0x11A8 && b <= 0x11C2 { return a + (b - 0x11A7) }
        if b < 0x300 { return nil }
        let key = UInt64(a) << 32 | UInt64(b)
        if let known = composites[key] { return known == 0 ? nil : known }
        // Two characters compose exactly when their NFC is one character.
        let pair = String(String.UnicodeScalarView([Unicode.Scalar(a)!, Unicode.Scalar(b)!]))
        let scalars = Array(pair.precomposedStringWithCanonicalMapping.unicodeScalars)
        let result = scalars.count == 1 ? scalars[0].value : 0
        composites[key] = result
        return result == 0 ? nil : result
    }

    @inline(__always)
    static func combiningClass(_ v: UInt32) -> UInt8 {
        v < 0x300 ? 0 : Unicode.Scalar(v)!.properties.canonicalCombiningClass.rawValue
    }

    static func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case ..<0x80: out.append(UInt8(v))
        case ..<0x800: out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        case ..<0x10000:
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | (v >> 6) & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        default:
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | (v >> 12) & 0x3F))
            out.append(UInt8(0x80 | (v >> 6) & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }
}
