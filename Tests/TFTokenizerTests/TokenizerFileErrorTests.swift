import Foundation
import XCTest
import TFTokenizer

/// A tokenizer.json of another kind, or a broken one, is refused with one line naming the file and what it has.
final class TokenizerFileErrorTests: XCTestCase {
    /// A minimal byte-level BPE file with the given parts replaced.
    func file(model: String? = nil, normalizer: String = "null", preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false}"#,
              decoder: String = #"{"type": "ByteLevel"}"#, added: String = "[]") -> Data {
        let vocab = #"{"a": 0, "b": 1, "ab": 2}"#
        let bpe = model ?? #"{"type": "BPE", "vocab": \#(vocab), "merges": ["a b"]}"#
        return Data(#"{"version": "1.0", "added_tokens": \#(added), "normalizer": \#(normalizer), "pre_tokenizer": \#(preTokenizer), "post_processor": null, "decoder": \#(decoder), "model": \#(bpe)}"#.utf8)
    }

    func message(_ data: Data) -> String? {
        do { _ = try Tokenizer(data: data, path: "t.json"); return nil } catch { return "\(error)" }
    }

    func testOtherKindsAreNamed() {
        XCTAssertEqual(message(file(model: #"{"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}"#)),
                       "t.json: error: the model is WordPiece; tfc reads byte-level BPE tokenizers (GPT-2, GPT-NeoX, Pythia)")
        XCTAssertEqual(message(file(model: #"{"type": "Unigram", "vocab": [["a", -1.0]]}"#)),
                       "t.json: error: the model is Unigram; tfc reads byte-level BPE tokenizers (GPT-2, GPT-NeoX, Pythia)")
        XCTAssertEqual(message(file(preTokenizer: #"{"type": "Metaspace", "replacement": "▁"}"#)),
                       "t.json: error: the pre-tokenizer is Metaspace; tfc reads byte-level BPE tokenizers (pre-tokenizer ByteLevel)")
        XCTAssertEqual(message(file(preTokenizer: #"{"type": "Sequence", "pretokenizers": []}"#)),
                       "t.json: error: the pre-tokenizer is Sequence; tfc reads byte-level BPE tokenizers (pre-tokenizer ByteLevel)")
        XCTAssertEqual(message(file(normalizer: #"{"type": "NFKC"}"#)),
                       "t.json: error: the normalizer is NFKC; tfc reads tokenizers with no normalizer or NFC")
        XCTAssertEqual(message(file(decoder: #"{"type": "WordPiece"}"#)),
                       "t.json: error: the decoder is WordPiece; tfc reads byte-level BPE tokenizers (decoder ByteLevel)")
        XCTAssertEqual(message(file(preTokenizer: #"{"type": "ByteLevel", "add_prefix_space": true}"#)),
                       "t.json: error: the ByteLevel pre-tokenizer has add_prefix_space = true, which tfc does not support")
    }

    func testBrokenFiles() throws {
        XCTAssertEqual(message(Data("[1, 2]".utf8)), "t.json: error: not a tokenizer.json (not a JSON object)")
        XCTAssertEqual(message(Data("{\"model\": ".utf8)), "t.json: error: not a tokenizer.json (not a JSON object)")
        XCTAssertEqual(message(Data("{}".utf8)), "t.json: error: not a tokenizer.json (no \"model\" object)")
        XCTAssertEqual(message(file(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}"#)),
                       "t.json: error: merge 1 \"a b\": \"ab\" is not in the vocabulary")
        XCTAssertEqual(message(file(model: #"{"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}"#)),
                       "t.json: error: merge 1 \"a\" is not two tokens separated by one space")
        XCTAssertEqual(message(file(model: #"{"type": "BPE", "vocab": {"Ġ": -3}, "merges": []}"#)),
                       "t.json: error: vocab entry \"Ġ\" has id -3, not a non-negative integer")
        XCTAssertEqual(message(file(added: #"[{"id": 5, "content": "<s>", "lstrip": true}]"#)),
                       "t.json: error: added token 5 \"<s>\" has lstrip = true, which tfc does not support")
        XCTAssertThrowsError(try Tokenizer(contentsOf: "/nonexistent/tokenizer.json")) {
            XCTAssertEqual("\($0)", "/nonexistent/tokenizer.json: error: no such tokenizer file")
        }
    }

    /// The smallest file works: "ab" merges, the merge list in either spelling.
    func testSmallFileEncodes() throws {
        let t = try Tokenizer(data: file(), path: "t.json")
        XCTAssertEqual(t.encode("abab"), [2, 2])
        XCTAssertEqual(t.encode("ba"), [1, 0])
        let arrays = try Tokenizer(data: file(model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}"#), path: "t.json")
        XCTAssertEqual(arrays.encode("aab"), [0, 2])
        XCTAssertThrowsError(try t.decode([7])) { XCTAssertEqual("\($0)", "error: token id 7 (item 1) is not in the tokenizer t.json (ids 0..<3)") }
    }
}
