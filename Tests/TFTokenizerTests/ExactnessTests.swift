import Foundation
import XCTest
import TFTokenizer
import TFTestSupport

/// tfc's tokenizer against HF `tokenizers` on the NeoX tokenizer: the same ids for real text and for
/// every edge case, and the same text back from any ids.
final class ExactnessTests: XCTestCase {
    static let tokenizer = Result { try Tokenizer(contentsOf: HFReference.neox) }

    func neox() throws -> Tokenizer { try Self.tokenizer.get() }

    /// Compares every text's ids and reports the first difference of each (by item).
    func assertSameIds(_ texts: [String], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try HFReference.run(encode: texts).encode
        let tokenizer = try neox()
        XCTAssertEqual(expected.count, texts.count)
        for (index, (text, theirs)) in zip(texts, expected).enumerated() {
            let ours = tokenizer.encode(text)
            if ours != theirs {
                let at = firstDifference(ours, theirs)
                XCTFail("\(label) item \(index) (\(text.prefix(60).debugDescription)): first difference at id \(at): "
                        + "tfc \(ours[at..<min(at + 8, ours.count)]) vs HF \(theirs[at..<min(at + 8, theirs.count)])", file: file, line: line)
            }
        }
    }

    func testLicenceTexts() throws {
        let dir = "/usr/share/common-licenses"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted().map { "\(dir)/\($0)" }
            .filter { !(try! FileManager.default.attributesOfItem(atPath: $0)[.type] as! FileAttributeType == .typeDirectory) }
        XCTAssertGreaterThan(files.count, 5)
        try assertSameFiles(files)
    }

    func testPythonSourcesAndDocs() throws {
        let stdlib = try HFReference.pythonStdlib()
        var files = try FileManager.default.contentsOfDirectory(atPath: stdlib).filter { $0.hasSuffix(".py") }.sorted().map { "\(stdlib)/\($0)" }
        // The library reference's text, as pydoc shows it.
        files.append("\(stdlib)/pydoc_data/topics.py")
        XCTAssertGreaterThan(files.count, 100)
        try assertSameFiles(files)
    }

    func assertSameFiles(_ files: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try HFReference.run(encodeFiles: files).encodeFiles
        let tokenizer = try neox()
        var total = 0
        for (path, theirs) in zip(files, expected) {
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
            let ours = tokenizer.encode(text)
            total += ours.count
            if ours != theirs {
                let at = firstDifference(ours, theirs)
                XCTFail("\(path): first difference at id \(at) of \(theirs.count)", file: file, line: line)
            }
        }
        XCTAssertGreaterThan(total, 10_000, file: file, line: line)
    }

