import Foundation
import XCTest

/// specs/tiny-neox.tfs (the NeoX vocabulary, a tokenizer field) compiled once into an executable and
/// a shared library, each with NAME.tokenizer beside it.
struct CompiledNeox {
    let dir: URL
    let weights: String
    let executable: URL
    let library: URL
    static let spec = "specs/tiny-neox.tfs"
    static let tokenizerJSON = TFC.root.appendingPathComponent("tokenizers/gpt-neox-20b.tokenizer.json").path

    private static let built: Result<CompiledNeox, Error> = Result { try CompiledNeox() }
    static func get() throws -> CompiledNeox { try built.get() }

    private init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-neox-test-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("lib"), withIntermediateDirectories: true)
        CompiledTiny.directories.append(dir)
        atexit { CompiledTiny.removeAll() }
        weights = dir.appendingPathComponent("neox.safetensors").path
        executable = dir.appendingPathComponent("neox")
        library = dir.appendingPathComponent("lib/libneox.so")
        try CompiledTiny.check(try TFC.run(["init", Self.spec, "-o", weights, "--seed", "3"]), "tfc init")
        try CompiledTiny.check(try TFC.run(["compile", Self.spec, "--weights", weights, "-o", executable.path]), "tfc compile")
        try CompiledTiny.check(try TFC.run(["compile", Self.spec, "--weights", weights, "--emit", "shared", "-o", library.path]),
                               "tfc compile --emit shared")
    }

    func run(_ arguments: [String]) throws -> TFCResult { try TFC.runProcess(executable, arguments) }
}

/// `tfc compile` ships the tokenizer: `./NAME --prompt` prints what `tfc generate --prompt` prints,
/// and the library's tokenize/detokenize functions give HF `tokenizers`' ids (from C and from ctypes).
final class CompileTokenizerTests: XCTestCase {
    /// Texts nobody here wrote, plus the edge cases of the Swift tokenizer's own tests.
    static func licenceFiles() throws -> [String] {
        let dir = "/usr/share/common-licenses"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let files = names.sorted().map { dir + "/" + $0 }.filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        if files.isEmpty { throw XCTSkip("no /usr/share/common-licenses") }
        return files
    }

    static let edgeCases = [
        "", " ", "Hello world", "  many   spaces\t\ttabs\r\nCRLF\n\n\n   \n", "I'm you're he'll we'd it's DON'T 'S 'T 'Ll",
        "12345 3.14159 1,000,000 ٣٤٥ ⅫⅣ", "日本語のテキスト 中文", "مرحبا بالعالم", "👨‍👩‍👧‍👦 👍🏽 🏳️‍🌈",
        "e\u{301} A\u{30A} \u{1100}\u{1161}\u{11A8} A\u{323}\u{307} \u{1E9B}\u{323} \u{1D15E}\u{F75}", "Ω K Å ﬁ",
        "text<|endoftext|>more<|padding|>", String(repeating: "x", count: 100_000), "\u{A0}\u{2003} \u{3000}x", "   \n\t",
    ]

