import Foundation
import XCTest

/// `tfc train --data FILE` on text: tokenized with the spec's tokenizer (the default format when
/// there is one), giving exactly the run the same ids as `--format ids` give.
final class TrainTextTests: XCTestCase {
    var neox: String { TFC.root.appendingPathComponent("specs/tiny-neox.tfs").path }
    var tokenizer: String { TFC.root.appendingPathComponent("tokenizers/gpt-neox-20b.tokenizer.json").path }

    func testTextTrainsOnTheTokenizersIds() throws {
        let dir = try TFC.temporaryDirectory(self)
        let text = dir.appendingPathComponent("text.txt").path
        try Data(contentsOf: TFC.root.appendingPathComponent("README.md")).prefix(3_000).write(to: URL(fileURLWithPath: text))
        let tokenized = try TFC.run(["tokenize", tokenizer, text])
        XCTAssertSucceeded(tokenized, "tokenize")
        let ids = dir.appendingPathComponent("ids.txt").path
        try tokenized.stdout.write(toFile: ids, atomically: true, encoding: .utf8)
        let count = tokenized.stdout.split(separator: ",").count
        XCTAssertGreaterThan(count, 300)
        XCTAssertLessThan(count, 3_000 / 2, "BPE merges bytes")

        let common = ["train", neox, "--steps", "2", "--batch", "1", "--seq", "16", "--seed", "3"]
        let fromText = try TFC.run(common + ["--data", text, "--out", dir.appendingPathComponent("text").path])
        XCTAssertSucceeded(fromText, "train on text")
        let held = max(16, count / 10)
        XCTAssertTrue(fromText.stdout.contains("\(count - held) training tokens, \(held) held out; data as text;"), fromText.stdout)
        let fromIds = try TFC.run(common + ["--data", ids, "--format", "ids", "--out", dir.appendingPathComponent("ids").path])
        XCTAssertSucceeded(fromIds, "train on ids")
        XCTAssertTrue(fromIds.stdout.contains("data as ids;"), fromIds.stdout)
        let a = try Data(contentsOf: dir.appendingPathComponent("text/checkpoint.safetensors")),
            b = try Data(contentsOf: dir.appendingPathComponent("ids/checkpoint.safetensors"))
        XCTAssertEqual(a, b, "text and its ids train identically")
    }

    func testTextRefusals() throws {
        let dir = try TFC.temporaryDirectory(self)
        let text = dir.appendingPathComponent("text.txt").path
        try Data(repeating: 65, count: 500).write(to: URL(fileURLWithPath: text))
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        func refused(_ arguments: [String], _ message: String, line: UInt = #line) throws {
            let r = try TFC.run(["train", "--data", text, "--steps", "1", "--seq", "8", "--out", dir.appendingPathComponent("out").path] + arguments)
            XCTAssertEqual(r.status, 1, r.stderr, line: line)
            XCTAssertTrue(r.stderr.contains(message), r.stderr, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, line: line)
        }
        try refused([tiny, "--format", "text"], "error: --format text needs a tokenizer: \(tiny) names none")
        try refused([tiny, "--tokenizer", tokenizer], "\(tokenizer): error: the tokenizer has ids up to 50276, outside the model's vocabulary 0..<256")
        try refused([neox, "--tokenizer", tokenizer, "--format", "bytes"], "error: --tokenizer \(tokenizer) is for --format text, not --format bytes")
    }
}
