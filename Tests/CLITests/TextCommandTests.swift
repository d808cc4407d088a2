import Foundation
import XCTest

/// Text on the command line: `tfc tokenize`, and `--prompt` / `--prompt-file` / `--tokenizer` on
/// run and generate. Expected ids and text come from HF `tokenizers` (Tests/reference/hf_tokenizer.py).
final class TextCommandTests: XCTestCase {
    static let neox = TFC.root.appendingPathComponent("tokenizers/gpt-neox-20b.tokenizer.json").path
    static let tinyNeox = TFC.root.appendingPathComponent("specs/tiny-neox.tfs").path

    /// HF's ids for texts and HF's text for id lists.
    func hf(encode: [String] = [], decode: [[Int]] = []) throws -> (ids: [[Int]], texts: [String]) {
        let dir = try TFC.temporaryDirectory(self)
        let request = dir.appendingPathComponent("request.json"), response = dir.appendingPathComponent("response.json")
        try JSONSerialization.data(withJSONObject: ["encode": encode, "decode": decode]).write(to: request)
        let result = try TFC.python([TFC.root.appendingPathComponent("Tests/reference/hf_tokenizer.py").path, Self.neox, request.path, response.path])
        XCTAssertSucceeded(result, "HF reference (python3 -m pip install tokenizers)")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: response)) as! [String: Any]
        return ((object["encode"] as! [[Int]]), (object["decode"] as! [String]))
    }

    func testTokenizeFileStdinCountAndDecode() throws {
        let dir = try TFC.temporaryDirectory(self)
        let text = "Hello, world!  It's 2024\r\n\tdon'T <|endoftext|> 日本語 👩🏽‍💻 e\u{301}\n"
        let file = dir.appendingPathComponent("in.txt")
        try Data(text.utf8).write(to: file)
        let expected = try hf(encode: [text]).ids[0]
        let fromFile = try TFC.run(["tokenize", Self.neox, file.path])
        XCTAssertSucceeded(fromFile, "tfc tokenize FILE")
        XCTAssertEqual(fromFile.stdout, expected.map(String.init).joined(separator: ",") + "\n")
        let fromStdin = try TFC.runProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "\"$0\" tokenize \"$1\" < \"$2\"", TFC.executable.path, Self.neox, file.path])
        XCTAssertEqual(fromStdin.stdout, fromFile.stdout, fromStdin.stderr)
        XCTAssertEqual(try TFC.run(["tokenize", Self.neox, file.path, "--count"]).stdout, "\(expected.count)\n")
        let ids = [12092, 13, 50276, 0, 14931, 228, 224, 15]
        let decoded = try TFC.run(["tokenize", Self.neox, "--decode", "--tokens", ids.map(String.init).joined(separator: ",")])
        XCTAssertSucceeded(decoded, "tfc tokenize --decode")
        XCTAssertEqual(decoded.stdout, try hf(decode: [ids]).texts[0] + "\n")
        // The empty text has no tokens.
        let empty = dir.appendingPathComponent("empty.txt")
        try Data().write(to: empty)
        XCTAssertEqual(try TFC.run(["tokenize", Self.neox, empty.path]).stdout, "\n")
    }

    func testTokenizeErrors() throws {
        let dir = try TFC.temporaryDirectory(self)
        let bad = dir.appendingPathComponent("bad.txt")
        try Data([0x61, 0x62, 0xFF, 0x63]).write(to: bad)
        func error(_ arguments: [String]) throws -> String {
            let r = try TFC.run(arguments)
            XCTAssertEqual(r.status, 1, "\(arguments)")
            return r.stderr
        }
        XCTAssertEqual(try error(["tokenize", Self.neox, bad.path]), "\(bad.path): error: not UTF-8 text (the first invalid byte is at offset 2)\n")
        XCTAssertEqual(try error(["tokenize", Self.neox, dir.appendingPathComponent("none.txt").path]), "\(dir.appendingPathComponent("none.txt").path): error: no such file\n")
        XCTAssertEqual(try error(["tokenize", "/nonexistent.json", bad.path]), "/nonexistent.json: error: no such tokenizer file\n")
        XCTAssertEqual(try error(["tokenize", Self.neox, "--decode", "--tokens", "5,99999"]),
                       "error: --tokens: '99999' (item 2) is not a token id of the tokenizer (0..<50277)\n")
        XCTAssertEqual(try error(["tokenize", TFC.root.appendingPathComponent("specs/tiny.tfs").path, bad.path]),
                       "\(TFC.root.appendingPathComponent("specs/tiny.tfs").path): error: not a tokenizer.json (not a JSON object)\n")
    }

    /// Text mode prints the prompt and then the text of the tokens `--tokens` mode prints as ids.
    func testGenerateTextMatchesIds() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", Self.tinyNeox, "-o", weights, "--seed", "3"]), "tfc init")
        let prompt = "Once upon a time, in 日本"
        let promptIds = try hf(encode: [prompt]).ids[0]
        let sampling = ["-n", "24", "--temperature", "0.9", "--seed", "5", "--backend", "naive"]
        let asIds = try TFC.run(["generate", Self.tinyNeox, "--weights", weights, "--tokens", promptIds.map(String.init).joined(separator: ",")] + sampling)
        XCTAssertSucceeded(asIds, "generate --tokens")
        var generated = asIds.stdout.trimmingCharacters(in: .newlines).split(separator: ",").map { Int($0)! }
        XCTAssertEqual(generated.count, 24)
        if generated.last == 0 { generated.removeLast() }   // the end token is not shown as text
        let expected = try hf(decode: [promptIds + generated]).texts[0]

        let asText = try TFC.run(["generate", Self.tinyNeox, "--weights", weights, "--prompt", prompt] + sampling)
        XCTAssertSucceeded(asText, "generate --prompt")
        XCTAssertEqual(asText.stdout, expected + "\n")
        let file = dir.appendingPathComponent("prompt.txt")
        try Data(prompt.utf8).write(to: file)
        let fromFile = try TFC.run(["generate", Self.tinyNeox, "--weights", weights, "--prompt-file", file.path] + sampling)
        XCTAssertEqual(fromFile.stdout, expected + "\n", fromFile.stderr)
        // --tokenizer gives a spec without the field its tokenizer.
        let bare = dir.appendingPathComponent("bare.tfs")
        try String(contentsOfFile: Self.tinyNeox, encoding: .utf8).replacingOccurrences(of: "    tokenizer = \"../tokenizers/gpt-neox-20b.tokenizer.json\"\n", with: "")
            .write(to: bare, atomically: true, encoding: .utf8)
        let viaOption = try TFC.run(["generate", bare.path, "--weights", weights, "--prompt", prompt, "--tokenizer", Self.neox] + sampling)
        XCTAssertEqual(viaOption.stdout, expected + "\n", viaOption.stderr)
        XCTAssertEqual(try TFC.run(["generate", bare.path, "--weights", weights, "--prompt", prompt]).stderr,
                       "error: --prompt needs a tokenizer: \(bare.path) names none; add `tokenizer = \"NAME.tokenizer.json\"` to its model, or pass --tokenizer FILE\n")
        // --show-ids puts each id after its text.
        let shown = try TFC.run(["generate", Self.tinyNeox, "--weights", weights, "--prompt", prompt, "--show-ids"] + sampling)
        XCTAssertTrue(shown.stdout.hasPrefix("Once[\(promptIds[0])] upon[\(promptIds[1])]"), shown.stdout)
        // run --prompt: the same logits as run --tokens.
        let runText = try TFC.run(["run", Self.tinyNeox, "--weights", weights, "--prompt", prompt, "--backend", "naive"])
        let runIds = try TFC.run(["run", Self.tinyNeox, "--weights", weights, "--tokens", promptIds.map(String.init).joined(separator: ","), "--backend", "naive"])
        XCTAssertSucceeded(runText, "run --prompt")
        XCTAssertEqual(runText.stdout.split(separator: "\n").prefix(6), runIds.stdout.split(separator: "\n").prefix(6))
    }

    func testPromptErrors() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", Self.tinyNeox, "-o", weights]), "tfc init")
        func error(_ arguments: [String]) throws -> String {
            let r = try TFC.run(["generate", Self.tinyNeox, "--weights", weights] + arguments)
            XCTAssertEqual(r.status, 1, "\(arguments)")
            return r.stderr
        }
        XCTAssertEqual(try error([]), "error: give the prompt with --tokens IDS, --prompt TEXT or --prompt-file FILE\n")
        XCTAssertEqual(try error(["--prompt", "a", "--tokens", "1"]), "error: give only one of --tokens, --prompt\n")
        XCTAssertEqual(try error(["--prompt", ""]), "error: --prompt: the prompt is empty (no tokens)\n")
        let long = String(repeating: "word ", count: 200)
        XCTAssertEqual(try error(["--prompt", long]),
                       "error: --prompt: the prompt is \(try hf(encode: [long]).ids[0].count) tokens, more than the model's context of 128\n")
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let r = try TFC.run(["generate", tiny, "--weights", weights, "--prompt", "a", "--tokenizer", Self.neox])
        XCTAssertEqual(r.stderr, "\(Self.neox): error: the tokenizer has ids up to 50276, outside the model's vocabulary 0..<256 (\(tiny))\n")
    }

    /// `tfc bench tokenizer` measures both sides and compares their ids (speed itself is not asserted).
    func testBenchTokenizerReportsBothSides() throws {
        let r = try TFC.run(["bench", "tokenizer", "/usr/share/common-licenses/GPL-3", "--tokenizer", Self.neox, "--repeat", "1"])
        XCTAssertSucceeded(r, "tfc bench tokenizer")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, r.stdout)
        XCTAssertTrue(lines[0].hasPrefix("tokenizer bench: /usr/share/common-licenses/GPL-3 ("), r.stdout)
        XCTAssertTrue(lines[1].hasPrefix("  tfc ") && lines[1].contains(" MB/s"), r.stdout)
        XCTAssertTrue(lines[2].hasPrefix("  HF tokenizers ") && lines[2].contains(" MB/s"), r.stdout)
        XCTAssertTrue(lines[3].hasSuffix("the ids are identical"), r.stdout)
        let count = try TFC.run(["tokenize", Self.neox, "/usr/share/common-licenses/GPL-3", "--count"]).stdout.trimmingCharacters(in: .newlines)
        XCTAssertTrue(lines[0].contains(" \(count) tokens)"), "\(lines[0]) vs \(count)")
    }

    func testCheckJsonNamesTheTokenizer() throws {
        let r = try TFC.run(["check", Self.tinyNeox, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["tokenizer"] as? String, "../tokenizers/gpt-neox-20b.tokenizer.json")
        let tiny = try TFC.run(["check", TFC.root.appendingPathComponent("specs/tiny.tfs").path, "--json"])
        XCTAssertTrue((try JSONSerialization.jsonObject(with: Data(tiny.stdout.utf8)) as! [String: Any])["tokenizer"] is NSNull)
    }
}
