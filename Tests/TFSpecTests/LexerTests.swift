import XCTest
@testable import TFSpec
import TFTestSupport

final class LexerTests: XCTestCase {
    private func kinds(_ text: String) throws -> [Token.Kind] {
        try Lexer.tokenize(SourceFile(path: "t", text: text)).map(\.kind)
    }

    func testTokenKinds() throws {
        XCTAssertEqual(try kinds(#"model "m" { a = -4096 + 1.5e3 } # comment"#), [
            .keyword(.model), .string("m"), .punctuation(.leftBrace), .identifier("a"), .punctuation(.equals),
            .punctuation(.minus), .integer(4096), .punctuation(.plus), .float(1500), .punctuation(.rightBrace), .end,
        ])
        XCTAssertEqual(try kinds("let block return true false _x9 e5"), [
            .keyword(.let), .keyword(.block), .keyword(.return), .keyword(.true), .keyword(.false),
            .identifier("_x9"), .identifier("e5"), .end,
        ])
        XCTAssertEqual(try kinds("{}(),:=.+-*/%"), Punctuation.allCases.map { .punctuation($0) } + [.end])
        XCTAssertEqual(try kinds("attention.query"), [.identifier("attention"), .punctuation(.dot), .identifier("query"), .end])
    }

    func testNumbers() throws {
        XCTAssertEqual(try kinds("0 007 9223372036854775807"), [.integer(0), .integer(7), .integer(Int.max), .end])
        XCTAssertEqual(try kinds("1e-5 0.25 10000.0 1E3 2e+2 1e-400 5e-324"),
                       [.float(1e-5), .float(0.25), .float(10000), .float(1000), .float(200), .float(0), .float(Double.leastNonzeroMagnitude), .end])
    }

    func testStringEscapes() throws {
        let tokens = try Lexer.tokenize(SourceFile(path: "t", text: ##""a\"b\\c" "" "# not a comment""##))
        XCTAssertEqual(tokens.map(\.kind), [Token.Kind.string(#"a"b\c"#), .string(""), .string("# not a comment"), .end])
        XCTAssertEqual(tokens[0].text, #""a\"b\\c""#)
        XCTAssertEqual(tokens[0].quoted, #"string "a\"b\\c""#)
    }

    func testLocations() throws {
        let tokens = try Lexer.tokenize(SourceFile(path: "t", text: "# c\n  ab = \"x\"\n\t7  \n\n"))
        XCTAssertEqual(tokens.map(\.location.line), [2, 2, 2, 3, 3])
        XCTAssertEqual(tokens.map(\.location.column), [3, 6, 8, 2, 3])
        XCTAssertEqual(tokens[0].endLocation.column, 5)
        // The end of the file sits just after the last token, or at 1:1 when there is none.
        XCTAssertEqual(tokens.last?.location, SourceLocation(file: "t", line: 3, column: 3))
        XCTAssertEqual(try Lexer.tokenize(SourceFile(path: "t", text: "  # nothing\n\n")).map(\.location),
                       [SourceLocation(file: "t", line: 1, column: 1)])
    }

    /// Columns on lines with non-ASCII text are counted incrementally; each must equal the number of
    /// characters before the token on its line, counted from scratch.
    func testColumnsCountCharactersOnLongUnicodeLines() throws {
        let tokens = ["a", "bc", "=", "(", ")", "1.5", "\"é\"", "\"e\u{301}\"", "\"\u{301}x\"", "\"🙂🏽\"", "\"🇫🇷\"",
                      #""\\\#u{301}""#, #""\"\#u{301}""#, #""\\""#]
        let trivia = ["\t", " ", "  ", " ", " ", " ", "\n", "\r\n", " # é\u{301}\n"]
        for seed in 0..<50 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            var text = String.UnicodeScalarView()
            var expected: [(Int, Int)] = []
            var line = 1, lineStart = 0
            for _ in 0..<200 {
                let prefix = String(String.UnicodeScalarView(text.dropFirst(lineStart)))
                expected.append((line, prefix.count + 1))
                text.append(contentsOf: tokens.randomElement(using: &rng)!.unicodeScalars)
                text.append(contentsOf: trivia.randomElement(using: &rng)!.unicodeScalars)
                if text.last == "\n" { line += 1; lineStart = text.count }
            }
            let lexed = try Lexer.tokenize(SourceFile(path: "u", text: String(text))).dropLast()
            XCTAssertEqual(lexed.map { "\($0.location.line):\($0.location.column)" }, expected.map { "\($0.0):\($0.1)" },
                           "seed \(seed)")
        }
    }
}
