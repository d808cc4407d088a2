import XCTest
@testable import TFSpec
@testable import TFIR

/// Specs that used to overflow the stack (a segfault): long sums in a `let` or a `return`, deep
/// parentheses and negations, and long chains of statements written in reverse order. Each either
/// works or gives a located error; none recurses without bound.
final class DepthTests: XCTestCase {
    static let header = """
    model "t" {
        vocab = 32
        hidden = 16
        heads = 2
        layers = 2
        context = 8
    }

    """

    /// `lets` and a block returning `result` after `statements`.
    func spec(lets: String = "", statements: [String] = [], result: String = "x") -> String {
        Self.header + lets + "\nblock(x) {\n" + statements.map { "    " + $0 + "\n" }.joined() + "    return \(result)\n}\n"
    }

    func headline(_ text: String) -> String? {
        let source = SourceFile(path: "t.tfs", text: text)
        do {
            _ = try lower(try parse(source), source: source, memory: nil)
            return nil
        } catch let d as Diagnostic {
            return d.headline
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    /// The column of the `k`-th occurrence (1-based) of `needle` in `line`, 1-based.
    func column(of needle: String, occurrence k: Int, in line: String) -> Int {
        var index = line.startIndex
        var found = line.startIndex
        for _ in 0..<k {
            found = line.range(of: needle, range: index..<line.endIndex)!.lowerBound
            index = line.index(after: found)
        }
        return line.distance(from: line.startIndex, to: found) + 1
    }

    func testLongExpressionsAreRefusedWhereTheyBecomeTooDeep() {
        let limit = Parser.maximumHeight
        // `let` sums: n terms have n - 1 operators; the one past the limit is named.
        for (terms, ok) in [(limit + 1, true), (limit + 2, false), (10_000, false)] {
            let line = "let k = " + Array(repeating: "1", count: terms).joined(separator: " + ")
            let result = headline(spec(lets: line + "\n"))
            if ok {
                XCTAssertNil(result, "\(terms) terms")
            } else {
                let col = column(of: "+", occurrence: limit + 1, in: line)
                XCTAssertEqual(result, "t.tfs:8:\(col): error: expression is too deep: more than \(limit) operators, calls or negations inside one another (a sum of n terms has n - 1); split it into named parts", "\(terms) terms")
            }
        }
        // Products, and a `return` of a 10,000-term residual sum.
        let product = "let k = " + Array(repeating: "1", count: 5000).joined(separator: " * ")
        XCTAssertEqual(headline(spec(lets: product + "\n"))?.hasPrefix("t.tfs:8:\(column(of: "*", occurrence: limit + 1, in: product)): error: expression is too deep"), true)
        let sum = Array(repeating: "x", count: 10_000).joined(separator: " + ")
        let returnLine = "    return " + sum
        XCTAssertEqual(headline(spec(result: sum))?.hasPrefix("t.tfs:10:\(column(of: "+", occurrence: limit + 1, in: returnLine)): error: expression is too deep"), true)
        // Within the limit a residual sum lowers to one add per operator in each layer.
        let graph = try? lower(try parse(spec(result: Array(repeating: "x", count: limit + 1).joined(separator: " + ")), path: "t.tfs"), memory: nil)
        XCTAssertEqual(graph?.instructions.filter { $0.op == .add }.count, 2 * limit)
    }

    func testDeepNestingIsRefused() {
        let parens = "let k = " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000)
        XCTAssertEqual(headline(spec(lets: parens + "\n")), "t.tfs:8:\(9 + Parser.maximumDepth): error: expression is nested too deeply (more than \(Parser.maximumDepth) levels)")
        let negations = "let k = " + String(repeating: "-", count: 100_000) + "1"
        XCTAssertEqual(headline(spec(lets: negations + "\n")), "t.tfs:8:\(9 + Parser.maximumDepth): error: expression is nested too deeply (more than \(Parser.maximumDepth) levels)")
        let calls = "    y = " + String(repeating: "layernorm(", count: 10_000) + "x" + String(repeating: ")", count: 10_000)
        XCTAssertEqual(headline(spec(statements: [String(calls.dropFirst(4))], result: "y")),
                       "t.tfs:10:\(9 + 10 * Parser.maximumDepth): error: expression is nested too deeply (more than \(Parser.maximumDepth) levels)")
    }

    /// 10,000 statements, each reading the next one written: ordering them is iterative.
    func testLongStatementChainInReverseOrder() throws {
        let n = 10_000
        var statements = ["y0 = layernorm(x)"] + (1..<n).map { "y\($0) = layernorm(y\($0 - 1))" }
        statements.reverse()
        let graph = try lower(try parse(spec(statements: statements, result: "y\(n - 1)"), path: "t.tfs"), memory: nil)
        // Every layer: n LayerNorms in dependency order, plus the final norm.
        XCTAssertEqual(graph.instructions.filter { if case .layerNorm = $0.op { return true } else { return false } }.count, 2 * n + 1)
        // A cycle at the end of a long chain is still found and named.
        var cyclic = statements
        cyclic[cyclic.count - 1] = "y0 = layernorm(y\(n - 1))"
        XCTAssertEqual(headline(spec(statements: cyclic, result: "y\(n - 1)"))?.hasPrefix("t.tfs:"), true)
        XCTAssertEqual(headline(spec(statements: cyclic, result: "y\(n - 1)"))?.contains("error: cycle in block: y"), true)
    }
}
