import XCTest
@testable import TFSpec

final class ParserTests: XCTestCase {
    private func tiny() throws -> Spec {
        try parse(SourceFile.load(repoRoot.appendingPathComponent("specs/tiny.tfs").path))
    }

    private func name(_ parts: String...) -> Expr.Kind { .name(parts) }
    private func e(_ kind: Expr.Kind) -> Expr { Expr(kind, at: nowhere) }

    func testTinyModelFields() throws {
        let spec = try tiny()
        let model = try XCTUnwrap(spec.model)
        XCTAssertEqual(model.name, "tiny")
        XCTAssertEqual(model.fields.map(\.name), [
            "vocab", "hidden", "heads", "layers", "context", "tie_embeddings", "pattention", "norm_eps",
            "final_norm", "rotary_fraction", "rotary_base",
        ])
        let fields = Dictionary(uniqueKeysWithValues: model.fields.map { ($0.name, $0.value.kind) })
        XCTAssertEqual(fields["vocab"], .integer(256))
        XCTAssertEqual(fields["hidden"], .integer(64))
        XCTAssertEqual(fields["tie_embeddings"], .boolean(true))
        XCTAssertEqual(fields["pattention"], name("l2_norm_gelu"))
        XCTAssertEqual(fields["norm_eps"], .float(1e-5))
        XCTAssertEqual(fields["rotary_fraction"], .float(0.25))
        XCTAssertEqual(fields["rotary_base"], .float(10000.0))
        XCTAssertTrue(spec.file.hasSuffix("specs/tiny.tfs"))
    }

    func testTinyConstantsAndItemOrder() throws {
        let spec = try tiny()
        XCTAssertEqual(spec.items.count, 5)
        guard case .model = spec.items[0], case .block = spec.items[4] else { return XCTFail("item order") }
        XCTAssertEqual(spec.constants.map(\.name), ["qkv", "proj", "ffn"])
        XCTAssertEqual(spec.constants[0].value.kind, name("hidden"))
        XCTAssertEqual(spec.constants[2].value.kind, .binary(.multiply, e(.integer(4)), e(name("hidden"))))
    }

    func testTinyBlock() throws {
        let block = try XCTUnwrap(try tiny().block)
        XCTAssertEqual(block.parameter, "x")
        XCTAssertEqual(block.statements.map(\.name), ["h", "q", "k", "v", "a", "x1", "h1", "x2"])
        XCTAssertEqual(block.result.kind, name("x2"))
        XCTAssertEqual(block.statements[0].value.kind, .call("layernorm", [Argument(label: nil, value: e(name("x")), at: nowhere)]))
        XCTAssertEqual(block.statements[1].value.kind, .call("pattention", [
            Argument(label: nil, value: e(name("h")), at: nowhere),
            Argument(label: "site", value: e(name("attention", "query")), at: nowhere),
            Argument(label: "tokens", value: e(name("qkv")), at: nowhere),
        ]))
        guard case .call("attention", let args) = block.statements[4].value.kind else { return XCTFail("attention") }
        XCTAssertEqual(args.map(\.label), [nil, nil, nil, "heads", "causal", "rotary"])
        XCTAssertEqual(args[4].value.kind, .boolean(true))
        guard case .binary(.add, let lhs, let rhs) = block.statements[5].value.kind else { return XCTFail("x1") }
        XCTAssertEqual(lhs.kind, name("x"))
        guard case .call("pattention", let pargs) = rhs.kind else { return XCTFail("x1 rhs") }
        XCTAssertEqual(pargs[1].value.kind, name("attention", "proj"))
    }

    func testLocationsAreFirstTokens() throws {
        let spec = try tiny()
        let path = repoRoot.appendingPathComponent("specs/tiny.tfs").path
        func at(_ line: Int, _ column: Int) -> SourceLocation { SourceLocation(file: path, line: line, column: column) }
        let model = try XCTUnwrap(spec.model)
        XCTAssertEqual(model.location, at(2, 1))
        XCTAssertEqual(model.fields[0].location, at(3, 5))
        XCTAssertEqual(model.fields[0].value.location, at(3, 13))
        XCTAssertEqual(spec.constants[2].location, at(18, 5))
        XCTAssertEqual(spec.constants[2].value.location, at(18, 11))
        let block = try XCTUnwrap(spec.block)
        XCTAssertEqual(block.location, at(21, 1))
        XCTAssertEqual(block.result.location, at(30, 12))
        // `    x1 = x + pattention(a, site: attention.proj, tokens: proj)`
        let x1 = block.statements[5]
        XCTAssertEqual(x1.location, at(27, 5))
        XCTAssertEqual(x1.value.location, at(27, 10))
        guard case .binary(_, _, let call) = x1.value.kind, case .call(_, let args) = call.kind else { return XCTFail() }
        XCTAssertEqual(call.location, at(27, 14))
        XCTAssertEqual(args.map(\.location), [at(27, 25), at(27, 28), at(27, 50)])
        XCTAssertEqual(args.map(\.value.location), [at(27, 25), at(27, 34), at(27, 58)])
    }

