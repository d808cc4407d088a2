import XCTest
@testable import TFSpec
import TFTestSupport

final class DiagnosticTests: XCTestCase {
    private let valid = """
        model "m" {
            hidden = 64
        }
        block(x) {
            return x
        }
        """

    private func assertHeadline(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let d = diagnostic(text, file: file, line: line) else { return }
        XCTAssertEqual(d.headline, expected, file: file, line: line)
        // Every diagnostic quotes its line, so it renders with a caret.
        XCTAssertNotNil(d.sourceLine, file: file, line: line)
    }

    private func assertRendered(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let d = diagnostic(text, file: file, line: line) else { return }
        XCTAssertEqual(d.description, expected, file: file, line: line)
    }

    // MARK: - Full renderings

    func testRenderedMissingEquals() {
        assertRendered(valid.replacingOccurrences(of: "hidden = 64", with: "hidden 64"), """
            t.tfs:2:12: error: expected '=' after field name 'hidden', found '64'
                hidden 64
                       ^
            """)
    }

    func testRenderedUnterminatedBlock() {
        assertRendered("model \"m\" {\n    hidden = 64\n}\nblock(x) {\n    h = f(x)\n    return h\n", """
            t.tfs:6:13: error: unterminated block: '{' at 4:10 is never closed
                return h
                        ^
            """)
    }

    func testRenderedUnexpectedCharacterAfterTab() {
        assertRendered("model \"m\" {\n\thidden = 6 $ 4\n}", "t.tfs:2:13: error: unexpected character '$'\n\thidden = 6 $ 4\n\t           ^")
    }

    func testRenderedUnterminatedString() {
        assertRendered("model \"tiny {\n    hidden = 64\n}", """
            t.tfs:1:7: error: unterminated string
            model "tiny {
                  ^
            """)
    }

    func testRenderedDuplicateStatement() {
        assertRendered("model \"m\" {}\nblock(x) {\n    x1 = x\n    x1 = x + x\n    return x1\n}", """
            t.tfs:4:5: error: 'x1' is already defined at 3:5
                x1 = x + x
                ^
            """)
    }

    func testRenderedEmptyFile() {
        assertRendered("", "t.tfs:1:1: error: empty spec: expected 'model'\n\n^")
    }

    func testRenderedCRLF() {
        assertRendered("model \"m\" {\r\n    hidden = $\r\n}\r\n", "t.tfs:2:14: error: unexpected character '$'\n    hidden = $\n             ^")
    }

    // MARK: - Lexical errors