    func testPromptPrintsWhatTfcGeneratePrints() throws {
        let neox = try CompiledNeox.get()
        for extra in [["-n", "24"], ["-n", "40", "--temperature", "0.9", "--top-k", "50", "--seed", "11"]] {
            let compiled = try neox.run(["--prompt", "Once upon a time, café ☕"] + extra)
            XCTAssertSucceeded(compiled, "./neox --prompt")
            let reference = try TFC.run(["generate", CompiledNeox.spec, "--weights", neox.weights, "--prompt", "Once upon a time, café ☕"] + extra)
            XCTAssertSucceeded(reference, "tfc generate --prompt")
            XCTAssertTrue(compiled.stdout.hasPrefix("Once upon a time, café ☕"), compiled.stdout)
            XCTAssertEqual(compiled.stdout, reference.stdout)
            XCTAssertTrue(compiled.stderr.hasPrefix("generated ") || compiled.stderr.hasPrefix("end token 0"), compiled.stderr)
        }
        // --prompt-file reads the same prompt; --tokens still prints ids, as tfc generate does.
        let file = neox.dir.appendingPathComponent("prompt.txt")
        try "Once upon a time, café ☕".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try neox.run(["--prompt-file", file.path, "-n", "24"]).stdout, try neox.run(["--prompt", "Once upon a time, café ☕", "-n", "24"]).stdout)
        let ids = try neox.run(["--tokens", "12092,1533", "-n", "6"])
        XCTAssertSucceeded(ids, "./neox --tokens")
        XCTAssertEqual(ids.stdout, try TFC.run(["generate", CompiledNeox.spec, "--weights", neox.weights, "--tokens", "12092,1533", "-n", "6"]).stdout)
        XCTAssertTrue(ids.stdout.split(separator: ",").count == 6, ids.stdout)
        // --prompt with --logits: the logits of the prompt's ids ("Hello world" is 12092,1533 in HF's NeoX).
        let byText = neox.dir.appendingPathComponent("text.npy").path, byIds = neox.dir.appendingPathComponent("ids.npy").path
        XCTAssertSucceeded(try neox.run(["--prompt", "Hello world", "--logits", byText]), "--prompt --logits")
        XCTAssertSucceeded(try neox.run(["--tokens", "12092,1533", "--logits", byIds]), "--tokens --logits")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: byText)), try Data(contentsOf: URL(fileURLWithPath: byIds)))
    }

    func testPromptErrors() throws {
        let neox = try CompiledNeox.get()
        let dir = try TFC.temporaryDirectory(self)
        func refused(_ arguments: [String], _ message: String, line: UInt = #line) throws {
            let r = try neox.run(arguments)
            XCTAssertEqual(r.status, 1, "\(arguments): \(r.stdout)", line: line)
            XCTAssertEqual(r.stderr, message + "\n", line: line)
            XCTAssertEqual(r.stdout, "", line: line)
        }
        let side = neox.dir.appendingPathComponent("neox.tokenizer").path
        let good = try Data(contentsOf: URL(fileURLWithPath: side))
        let garbage = dir.appendingPathComponent("garbage.tokenizer"), truncated = dir.appendingPathComponent("truncated.tokenizer")
        let damaged = dir.appendingPathComponent("damaged.tokenizer"), badUTF8 = dir.appendingPathComponent("bad.txt")
        try Data("not a tokenizer at all".utf8).write(to: garbage)
        try good.prefix(good.count / 2).write(to: truncated)
        var flipped = good
        flipped[good.count - 100] ^= 0x40
        try flipped.write(to: damaged)
        try Data([0x48, 0x69, 0xFF, 0x21]).write(to: badUTF8)

        try refused(["--prompt", "x", "--tokens", "1"], "neox: error: give only one of --tokens, --prompt, --prompt-file")
        try refused(["-n", "3"], "neox: error: --tokens is required, or --prompt TEXT or --prompt-file FILE (see neox --help)")
        try refused(["--prompt"], "neox: error: --prompt needs a value")
        try refused(["--prompt", ""], "neox: error: --prompt: the prompt is empty (no tokens)")
        try refused(["--prompt", String(repeating: "hello ", count: 200)], "neox: error: --prompt: the prompt is 201 tokens, more than the model's context of 128")
        try refused(["--prompt-file", badUTF8.path], "neox: error: --prompt-file: the text is not valid UTF-8 (byte 3 of 4)")
        try refused(["--prompt-file", dir.appendingPathComponent("none.txt").path], "neox: error: --prompt-file: \(dir.path)/none.txt: cannot read file: no such file")
        try refused(["--prompt", "x", "--tokenizer", dir.appendingPathComponent("none").path],
                    "neox: \(dir.path)/none: error: no such tokenizer file (tfc compile writes NAME.tokenizer beside the model when the spec names a tokenizer or --tokenizer is given)")
        try refused(["--prompt", "x", "--tokenizer", garbage.path],
                    "neox: \(garbage.path): error: not a tfc tokenizer file (expected the NAME.tokenizer that tfc compile wrote; a tokenizer.json must go through tfc compile --tokenizer)")
        try refused(["--prompt", "x", "--tokenizer", CompiledNeox.tokenizerJSON],
                    "neox: \(CompiledNeox.tokenizerJSON): error: not a tfc tokenizer file (expected the NAME.tokenizer that tfc compile wrote; a tokenizer.json must go through tfc compile --tokenizer)")
        try refused(["--prompt", "x", "--tokenizer", truncated.path],
                    "neox: \(truncated.path): error: the tokenizer file is truncated (\(good.count / 2) bytes, its header says \(good.count))")
        try refused(["--prompt", "x", "--tokenizer", damaged.path], "neox: \(damaged.path): error: the tokenizer file is damaged (checksum mismatch)")
        try refused(["--prompt", "x", "--tokenizer", dir.path], "neox: \(dir.path): error: cannot read the tokenizer file (not a regular file)")

        // A model compiled without a tokenizer (specs/tiny.tfs names none) says so.
        let tiny = try CompiledTiny.get()
        let r = try tiny.run(["--prompt", "hi"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "tiny: \(tiny.dir.path)/tiny.tokenizer: error: no such tokenizer file (tfc compile writes NAME.tokenizer beside the model when the spec names a tokenizer or --tokenizer is given)\n")
    }

    func testCompileRefusesATokenizerThatDoesNotFit() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let r = try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", dir.appendingPathComponent("t").path,
                              "--tokenizer", CompiledNeox.tokenizerJSON])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(CompiledNeox.tokenizerJSON): error: the tokenizer has ids up to 50276, outside the model's vocabulary 0..<256 (\(CompiledTiny.spec))\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "a refused compile writes nothing")
        let missing = try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", dir.appendingPathComponent("t").path,
                                    "--tokenizer", dir.appendingPathComponent("none.json").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "\(dir.path)/none.json: error: no such tokenizer file\n")
    }

    func testTheSideFileNeverReplacesItsInputOrASpecialFile() throws {
        let neox = try CompiledNeox.get()
        let dir = try TFC.temporaryDirectory(self)
        let input = dir.appendingPathComponent("t.tokenizer").path
        try FileManager.default.copyItem(atPath: CompiledNeox.tokenizerJSON, toPath: input)
        let r = try TFC.run(["compile", CompiledNeox.spec, "--weights", neox.weights, "-o", dir.appendingPathComponent("t").path, "--tokenizer", input])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(input): error: the tokenizer file (beside -o) is the input tokenizer; write to another file\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), try Data(contentsOf: URL(fileURLWithPath: CompiledNeox.tokenizerJSON)))
        try FileManager.default.createDirectory(atPath: dir.appendingPathComponent("u.tokenizer").path, withIntermediateDirectories: false)
        let d = try TFC.run(["compile", CompiledNeox.spec, "--weights", neox.weights, "-o", dir.appendingPathComponent("u").path])
        XCTAssertEqual(d.status, 1)
        XCTAssertEqual(d.stderr, "\(dir.path)/u.tokenizer: error: the tokenizer file (beside -o) names a directory; give a file name\n")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["t.tokenizer", "u.tokenizer"])
    }

    /// Other files of the family (as Tests/TFTokenizerTests/FileVariantTests makes them): no normalizer,
    /// ignore_merges, no added tokens, merges as pairs. Each side file gives HF's ids for its own file.
    func testVariantsTokenizeAsHFTokenizers() throws {
        let neox = try CompiledNeox.get()
        let dir = try TFC.temporaryDirectory(self)
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CompiledNeox.tokenizerJSON))) as! [String: Any]
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("no-normalizer", { $0["normalizer"] = NSNull() }),
            ("ignore-merges", { var m = $0["model"] as! [String: Any]; m["ignore_merges"] = true; $0["model"] = m }),
            ("no-added-tokens", { $0["added_tokens"] = [Any]() }),
            ("merges-as-pairs", { var m = $0["model"] as! [String: Any]; m["merges"] = (m["merges"] as! [String]).map { $0.split(separator: " ").map(String.init) }; $0["model"] = m }),
        ]
        let request = dir.appendingPathComponent("request.json")
        let files = Array(try Self.licenceFiles().prefix(4))
        try JSONSerialization.data(withJSONObject: ["texts": Self.edgeCases, "files": files, "random": 300, "seed": 9] as [String: Any]).write(to: request)
        let script = TFC.root.appendingPathComponent("Tests/reference/compiled_tokenizer_ctypes.py").path
        for (name, edit) in edits {
            var root = base
            edit(&root)
            let json = dir.appendingPathComponent("\(name).json").path
            try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: json))
            let output = dir.appendingPathComponent(name).path
            XCTAssertSucceeded(try TFC.run(["compile", CompiledNeox.spec, "--weights", neox.weights, "-o", output, "--tokenizer", json]), "tfc compile --tokenizer \(name)")
            let r = try TFC.python([script, neox.library.path, json, request.path, output + ".tokenizer"])
            XCTAssertSucceeded(r, "python ctypes client, \(name)")
            let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(summary["mismatch_count"] as? Int, 0, "\(name): \(summary["mismatches"] ?? "")")
            XCTAssertEqual(summary["texts"] as? Int, Self.edgeCases.count + files.count + 300, name)
        }
    }

    static let cProgram = """
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include "neox.h"

    // usage: client encode FILE...  (one line of comma-separated ids per file)
    //        client decode ID...    (the text)
    int main(int argc, char **argv) {
        tfc_tokenizer *t = tfc_model_tokenizer_open(NULL);
        if (!t) { fprintf(stderr, "open: %s\\n", tfc_tokenizer_error(NULL)); return 1; }
        if (tfc_tokenizer_vocab(t) != 50277 || tfc_tokenizer_end_of_text(t) != 0) return 3;
        if (!strcmp(argv[1], "decode")) {
            int n = argc - 2;
            int32_t *ids = malloc(sizeof(int32_t) * (n + 1));
            for (int i = 0; i < n; i++) ids[i] = atoi(argv[i + 2]);
            int64_t len = tfc_tokenizer_decode(t, ids, n, NULL, 0);
            if (len < 0) { fprintf(stderr, "decode: %s\\n", tfc_tokenizer_error(t)); return 1; }
            char *text = malloc(len + 1);
            if (tfc_tokenizer_decode(t, ids, n, text, len + 1) != len || text[len]) return 4;
            fwrite(text, 1, len, stdout);
            return 0;
        }
        for (int f = 2; f < argc; f++) {
            FILE *in = fopen(argv[f], "rb");
            fseek(in, 0, SEEK_END);
            long size = ftell(in);
            fseek(in, 0, SEEK_SET);
            char *text = malloc(size + 1);
            if (fread(text, 1, size, in) != (size_t)size) return 5;
            fclose(in);
            int32_t few[4];
            int64_t n = tfc_tokenizer_encode(t, text, size, few, 4);  // too small: the count, then again
            if (n < 0) { fprintf(stderr, "encode: %s\\n", tfc_tokenizer_error(t)); return 1; }
            int32_t *ids = malloc(sizeof(int32_t) * (n + 1));
            if (tfc_tokenizer_encode(t, text, size, ids, n) != n) return 6;
            for (int64_t i = 0; i < n && i < 4; i++) if (ids[i] != few[i]) return 7;
            for (int64_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
            printf("\\n");
        }
        const char bad[] = {'a', (char)0xC3, 0};
        if (tfc_tokenizer_encode(t, bad, 2, NULL, 0) != -1) return 8;
        fprintf(stderr, "bad: %s\\n", tfc_tokenizer_error(t));
        int32_t unknown = 60000;
        if (tfc_tokenizer_decode(t, &unknown, 1, NULL, 0) != -1) return 9;
        fprintf(stderr, "unknown: %s\\n", tfc_tokenizer_error(t));
        tfc_tokenizer_close(t);
        if (tfc_tokenizer_open("/nonexistent/neox.tokenizer")) return 10;
        fprintf(stderr, "missing: %s\\n", tfc_tokenizer_error(NULL));
        return 0;
    }
    """

    /// The C API, from a C program built against NAME.h, gives the Swift tokenizer's ids (`tfc tokenize`).
    func testCProgramTokenizesAsTheSwiftTokenizer() throws {
        let neox = try CompiledNeox.get()
        let dir = try TFC.temporaryDirectory(self)
        let lib = neox.library.deletingLastPathComponent().path
        let source = dir.appendingPathComponent("client.c")
        try Self.cProgram.write(to: source, atomically: true, encoding: .utf8)
        let client = dir.appendingPathComponent("client").path
        guard let cc = try runTool("/usr/bin/cc", ["-O2", "-I", lib, source.path, "-L", lib, "-lneox", "-Wl,-rpath,\(lib)", "-o", client]) else {
            throw XCTSkip("no /usr/bin/cc")
        }
        XCTAssertEqual(cc.status, 0, cc.stderr)
        var files = try Self.licenceFiles()
        for (i, text) in Self.edgeCases.enumerated() {
            let path = dir.appendingPathComponent("edge-\(i).txt").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            files.append(path)
        }
        let r = try TFC.runProcess(URL(fileURLWithPath: client), ["encode"] + files)
        XCTAssertSucceeded(r, "C client")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines.count, files.count + 1, r.stdout.prefix(200).description)
        var tokens = 0
        for (file, line) in zip(files, lines) {
            let swift = try TFC.run(["tokenize", CompiledNeox.tokenizerJSON, file])
            XCTAssertSucceeded(swift, "tfc tokenize \(file)")
            XCTAssertEqual(line, swift.stdout.trimmingCharacters(in: .newlines), file)
            tokens += line.split(separator: ",").count
        }
        XCTAssertGreaterThan(tokens, 50_000)
        XCTAssertEqual(r.stderr, """
            bad: the text is not valid UTF-8 (byte 2 of 2)
            unknown: token id 60000 (item 1) is not in the tokenizer (ids 0..<50277)
            missing: /nonexistent/neox.tokenizer: error: no such tokenizer file (tfc compile writes NAME.tokenizer beside the model when the spec names a tokenizer or --tokenizer is given)

            """)
        // Decoding: ids that split a character (the bytes of "é" and "☕" apart, then whole) as tfc decodes them.
        for ids in [["127"], ["127", "104"], ["31600"], ["31600", "232"], ["3384", "235", "232", "127"], ["0", "50276", "187"]] {
            let c = try TFC.runProcess(URL(fileURLWithPath: client), ["decode"] + ids)
            XCTAssertSucceeded(c, "C client decode")
            let swift = try TFC.run(["tokenize", CompiledNeox.tokenizerJSON, "--decode", "--tokens", ids.joined(separator: ",")])
            XCTAssertEqual(c.stdout, swift.stdout.hasSuffix("\n") ? String(swift.stdout.dropLast()) : swift.stdout, ids.description)
        }
    }

    /// The C API from Python (ctypes) gives HF `tokenizers`' ids on licence texts, Python sources, edge
    /// cases and random Unicode, and HF's decoding of random id lists.
    func testCtypesTokenizesAsHFTokenizers() throws {
        let neox = try CompiledNeox.get()
        let dir = try TFC.temporaryDirectory(self)
        var files = try Self.licenceFiles()
        let stdlib = try TFC.python(["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for name in ["decimal.py", "difflib.py", "textwrap.py", "unicodedata.py", "locale.py"] where FileManager.default.fileExists(atPath: stdlib + "/" + name) {
            files.append(stdlib + "/" + name)
        }
        let request = dir.appendingPathComponent("request.json")
        try JSONSerialization.data(withJSONObject: ["texts": Self.edgeCases, "files": files, "random": 2000, "seed": 5] as [String: Any]).write(to: request)
        let script = TFC.root.appendingPathComponent("Tests/reference/compiled_tokenizer_ctypes.py").path
        let r = try TFC.python([script, neox.library.path, CompiledNeox.tokenizerJSON, request.path])
        XCTAssertSucceeded(r, "python ctypes client (needs the tokenizers package: scripts/setup.sh)")
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["mismatch_count"] as? Int, 0, "\(summary["mismatches"] ?? "")")
        XCTAssertEqual(summary["texts"] as? Int, Self.edgeCases.count + files.count + 2000)
        XCTAssertGreaterThan(summary["tokens"] as? Int ?? 0, 100_000)
        XCTAssertEqual(summary["decoded"] as? Int, 350)
    }
}
