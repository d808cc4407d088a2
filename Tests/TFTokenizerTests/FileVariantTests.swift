import Foundation
import XCTest
import TFTokenizer
import TFTestSupport

/// Other files of the family, made from the NeoX one: no normalizer (as GPT-2's), merges spelled
/// as pairs (newer files), `ignore_merges` (whole words in the vocabulary are one token), and
/// no added tokens. Each gives HF's ids.
final class FileVariantTests: XCTestCase {
    func variant(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: HFReference.neox))) as! [String: Any]
        edit(&root)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-variant-\(UUID().uuidString).json").path
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func assertSameIds(_ path: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var generator = SplitMix64(seed: 21)
        let pieces = ["the", " quick", " brown", "ing", "e\u{301}", "\u{1100}\u{1161}", "  ", "\t", "<|endoftext|>", "'s", "日本", "123", " ", "\r\n", "ñ", "👍🏽"]
        var texts = ExactnessTests.edgeCases
        for _ in 0..<200 { texts.append((0..<Int(generator.next() % 30)).map { _ in pieces[Int(generator.next() % UInt64(pieces.count))] }.joined()) }
        let expected = try HFReference.run(tokenizer: path, encode: texts).encode
        let tokenizer = try Tokenizer(contentsOf: path)
        for (text, theirs) in zip(texts, expected) {
            XCTAssertEqual(tokenizer.encode(text), theirs, "\(label): \(text.debugDescription)", file: file, line: line)
        }
    }

    func testNoNormalizer() throws {
        try assertSameIds(try variant { $0["normalizer"] = NSNull() }, "no normalizer")
    }

    func testMergesAsPairs() throws {
        try assertSameIds(try variant {
            var model = $0["model"] as! [String: Any]
            model["merges"] = (model["merges"] as! [String]).map { $0.split(separator: " ").map(String.init) }
            $0["model"] = model
        }, "merges as pairs")
    }

    func testIgnoreMerges() throws {
        try assertSameIds(try variant {
            var model = $0["model"] as! [String: Any]
            model["ignore_merges"] = true
            $0["model"] = model
        }, "ignore_merges")
    }

    func testNoAddedTokens() throws {
        try assertSameIds(try variant { $0["added_tokens"] = [Any]() }, "no added tokens")
    }
}