    func testLexicalErrors() {
        assertHeadline("model \"m\" {\n    hidden = $4\n}", "t.tfs:2:14: error: unexpected character '$'")
        assertHeadline("model \"m\" { a = 1 ; }", "t.tfs:1:19: error: unexpected character ';'")
        assertHeadline("model \"m\" { a = \u{A0}1 }", "t.tfs:1:17: error: unexpected character U+00A0")
        assertHeadline("model \"é\" { é = 1 }", "t.tfs:1:13: error: unexpected character 'é'")
        assertHeadline("model \"m\" {\n    hidden = 99999999999999999999\n}",
                       "t.tfs:2:14: error: integer literal '99999999999999999999' is too large")
        assertHeadline("model \"m\" {\n    hidden = 9223372036854775808\n}",
                       "t.tfs:2:14: error: integer literal '9223372036854775808' is too large")
        assertHeadline("model \"m\" { eps = 1e999 }", "t.tfs:1:19: error: float literal '1e999' is too large")
        assertHeadline("model \"m\" { eps = 1.x }", "t.tfs:1:21: error: expected a digit after '.' in number '1.', found 'x'")
        assertHeadline("model \"m\" { eps = 1. }", "t.tfs:1:21: error: expected a digit after '.' in number '1.', found whitespace")
        assertHeadline("model \"m\" {\n    eps = 1e-\n}",
                       "t.tfs:2:14: error: expected a digit in the exponent of number '1e-', found end of line")
        assertHeadline("model \"m\" { eps = 1e", "t.tfs:1:21: error: expected a digit in the exponent of number '1e', found end of file")
        assertHeadline("model \"m\" { eps = 2x }", "t.tfs:1:20: error: unexpected character 'x' after number '2'")
        assertHeadline("model \"m\" { eps = 1.5e3_ }", "t.tfs:1:24: error: unexpected character '_' after number '1.5e3'")
        assertHeadline(#"model "a\nb" {}"#, #"t.tfs:1:9: error: invalid escape '\n' in string: only '\"' and '\\' are allowed"#)
        assertHeadline("model \"abc", "t.tfs:1:7: error: unterminated string")
        assertHeadline("model \"abc\\", "t.tfs:1:7: error: unterminated string")
        assertHeadline("model \"ab\nc\" {}", "t.tfs:1:7: error: unterminated string")
    }

    // MARK: - Structure

    func testEmptySpec() {
        assertHeadline("", "t.tfs:1:1: error: empty spec: expected 'model'")
        assertHeadline("# only a comment\n\n   \t\n# and another", "t.tfs:1:1: error: empty spec: expected 'model'")
    }

    func testExactlyOneModelAndOneBlock() {
        assertHeadline(valid + "\nmodel \"n\" {}", "t.tfs:7:1: error: a spec has exactly one 'model', and one is already declared at 1:1")
        assertHeadline(valid + "\n  block(y) { return y }",
                       "t.tfs:7:3: error: a spec has exactly one 'block', and one is already declared at 4:1")
        assertHeadline("model \"m\" {\n    hidden = 64\n}\n# no block\n", "t.tfs:3:2: error: expected a 'block' in the spec, found end of file")
        assertHeadline("let a = 1\nblock(x) { return x }", "t.tfs:2:22: error: expected a 'model' in the spec, found end of file")
    }

    func testDuplicateNames() {
        assertHeadline("model \"m\" {\n    hidden = 64\n    heads = 4\n    hidden = 32\n}",
                       "t.tfs:4:5: error: 'hidden' is already defined at 2:5")
        assertHeadline(valid + "\nlet ffn = 1\nlet ffn = 2", "t.tfs:8:5: error: 'ffn' is already defined at 7:5")
        assertHeadline("model \"m\" {}\nblock(x) {\n    h = x\n    x = h\n    return x\n}",
                       "t.tfs:4:5: error: 'x' is already defined at 2:7")
        // Fields, constants and statements are separate namespaces as far as the parser is concerned.
        XCTAssertNoThrow(try parse("model \"m\" { a = 1 } let a = a block(a) { b = a return b }"))
    }

    // MARK: - Syntax

    func testItemErrors() {
        assertHeadline("foo = 1", "t.tfs:1:1: error: expected 'model', 'let' or 'block', found 'foo'")
        assertHeadline(valid + "\n}", "t.tfs:7:1: error: expected 'model', 'let' or 'block', found '}'")
        assertHeadline("model m {}", "t.tfs:1:7: error: expected model name string after 'model', found 'm'")
        assertHeadline("model", "t.tfs:1:6: error: expected model name string after 'model', found end of file")
        assertHeadline("model \"m\" hidden = 1", "t.tfs:1:11: error: expected '{' after model name, found 'hidden'")
        assertHeadline("model \"m\" { 3 }", "t.tfs:1:13: error: expected field name or '}' in model, found '3'")
        assertHeadline("model \"m\" { \"x\" }", #"t.tfs:1:13: error: expected field name or '}' in model, found string "x""#)
        assertHeadline("model \"m\" { return = 1 }", "t.tfs:1:13: error: expected field name or '}' in model, found 'return'")
        assertHeadline("model \"m\" { a = 1", "t.tfs:1:18: error: unterminated block: '{' at 1:11 is never closed")
        assertHeadline("model \"m\" { a = ", "t.tfs:1:16: error: unterminated block: '{' at 1:11 is never closed")
        assertHeadline("let = 3", "t.tfs:1:5: error: expected constant name after 'let', found '='")
        assertHeadline("let true = 3", "t.tfs:1:5: error: expected constant name after 'let', found 'true'")
        assertHeadline("let a 3", "t.tfs:1:7: error: expected '=' after constant name 'a', found '3'")
        assertHeadline("let a =", "t.tfs:1:8: error: expected an expression after '=', found end of file")
    }

    func testBlockErrors() {
        let m = "model \"m\" {}\n"
        assertHeadline(m + "block x", "t.tfs:2:7: error: expected '(' after 'block', found 'x'")
        assertHeadline(m + "block() {", "t.tfs:2:7: error: expected parameter name after 'block(', found ')'")
        assertHeadline(m + "block(x y", "t.tfs:2:9: error: expected ')' after block parameter 'x', found 'y'")
        assertHeadline(m + "block(x", "t.tfs:2:8: error: unterminated parenthesis: '(' at 2:6 is never closed")
        assertHeadline(m + "block(x) return x", "t.tfs:2:10: error: expected '{' after 'block(x)', found 'return'")
        assertHeadline(m + "block(x) {\n    h = f(x)\n}", "t.tfs:4:1: error: expected 'return' before '}' in block")
        assertHeadline(m + "block(x) {}", "t.tfs:2:11: error: expected 'return' before '}' in block")
        assertHeadline(m + "block(x) { 3 }", "t.tfs:2:12: error: expected statement name or 'return' in block, found '3'")
        assertHeadline(m + "block(x) { h f(x) }", "t.tfs:2:14: error: expected '=' after statement name 'h', found 'f'")
        assertHeadline(m + "block(x) { return x y = x }",
                       "t.tfs:2:21: error: expected '}' after the 'return' expression, found 'y'")
        assertHeadline(m + "block(x) { return x return x }",
                       "t.tfs:2:21: error: expected '}' after the 'return' expression, found 'return'")
        assertHeadline(m + "block(x) {\n    return x", "t.tfs:3:13: error: unterminated block: '{' at 2:10 is never closed")
        assertHeadline(m + "block(x) {\n    h = x\n", "t.tfs:3:10: error: unterminated block: '{' at 2:10 is never closed")
    }

    func testExpressionErrors() {
        let m = "model \"m\" {}\nblock(x) {\n"
        assertHeadline(m + "    h = }", "t.tfs:3:9: error: expected an expression after '=', found '}'")
        assertHeadline(m + "    h = x + )", "t.tfs:3:13: error: expected an expression after '+', found ')'")
        assertHeadline(m + "    h = x * * x", "t.tfs:3:13: error: expected an expression after '*', found '*'")
        assertHeadline(m + "    h = f(x y)", "t.tfs:3:13: error: expected ',' or ')' in the arguments of 'f', found 'y'")
        assertHeadline(m + "    h = f(x,)", "t.tfs:3:13: error: expected an expression after ',', found ')'")
        assertHeadline(m + "    h = f(site: )", "t.tfs:3:17: error: expected an expression after ':', found ')'")
        assertHeadline(m + "    h = (x + x y = x", "t.tfs:3:16: error: expected ')' to close '(' at 3:9, found 'y'")
        assertHeadline(m + "    h = attention.)", "t.tfs:3:19: error: expected a name after 'attention.', found ')'")
        assertHeadline(m + "    h = a.b.3", "t.tfs:3:13: error: expected a name after 'a.b.', found '3'")
        assertHeadline(m + "    return f(x", "t.tfs:3:15: error: unterminated parenthesis: '(' at 3:13 is never closed")
        assertHeadline(m + "    return (x", "t.tfs:3:14: error: unterminated parenthesis: '(' at 3:12 is never closed")
        assertHeadline(m + "    return = x }", "t.tfs:3:12: error: expected an expression after 'return', found '='")
    }

    func testNestingLimit() {
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        assertHeadline("let a = " + deep, "t.tfs:1:209: error: expression is nested too deeply (more than 200 levels)")
        let negations = String(repeating: "-", count: 5000) + "1"
        assertHeadline("let a = " + negations, "t.tfs:1:209: error: expression is nested too deeply (more than 200 levels)")
        let ok = String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200)
        XCTAssertNoThrow(try parseExpression(ok))
    }

    func testParseExpressionRequiresTheWholeText() {
        XCTAssertThrowsError(try parseExpression("a b", path: "e")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "e:1:3: error: expected end of expression, found 'b'")
        }
        XCTAssertThrowsError(try parseExpression("", path: "e")) { error in
            XCTAssertEqual((error as? Diagnostic)?.headline, "e:1:1: error: expected an expression, found end of file")
        }
    }

