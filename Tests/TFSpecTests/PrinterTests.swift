import XCTest
@testable import TFSpec

final class PrinterTests: XCTestCase {
    /// Parses `text` as an expression and prints it back canonically.
    private func canonical(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do { return try parseExpression(text).printed } catch {
            XCTFail("\(error)", file: file, line: line)
            return ""
        }
    }

    func testMinimalParentheses() {
        let cases: [(String, String)] = [
            ("a - (b - c)", "a - (b - c)"),
            ("(a - b) - c", "a - b - c"),
            ("((a + b)) * c", "(a + b) * c"),
            ("a * (b * c)", "a * (b * c)"),
            ("(a * b) * c", "a * b * c"),
            ("(a * b) + c", "a * b + c"),
            ("a + (b * c)", "a + b * c"),
            ("a + (b + c)", "a + (b + c)"),
            ("a - (b + c)", "a - (b + c)"),
            ("a / b % c", "a / b % c"),
            ("a % (b / c)", "a % (b / c)"),
            ("(a+b)/(c-d)", "(a + b) / (c - d)"),
            ("-(a + b)", "-(a + b)"),
            ("-(a * b)", "-(a * b)"),
            ("(-a) * b", "-a * b"),
            ("-(-a)", "--a"),
            ("a--b", "a - -b"),
            ("a*-b", "a * -b"),
            ("-(f(x))", "-f(x)"),
            ("-(1)", "-1"),
        ]
        for (input, expected) in cases { XCTAssertEqual(canonical(input), expected, input) }
    }

    func testLiteralsCallsAndNames() {
        XCTAssertEqual(canonical("f( x ,site:attention.query, tokens:4*hidden)"), "f(x, site: attention.query, tokens: 4 * hidden)")
        XCTAssertEqual(canonical("g( )"), "g()")
        XCTAssertEqual(canonical("g(h(i(j)), k: l(m: n))"), "g(h(i(j)), k: l(m: n))")
        XCTAssertEqual(canonical(#""a\"b\\c""#), #""a\"b\\c""#)
        XCTAssertEqual(canonical("true"), "true")
        XCTAssertEqual(canonical("007"), "7")
    }

    func testFloatsAlwaysLexAsFloats() {
        XCTAssertEqual(canonical("1e-5"), "1e-05")
        XCTAssertEqual(canonical("10000.0"), "10000.0")
        XCTAssertEqual(canonical("1E3"), "1000.0")
        XCTAssertEqual(canonical("1e16"), "1e+16")
        XCTAssertEqual(canonical("0.1"), "0.1")
        XCTAssertEqual(canonical("0.0"), "0.0")
        XCTAssertEqual(canonical("4.9e-324"), "5e-324")
        for value in [0.0, 1.0, 1e-5, 1e16, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude, 2.2250738585072014e-308, 0.1 + 0.2] {
            let text = Printer.floatLiteral(value)
            XCTAssertEqual(try parseExpression(text).kind, .float(value), text)
        }
    }

    func testLayoutOfItems() throws {
        let spec = try parse(#"let a=1 let b=2 model "m" {} block(x){return x} let c=3"#)
        XCTAssertEqual(spec.printed, """
            let a = 1
            let b = 2

            model "m" {}

            block(x) {
                return x
            }

            let c = 3

            """)
    }

    /// Random well-formed ASTs print to text that parses back to the same AST.
    func testRandomSpecsRoundTrip() throws {
        var all = ""
        defer {
            // The generator does reach the awkward shapes.
            for shape in [" - (", ") * ", ") % ", " / -", "--", "-(", "e-", "e+", "\\\"", "\\\\", "()", ": ", "."] {
                XCTAssertTrue(all.contains(shape), "no random spec contains \(shape)")
            }
        }
        for seed in 0..<400 as Range<UInt64> {
            var generator = SpecGenerator(seed: seed)
            let spec = generator.spec()
            let printed = spec.printed
            all += printed
            let reparsed: Spec
            do {
                reparsed = try parse(printed, path: "seed-\(seed)")
            } catch {
                return XCTFail("seed \(seed): \(error)\n\(printed)")
            }
            if reparsed != spec { return XCTFail("seed \(seed) does not round-trip:\n\(printed)") }
            XCTAssertEqual(reparsed.printed, printed, "seed \(seed)")
        }
    }

    /// Random expressions on their own, deeper than in the specs.
    func testRandomExpressionsRoundTrip() throws {
        for seed in 1000..<1400 as Range<UInt64> {
            var generator = SpecGenerator(seed: seed)
            let expr = generator.expr(depth: 8)
            let printed = expr.printed
            XCTAssertEqual(try parseExpression(printed), expr, "seed \(seed): \(printed)")
        }
    }
}