    static let edgeCases: [String] = [
        "", " ", "  ", "\n", "\t", "a", "'",
        // Whitespace runs of every length around NeoX's added whitespace tokens (2–24 spaces).
        (1...60).map { String(repeating: " ", count: $0) + "x" }.joined(separator: "\n"),
        String(repeating: " ", count: 100), "x" + String(repeating: " ", count: 25) + "y" + String(repeating: " ", count: 49),
        "a\t\tb\t \tc  \t\n\n\n  d", "\t\t\t\t", " \t \t ", "end   ",
        "line one\r\nline two\r\n\r\n  indented\r\n", "\r\r\n\n\r",
        // Contractions in every case.
        "it's I'm you're we've they'll he'd don't", "IT'S I'M YOU'RE WE'VE THEY'LL HE'D DON'T",
        "It'S i'M You'Re We'Ve they'Ll He'D Don'T", "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D ''s '''re x's's",
        "rock'n'roll o'clock 'quoted' \"double\" ’curly’ l’été",
        // Numbers.
        "0 1 12 123 1234 12345 1234567890 3.14159 -42 1e-9 0x1F 1,000,000 ²³ ½ ٣٤٥ ४२ Ⅻ",
        // CJK, Arabic, Hebrew, Devanagari, Thai, Korean, Cyrillic, Greek.
        "日本語のテキストです。中文文本，繁體中文。한국어 텍스트입니다.",
        "مرحبا بالعالم، هذا نص عربي. שלום עולם. नमस्ते दुनिया। สวัสดีชาวโลก Привет, мир! Γειά σου Κόσμε!",
        // Emoji: ZWJ sequences, skin tones, flags, keycaps, variation selectors.
        "👨‍👩‍👧‍👦 👩🏽‍💻 👍🏻👍🏼👍🏽👍🏾👍🏿 🏳️‍🌈 🇯🇵🇫🇷 1️⃣ ❤️ ☺︎ 🧑‍🤝‍🧑",
        // NFD input (NFC composes it) and characters NFC changes.
        "e\u{301}cole, cafe\u{301}, A\u{30A}ngstro\u{308}m, \u{1100}\u{1161}\u{11A8}, \u{212B} \u{2126} \u{FB01} \u{0958}",
        // Hangul: jamo compose into syllables, an LV syllable takes a trailing jamo (가 + ᆨ = 각).
        "\u{AC00}\u{11A8} \u{1100}\u{1161}\u{11A8} \u{1112}\u{1161}\u{11AB}\u{1100}\u{1173}\u{11AF} \u{AC1C}\u{11A8} \u{11A8}\u{AC00}",
        "a\u{323}\u{307} q\u{307}\u{323} \u{1E0B}\u{323}",
        // Special tokens inside text, next to each other, and almost-special text.
        "Hello<|endoftext|>world<|padding|><|endoftext|> <|endoftext|>\n<|endoftext|e\u{301}",
        "<|endoftext|>e\u{301}", "<|endoftext", "<|endoftext|><|endoftext|>", "<|endoftext|>",
        // Symbols and punctuation runs.
        "!!!??? ... --- *** ### @@ $$ %% ^^ && (( )) [[ ]] {{ }} <<>> ||| \\\\ // ~~ `` ''",
        "def f(x):\n    return x**2  # comment\n\tpass\n",
        // Other whitespace characters.
        "a\u{A0}b\u{2003}c\u{3000}d\u{2028}e\u{2029}f\u{85}g\u{1680}h\u{200B}i\u{FEFF}j\u{B}k\u{C}l",
        // Bytes NeoX has no token for cannot occur in UTF-8; U+FFFD can.
        "\u{FFFD}\u{0}\u{1}\u{7F}",
    ]

    func testEdgeCases() throws {
        try assertSameIds(Self.edgeCases, "edge case")
    }

    func testHundredThousandCharacterWords() throws {
        var generator = SplitMix64(seed: 11)
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        let random = String((0..<100_000).map { _ in letters[Int(generator.next() % 26)] })
        let digits = String((0..<100_000).map { _ in Character(String(generator.next() % 10)) })
        try assertSameIds([random, String(repeating: "a", count: 100_000), digits, String(repeating: "日本", count: 50_000)], "long word")
    }

