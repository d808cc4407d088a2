import Foundation
import XCTest
import TFWeights

/// Errors stay short and exact whatever the input: a long line is quoted around the column, a
/// long list of names is cut with a count, a --name that would not parse is refused, and every
/// error (a bad command line too) exits with status 1.
final class ErrorMessageTests: XCTestCase {
    func testALongLineIsQuotedAroundTheColumn() throws {
        let dir = try TFC.temporaryDirectory(self)
        let padding = String(repeating: " ", count: 2_000_000)
        let cases: [(name: String, text: String, line: Int, column: Int, message: String)] = [
            ("junk after 2 MB of spaces", "model \"m\" {\n    vocab = 10" + padding + "@\n}\n", 2, 15 + padding.count,
             "unexpected character '@'"),
            ("an error at the start of a 2 MB line", "model \"m\" {\n    @" + padding + "\n}\n", 2, 5, "unexpected character '@'"),
        ]
        for c in cases {
            let path = dir.appendingPathComponent("long.tfs").path
            try c.text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try TFC.run(["check", path])
            XCTAssertEqual(r.status, 1, c.name)
            let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(lines.count, 4, c.name)  // headline, the quoted part, the caret, ""
            XCTAssertTrue(lines[0].hasPrefix("\(path):\(c.line):\(c.column): error: \(c.message)"), "\(c.name): \(lines[0])")
            XCTAssertLessThanOrEqual(lines[1].count, 162, c.name)
            // The caret is under the character the error is about.
            let caret = lines[2].count - 1
            XCTAssertEqual(lines[2].last, "^")
            XCTAssertEqual(Array(lines[1])[caret], "@", c.name)
            XCTAssertLessThan(r.stderr.utf8.count, 1000, c.name)
        }

        // A message quoting a 2 MB token is cut too.
        let path = dir.appendingPathComponent("number.tfs").path
        let number = String(repeating: "9", count: 2_000_000)
        try "model \"m\" {\n    vocab = \(number)\n}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try TFC.run(["check", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertLessThan(r.stderr.utf8.count, 1200, String(r.stderr.prefix(600)))
        let headline = String(r.stderr.split(separator: "\n")[0])
        XCTAssertTrue(headline.hasPrefix("\(path):2:13: error: integer literal '999"), headline)
        XCTAssertTrue(headline.hasSuffix("… (\(2_000_000 + 31 - 400) more characters)"), headline)
    }

    func testLongListsOfTensorNamesAreCutWithACount() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let good = try WeightFile(path: weights)

        // Every tensor the spec wants, plus 20,000 it does not.
        var writer = SafetensorsWriter()
        for t in good.tensors { writer.add(t.name, shape: t.shape, data: Array(t.floats)) }
        let extra = (0..<20_000).map { "extra.\($0)" }
        for name in extra { writer.add(name, shape: [1], data: [0]) }
        let many = dir.appendingPathComponent("many.safetensors").path
        try writer.write(to: many)
        var r = try TFC.run(["run", "specs/tiny.tfs", "--weights", many, "--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        let first = extra.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.prefix(10)
        XCTAssertEqual(r.stderr, "\(many): error: weights do not match the spec: unexpected \(first.joined(separator: ", ")), … and 19,990 more\n")

        // None of them: 21 missing, listed 10 and counted.
        var one = SafetensorsWriter()
        one.add("x", shape: [1], data: [0])
        let few = dir.appendingPathComponent("few.safetensors").path
        try one.write(to: few)
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", few, "--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        let sites = ["attention.query", "attention.key", "attention.value", "attention.proj"]
        let expected = (["embed.weight"] + sites.flatMap { ["layers.0.\($0).key_param_tokens", "layers.0.\($0).value_param_tokens"] }
                        + ["layers.0.mlp.key_param_tokens"]).joined(separator: ", ")
        XCTAssertEqual(r.stderr, "\(few): error: weights do not match the spec: missing \(expected), … and \(good.tensors.count - 10) more; unexpected x\n")
    }

    func testGrowRefusesANameThatWouldNotParse() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let out = ["-o", dir.appendingPathComponent("g.tfs").path, "--out-weights", dir.appendingPathComponent("g.safetensors").path]
        for (name, code) in [("a\nb", "U+000A"), ("a\rb", "U+000D"), ("tab\there", "U+0009"), ("bell\u{7}", "U+0007"), ("ls\u{2028}", "U+2028")] {
            let r = try TFC.run(["grow", "specs/tiny.tfs", "--weights", weights, "--tokens", "mlp=+8", "--name", name] + out)
            XCTAssertEqual(r.status, 1, name)
            XCTAssertEqual(r.stderr, "error: --name: a model name cannot contain a line break or control character (\(code))\n")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["w.safetensors"], "nothing written")
        }
        // Quotes and backslashes are escaped: the grown spec parses back to the same name.
        let r = try TFC.run(["grow", "specs/tiny.tfs", "--weights", weights, "--tokens", "mlp=+8", "--name", "say \"hi\" \\ bye"] + out)
        XCTAssertSucceeded(r, "grow --name with quotes")
        let check = try TFC.run(["check", dir.appendingPathComponent("g.tfs").path, "--json"])
        XCTAssertSucceeded(check, "check the grown spec")
        let object = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["name"] as? String, "say \"hi\" \\ bye")
    }

    func testEveryErrorExitsWithStatusOne() throws {
        let cases: [(arguments: [String], stderr: String)] = [
            (["check", "specs/tiny.tfs", "--jsn"], "Error: Unknown option '--jsn'"),
            (["check"], "Error: Missing expected argument '<spec>'"),
            (["run", "specs/tiny.tfs", "--weights", "w", "--tokens", "1", "--threads", "0"], "Error: --threads must be at least 1, got 0"),
            (["bench", "kernels", "--repeat", "0"], "Error: --repeat must be at least 1, got 0"),
            (["frobnicate"], "Error: Unexpected argument 'frobnicate'"),
            (["check", "/nonexistent.tfs"], "/nonexistent.tfs:1:1: error: no such file"),
        ]
        for c in cases {
            let r = try TFC.run(c.arguments)
            XCTAssertEqual(r.status, 1, "\(c.arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix(c.stderr), "\(c.arguments): \(r.stderr)")
        }
        for arguments in [["--help"], ["check", "--help"], ["--version"]] {
            let r = try TFC.run(arguments)
            XCTAssertEqual(r.status, 0, "\(arguments)")
            XCTAssertFalse(r.stdout.isEmpty, "\(arguments)")
        }
    }
}
