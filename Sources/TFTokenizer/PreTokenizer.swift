/// GPT-2's pre-tokenizer, the byte-level one of HF `tokenizers`: the text is cut into the matches of
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// (leftmost-first alternation, as Oniguruma runs it). A hand-written scanner over UTF-8 instead of
/// a regex engine: one pass, no backtracking beyond the one character `\s+(?!\S)` gives back.
enum PreTokenizer {
    /// What the pattern distinguishes about a character.
    enum CharacterClass: UInt8 { case letter, number, space, other }

    /// ASCII classes by byte; everything else goes through the Unicode properties.
    static let asciiClass: [CharacterClass] = (0..<128).map { byte in
        let scalar = Unicode.Scalar(UInt8(byte))
        return classify(scalar)
    }

    /// `\p{L}`, `\p{N}`, `\s` (White_Space, as Oniguruma's Unicode `\s`), or anything else.
    static func classify(_ scalar: Unicode.Scalar) -> CharacterClass {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return properties.isWhitespace ? .space : .other
        }
    }

    /// The class and UTF-8 length of the character starting at `i` (the text is valid UTF-8).
    @inline(__always)
    static func character(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> (CharacterClass, Int) {
        let b0 = text[i]
        if b0 < 0x80 { return (asciiClass[Int(b0)], 1) }
        var value: UInt32, length: Int
        if b0 < 0xE0 {
            value = UInt32(b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F); length = 2
        } else if b0 < 0xF0 {
            value = UInt32(b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F); length = 3
        } else {
            value = UInt32(b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6
                | UInt32(text[i + 3] & 0x3F)
            length = 4
        }
        return (classify(Unicode.Scalar(value) ?? "\u{FFFD}"), length)
    }

    /// Calls `piece` with the byte range of every match in `text[range]`, in order; together they cover the range.
    static func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ piece: (Range<Int>) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let start = i
            let (cls, length) = character(text, at: i)
            // 's 't 're 've 'm 'll 'd (case-sensitive, as in GPT-2).
            if text[i] == UInt8(ascii: "'"), i + 1 < end {
                let c1 = text[i + 1]
                if c1 == UInt8(ascii: "s") || c1 == UInt8(ascii: "t") || c1 == UInt8(ascii: "m") || c1 == UInt8(ascii: "d") {
                    piece(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < end {
                    let c2 = text[i + 2]
                    if (c1 == UInt8(ascii: "r") && c2 == UInt8(ascii: "e")) || (c1 == UInt8(ascii: "v") && c2 == UInt8(ascii: "e"))
                        || (c1 == UInt8(ascii: "l") && c2 == UInt8(ascii: "l")) {
                        piece(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // ` ?X+` for X in letter, number, other: an optional space, then a run of one class.
            var runClass = cls
            var runStart = i
            if text[i] == UInt8(ascii: " "), i + 1 < end {
                let (next, _) = character(text, at: i + 1)
                if next != .space { runClass = next; runStart = i + 1 }
            }
            if runClass != .space {
                var j = runStart
                while j < end {
                    let (c, l) = character(text, at: j)
                    if c != runClass { break }
                    j += l
                }
                piece(start..<j); i = j; continue
            }
            // `\s+(?!\S)`: a whitespace run, minus its last character when a non-space follows;
            // `\s+`: a single whitespace character before a non-space.
            var j = i + length
            var last = i
            while j < end {
                let (c, l) = character(text, at: j)
                if c != .space { break }
                last = j
                j += l
            }
            if j < end && last > start { j = last }
            piece(start..<j); i = j
        }
    }
}