    /// Corrupting a real spec at random never crashes the parser: it either parses (and then round-trips)
    /// or throws a diagnostic that points inside the file.
    func testMutatedSpecsFailGracefully() throws {
        let path = repoRoot.appendingPathComponent("specs/tiny.tfs").path
        let original = Array(try SourceFile.load(path).text)
        let junk: [String] = ["{", "}", "(", ")", ",", ":", "=", ".", "-", "*", "\"", "\\", "#", "$", "1", "e",
                              "x", " ", "\n", "\t", "é", "\u{301}", "return", "model", "block"]
        for seed in 0..<300 as Range<UInt64> {
            var rng = SplitMix64(seed: seed)
            var chars = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0...2, using: &rng) {
                case 0: chars.remove(at: i)
                case 1: chars.insert(contentsOf: junk.randomElement(using: &rng)!, at: i)
                default: chars.replaceSubrange(i...i, with: junk.randomElement(using: &rng)!)
                }
            }
            let text = String(chars)
            let source = SourceFile(path: "m", text: text)
            do {
                let spec = try parse(source)
                XCTAssertEqual(try parse(spec.printed), spec, "seed \(seed)")
            } catch let d as Diagnostic {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                XCTAssertTrue((1...lines.count).contains(d.location.line), "seed \(seed): \(d)")
                XCTAssertGreaterThanOrEqual(d.location.column, 1, "seed \(seed)")
                XCTAssertLessThanOrEqual(d.location.column, lines[d.location.line - 1].count + 1, "seed \(seed): \(d)")
                XCTAssertNotNil(d.sourceLine, "seed \(seed)")
            }
        }
    }
}