    func testLocationsOfNestedExpressions() throws {
        let expr = try parseExpression("(a + b) * -c", path: "e")
        guard case .binary(.multiply, let lhs, let rhs) = expr.kind else { return XCTFail() }
        XCTAssertEqual(expr.location.column, 1)
        XCTAssertEqual(lhs.location.column, 1)  // the parenthesised operand starts at '('
        XCTAssertEqual(rhs.location.column, 11)
        guard case .negate(let c) = rhs.kind else { return XCTFail() }
        XCTAssertEqual(c.location.column, 12)
    }

    func testPrecedenceAndAssociativity() throws {
        func n(_ s: String) -> Expr { e(.name([s])) }
        XCTAssertEqual(try parseExpression("a - b - c"), e(.binary(.subtract, e(.binary(.subtract, n("a"), n("b"))), n("c"))))
        XCTAssertEqual(try parseExpression("a - (b - c)"), e(.binary(.subtract, n("a"), e(.binary(.subtract, n("b"), n("c"))))))
        XCTAssertEqual(try parseExpression("a + b * c"), e(.binary(.add, n("a"), e(.binary(.multiply, n("b"), n("c"))))))
        XCTAssertEqual(try parseExpression("a / b % c"), e(.binary(.remainder, e(.binary(.divide, n("a"), n("b"))), n("c"))))
        XCTAssertEqual(try parseExpression("-a * b"), e(.binary(.multiply, e(.negate(n("a"))), n("b"))))
        XCTAssertEqual(try parseExpression("--a"), e(.negate(e(.negate(n("a"))))))
        XCTAssertEqual(try parseExpression("a--b"), e(.binary(.subtract, n("a"), e(.negate(n("b"))))))
        XCTAssertEqual(try parseExpression("-1"), e(.negate(e(.integer(1)))))
    }

    func testNewlinesAreNotSignificant() throws {
        let oneLine = try parse(#"model "m" { a = 1 b = 2 * 3 } let c = a block(x) { y = f(x) return y }"#)
        let spread = try parse("""
            model "m" {
                a =
                  1
                b = 2
                  * 3
            }
            let c
              = a
            block(x) { y = f(
                x) return y }
            """)
        XCTAssertEqual(oneLine, spread)
        XCTAssertEqual(oneLine.model?.fields.map(\.name), ["a", "b"])
    }

    func testItemsInAnyOrderAndEmptyPieces() throws {
        let spec = try parse(#"let a = 1 block(x) { return x } let b = "s" model "" { } let c = g()"#)
        XCTAssertEqual(spec.items.count, 5)
        XCTAssertEqual(spec.constants.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(spec.model?.fields, [])
        XCTAssertEqual(spec.block?.statements, [])
        XCTAssertEqual(spec.constants[2].value.kind, .call("g", []))
    }

    func testCRLFAndTabsAndUnicodeColumns() throws {
        let spec = try parse("model \"é\" {\r\n\thidden = 64\r\n}\r\nblock(x) {\r\n return x\r\n}\r\n", path: "w")
        XCTAssertEqual(spec.model?.fields[0].location, SourceLocation(file: "w", line: 2, column: 2))
        XCTAssertEqual(spec.model?.fields[0].value.location, SourceLocation(file: "w", line: 2, column: 11))
        XCTAssertEqual(spec.block?.result.location, SourceLocation(file: "w", line: 5, column: 9))
        // A combining accent makes two scalars but one character: the column counts characters.
        let combining = try parse("model \"e\u{301}\" { h = 1 } block(x) { return x }")
        XCTAssertEqual(combining.model?.name, "e\u{301}")
        XCTAssertEqual(combining.model?.fields[0].location.column, 13)
        // A string may start with a combining mark (which joins the quote into one character).
        XCTAssertEqual(try parse("model \"\u{301}a\" {} block(x) { return x }").model?.name, "\u{301}a")
    }

    func testTinyPrintsCanonically() throws {
        XCTAssertEqual(try tiny().printed, """
            model "tiny" {
                vocab = 256
                hidden = 64
                heads = 4
                layers = 2
                context = 128
                tie_embeddings = true
                pattention = l2_norm_gelu
                norm_eps = 1e-05
                final_norm = plain
                rotary_fraction = 0.25
                rotary_base = 10000.0
            }

            let qkv = hidden
            let proj = hidden
            let ffn = 4 * hidden

            block(x) {
                h = layernorm(x)
                q = pattention(h, site: attention.query, tokens: qkv)
                k = pattention(h, site: attention.key, tokens: qkv)
                v = pattention(h, site: attention.value, tokens: qkv)
                a = attention(q, k, v, heads: heads, causal: true, rotary: true)
                x1 = x + pattention(a, site: attention.proj, tokens: proj)
                h1 = layernorm(x1)
                x2 = x1 + pattention(h1, site: mlp, tokens: ffn)
                return x2
            }

            """)
    }

    func testEverySpecFileRoundTrips() throws {
        let files = try specFiles()
        XCTAssertFalse(files.isEmpty, "no specs/*.tfs found under \(repoRoot.path)")
        for path in files {
            let spec = try parse(SourceFile.load(path))
            let printed = spec.printed
            let reparsed = try parse(printed, path: path + " (printed)")
            XCTAssertEqual(reparsed, spec, path)
            XCTAssertEqual(reparsed.printed, printed, "printing is not a fixed point for \(path)")
        }
    }
}
