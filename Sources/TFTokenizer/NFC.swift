import Foundation

/// Unicode canonical composition (NFC), as the tokenizer's "NFC" normalizer does.
enum NFC {
    /// Foundation's NFC, plus the one composition it misses (on Linux, Swift 6.3): a precomposed
    /// Hangul LV syllable followed by a trailing jamo T is the LVT syllable (Unicode §3.12), e.g.
    /// 가 + ᆨ → 각. Foundation composes L V T jamo but leaves an LV syllable's T alone.
    static func normalize(_ text: String) -> String {
        let composed = text.precomposedStringWithCanonicalMapping
        guard composed.unicodeScalars.contains(where: { isTrailingJamo($0.value) }) else { return composed }
        var out = String.UnicodeScalarView()
        for scalar in composed.unicodeScalars {
            if isTrailingJamo(scalar.value), let last = out.last, isLVSyllable(last.value) {
                out.removeLast()
                out.append(Unicode.Scalar(last.value + scalar.value - 0x11A7)!)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    static func isTrailingJamo(_ value: UInt32) -> Bool { value >= 0x11A8 && value <= 0x11C2 }
    static func isLVSyllable(_ value: UInt32) -> Bool { value >= 0xAC00 && value <= 0xD7A3 && (value - 0xAC00) % 28 == 0 }
}