    /// Random text over several scripts, with spaces, marks NFC composes, digits and punctuation.
    func testRandomUnicode() throws {
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x20...0x7E, 0xA0...0xFF, 0x100...0x17F, 0x300...0x36F, 0x370...0x3FF, 0x400...0x4FF,
            0x5D0...0x5EA, 0x620...0x64A, 0x660...0x669, 0x900...0x97F, 0xE01...0xE3A, 0x1100...0x1112, 0x1161...0x1175,
            0x11A8...0x11C2, 0x2000...0x200A, 0x2010...0x2027, 0x3041...0x3096, 0x30A1...0x30FA, 0x4E00...0x9FA5,
            0xAC00...0xD7A3, 0x1F300...0x1F5FF, 0x1F3FB...0x1F3FF, 0x200D...0x200D, 0xFE0F...0xFE0F,
            0x9...0xD, 0x20...0x20, 0x20...0x20, 0x27...0x27,
        ]
        var generator = SplitMix64(seed: 7)
        var texts: [String] = []
        for _ in 0..<1000 {
            var scalars = String.UnicodeScalarView()
            let length = Int(generator.next() % 300)
            for _ in 0..<length {
                let range = ranges[Int(generator.next() % UInt64(ranges.count))]
                let value = range.lowerBound + UInt32(generator.next() % UInt64(range.count))
                if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
            }
            texts.append(String(scalars))
        }
        try assertSameIds(texts, "random text")
    }

    /// Text where NFC has work to do: base letters with stacked combining marks in random order,
    /// jamo, kana with voicing marks, Tibetan and Indic vowel signs, singletons and exclusions.
    func testNFCStress() throws {
        let ranges: [ClosedRange<UInt32>] = [
            0x41...0x5A, 0x61...0x7A, 0xC0...0xFF, 0x300...0x36F, 0x300...0x36F, 0x591...0x5C7, 0x5D0...0x5EA, 0x610...0x61A,
            0x627...0x64A, 0x64B...0x655, 0x915...0x939, 0x93C...0x94D, 0xB05...0xB39, 0xB3E...0xB57, 0xBBE...0xBD7,
            0xD3E...0xD57, 0xDCA...0xDDF, 0xF40...0xF69, 0xF71...0xF84, 0x1025...0x102E, 0x1100...0x1112, 0x1161...0x1175,
            0x11A8...0x11C2, 0xAC00...0xAC40, 0x304B...0x3062, 0x3099...0x309A, 0x1F00...0x1F7D, 0x2126...0x212B,
            0xF900...0xF90F, 0x1D15E...0x1D164, 0x2F800...0x2F80F, 0x20...0x20, 0x1B05...0x1B35,
        ]
        var generator = SplitMix64(seed: 13)
        var texts: [String] = []
        for _ in 0..<1500 {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<Int(generator.next() % 120) {
                let range = ranges[Int(generator.next() % UInt64(ranges.count))]
                if let scalar = Unicode.Scalar(range.lowerBound + UInt32(generator.next() % UInt64(range.count))) { scalars.append(scalar) }
            }
            texts.append(String(scalars))
        }
        // One long stretch with no stable character, to show NFC stays linear and exact.
        texts.append(String(repeating: "\u{1100}\u{1161}\u{11A8}\u{0F73}", count: 5000))
        try assertSameIds(texts, "NFC stress")
        let normalized = try HFReference.run(normalize: texts).normalize
        let tokenizer = try neox()
        for (text, theirs) in zip(texts, normalized) {
            XCTAssertEqual(Array(try tokenizer.decode(tokenizer.encode(text)).unicodeScalars), Array(theirs.unicodeScalars), text.debugDescription)
        }
    }

    /// Decoding: the text of encoded edge cases, and of random id sequences (which split characters
    /// into invalid UTF-8), is the text HF decodes.
    func testDecodeMatchesHF() throws {
        let tokenizer = try neox()
        var generator = SplitMix64(seed: 3)
        var sequences = Self.edgeCases.map { tokenizer.encode($0) }
        for _ in 0..<300 {
            let length = Int(generator.next() % 12)
            // Low ids are single bytes (invalid UTF-8 alone); add specials and whitespace tokens too.
            sequences.append((0..<length).map { _ in
                switch generator.next() % 4 {
                case 0: return Int32(generator.next() % 300)
                case 1: return Int32(50254 + generator.next() % 23)
                case 2: return Int32(generator.next() % 2)
                default: return Int32(generator.next() % 50277)
                }
            })
        }
        let answer = try HFReference.run(decode: sequences, normalize: Self.edgeCases)
        XCTAssertEqual(answer.decode.count, sequences.count)
        for (ids, theirs) in zip(sequences, answer.decode) {
            XCTAssertEqual(Array(try tokenizer.decode(ids).unicodeScalars), Array(theirs.unicodeScalars), "ids \(ids)")
        }
        // Encoding then decoding gives back the normalised text.
        for (text, normalized) in zip(Self.edgeCases, answer.normalize) {
            XCTAssertEqual(Array(try tokenizer.decode(tokenizer.encode(text)).unicodeScalars), Array(normalized.unicodeScalars), text.debugDescription)
        }
    }

    /// Streaming decode releases whole characters only, and its pieces add up to the full decode.
    func testStreamingDecoderAddsUpToDecode() throws {
        let tokenizer = try neox()
        var generator = SplitMix64(seed: 5)
        for round in 0..<500 {
            let ids: [Int32] = (0..<Int(generator.next() % 10)).map { _ in
                round % 2 == 0 ? Int32(generator.next() % 300) : Int32(generator.next() % 50277)
            }
            var stream = StreamingDecoder()
            var pieces = ""
            for id in ids {
                let piece = stream.append(tokenizer.bytes(of: id)!)
                pieces += piece
            }
            pieces += stream.finish()
            XCTAssertEqual(pieces, try tokenizer.decode(ids), "ids \(ids)")
        }
        // A character split over tokens appears only once complete: "日" is E6 97 A5.
        var stream = StreamingDecoder()
        XCTAssertEqual(stream.append([0xE6]), "")
        XCTAssertEqual(stream.append([0x97]), "")
        XCTAssertEqual(stream.append([0xA5, 0x41]), "日A")
    }
}

/// Where two id lists first differ (the shorter length when one is a prefix of the other).
func firstDifference(_ a: [Int32], _ b: [Int32]) -> Int {
    zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
}

