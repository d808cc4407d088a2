import Foundation
import XCTest

/// `tfc eval` against the NumPy reference (Tests/reference/eval_ref.py) computing the same windows
/// with HF's tokens and the reference forward pass.
final class EvalTests: XCTestCase {
    func compare(context: Int, stride: Int?, backend: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = TFC.root.appendingPathComponent("specs/tiny-neox.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        let config = dir.appendingPathComponent("config.json")
        let textFile = dir.appendingPathComponent("text.txt")
        let ours = dir.appendingPathComponent("ours.json").path
        // Real text nobody here wrote: the start of the Apache licence (about 400 tokens).
        let licence = try String(contentsOfFile: "/usr/share/common-licenses/Apache-2.0", encoding: .utf8)
        try Data(String(licence.prefix(1800)).utf8).write(to: textFile)
        let check = try TFC.run(["check", spec, "--json"])
        try Data(check.stdout.utf8).write(to: config)
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", "4"]), "tfc init", file: file, line: line)
        let eval = try TFC.run(["eval", spec, "--weights", weights, "--text", textFile.path, "--context", "\(context)",
                                "--json", ours, "--backend", backend] + (stride.map { ["--stride", "\($0)"] } ?? []))
        XCTAssertSucceeded(eval, "tfc eval", file: file, line: line)
        let reference = try TFC.python([TFC.root.appendingPathComponent("Tests/reference/eval_ref.py").path, "--config", config.path,
                                        "--weights", weights, "--tokenizer", TFC.root.appendingPathComponent("tokenizers/gpt-neox-20b.tokenizer.json").path,
                                        "--text", textFile.path, "--context", "\(context)", "--stride", "\(stride ?? context)"])
        XCTAssertSucceeded(reference, "eval_ref.py", file: file, line: line)
        let a = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ours))) as! [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(reference.stdout.utf8)) as! [String: Any]
        for key in ["scored_tokens", "windows", "bytes", "tokens"] {
            XCTAssertEqual(a[key] as? Int, b[key] as? Int, key, file: file, line: line)
        }
        XCTAssertEqual(a["scored_tokens"] as? Int, (b["tokens"] as! Int) - 1, file: file, line: line)
        for key in ["perplexity", "bits_per_byte", "nll_sum"] {
            let x = a[key] as! Double, y = b[key] as! Double
            XCTAssertLessThan(abs(x - y) / y, 1e-5, "\(key): tfc \(x), NumPy \(y)", file: file, line: line)
        }
        // A random model over 50k tokens is near-uniform: perplexity of the order of the vocabulary.
        XCTAssertGreaterThan(b["perplexity"] as! Double, 1000, file: file, line: line)
        XCTAssertTrue(eval.stdout.hasPrefix(String(format: "perplexity %.4f, bits per byte", a["perplexity"] as! Double)), eval.stdout, file: file, line: line)
    }

    func testOverlappingWindowsNaive() throws { try compare(context: 64, stride: 40, backend: "naive") }
    func testOverlappingWindowsFused() throws { try compare(context: 48, stride: 17, backend: "fused") }
    func testDefaultStrideIsTheWindow() throws { try compare(context: 100, stride: nil, backend: "fused") }

    func testErrors() throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = TFC.root.appendingPathComponent("specs/tiny-neox.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights]), "tfc init")
        let text = dir.appendingPathComponent("t.txt")
        try Data("Hello world, hello world.".utf8).write(to: text)
        func error(_ extra: [String], spec: String = spec) throws -> String {
            let r = try TFC.run(["eval", spec, "--weights", weights, "--text", text.path] + extra)
            XCTAssertEqual(r.status, 1, "\(extra)")
            return r.stderr
        }
        XCTAssertEqual(try error(["--context", "129"]), "error: --context 129 is more than the model's context of 128\n")
        XCTAssertEqual(try error(["--context", "8", "--stride", "9"]), "error: --stride 9 is more than the window of 8 tokens; tokens between windows would not be scored\n")
        XCTAssertEqual(try error(["--json", text.path]), "\(text.path): error: --json is the input text; write to another file\n")
        XCTAssertEqual(try error(["--json", dir.path]), "\(dir.path): error: --json names a directory; give a file name\n")
        try Data("Hi".utf8).write(to: text)
        XCTAssertEqual(try error([]), "\(text.path): error: the text has 1 token; scoring needs at least 2\n")
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        XCTAssertEqual(try error([], spec: tiny),
                       "error: tfc eval needs a tokenizer: \(tiny) names none; add `tokenizer = \"NAME.tokenizer.json\"` to its model, or pass --tokenizer FILE\n")
    }
}
