import Foundation
import XCTest

/// Every bad input a user can produce gets a clear message on stderr and exit status 1 (usage
/// errors too: README "Exit status"), never a crash.
final class CLIErrorTests: XCTestCase {
    func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testSyntaxErrorShowsLineAndCaret() throws {
        let dir = try TFC.temporaryDirectory(self)
        let path = try write("model \"m\" {\n    vocab = 10\n    hidden 64\n}\n", "bad.tfs", in: dir)
        let r = try TFC.run(["check", path])
        XCTAssertEqual(r.status, 1)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("\(path):3:12: error: expected '='"), r.stderr)
        XCTAssertEqual(lines[1], "    hidden 64")
        XCTAssertEqual(lines[2], "           ^")
    }

    func testSemanticErrorThroughCLI() throws {
        let dir = try TFC.temporaryDirectory(self)
        let tiny = try String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)
        let path = try write(tiny.replacingOccurrences(of: "heads = 4", with: "heads = 5"), "heads.tfs", in: dir)
        let r = try TFC.run(["check", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("\(path):5:13: error: hidden (64) is not divisible by heads (5)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("    heads = 5\n            ^"), r.stderr)
    }

    func testEmptyNonUTF8AndMissingFiles() throws {
        let dir = try TFC.temporaryDirectory(self)
        let empty = try write("", "empty.tfs", in: dir)
        var r = try TFC.run(["check", empty])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("\(empty):1:1: error: empty spec"), r.stderr)

        let binary = dir.appendingPathComponent("latin1.tfs").path
        XCTAssertTrue(FileManager.default.createFile(atPath: binary, contents: Data([0x6d, 0x6f, 0xff, 0xfe, 0x0a])))
        r = try TFC.run(["check", binary])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(binary):1:1: error: file is not valid UTF-8 (at byte 2)\n")

        r = try TFC.run(["check", dir.appendingPathComponent("nope.tfs").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasSuffix("nope.tfs:1:1: error: no such file\n"), r.stderr)
    }

    func testUnknownFlagAndBadThreads() throws {
        var r = try TFC.run(["check", "specs/tiny.tfs", "--jsn"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("Unknown option '--jsn'"), r.stderr)
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", "w", "--tokens", "1", "--threads", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--threads must be at least 1, got 0"), r.stderr)
    }

    func testWeightAndTokenErrors() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("tiny.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")

        // Tokens: out of range, not a number, empty, longer than the context.
        var r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,256"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --tokens: token id 256 (item 2) is outside the vocabulary 0..<256\n")
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "-1"])
        XCTAssertEqual(r.stderr, "error: --tokens: token id -1 (item 1) is outside the vocabulary 0..<256\n")
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,x"])
        XCTAssertEqual(r.stderr, "error: --tokens: 'x' (item 2) is not an integer token id\n")
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", ""])
        XCTAssertEqual(r.stderr, "error: --tokens: the token list is empty; give comma-separated ids such as 1,2,3\n")
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", Array(repeating: "1", count: 129).joined(separator: ",")])
        XCTAssertEqual(r.stderr, "error: --tokens: 129 tokens exceed the model's context of 128\n")

        // Weights of another model: one message naming what is missing, unexpected and mis-shaped.
        let other = dir.appendingPathComponent("other.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/examples/two-mlp.tfs", "-o", other]), "init")
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", other, "--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("\(other): error: weights do not match the spec:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("missing layers.0.mlp.key_param_tokens"), r.stderr)
        XCTAssertTrue(r.stderr.contains("unexpected "), r.stderr)
        XCTAssertTrue(r.stderr.contains("lm_head.weight"), r.stderr)
        XCTAssertTrue(r.stderr.contains("embed.weight has shape [150, 40], spec expects [256, 64]"), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "one line")

        // A truncated file.
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        let truncated = dir.appendingPathComponent("truncated.safetensors").path
        XCTAssertTrue(FileManager.default.createFile(atPath: truncated, contents: data.prefix(data.count / 2)))
        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", truncated, "--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("\(truncated): error: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("exceed"), r.stderr)

        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", dir.appendingPathComponent("none.safetensors").path, "--tokens", "1"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("none.safetensors: error: "), r.stderr)
    }

    func testCheckJSONHasTheDocumentedFields() throws {
        let r = try TFC.run(["check", "specs/tokenformer-150m.tfs", "--json"])
        XCTAssertSucceeded(r, "check")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        for key in ["name", "vocab", "hidden", "heads", "layers", "context", "tie_embeddings", "final_norm_affine", "norm_eps",
                    "pattention_norm", "rotary_fraction", "rotary_base", "parameters", "sites"] {
            XCTAssertNotNil(object[key], key)
        }
        XCTAssertEqual(object["hidden"] as? Int, 768)
        XCTAssertEqual(object["pattention_norm"] as? String, "l2_norm_gelu")
        let sites = object["sites"] as! [String: [String: Any]]
        XCTAssertEqual(Set(sites.keys), ["attention.query", "attention.key", "attention.value", "attention.proj", "mlp"])
        XCTAssertEqual(sites["mlp"]?["tokens"] as? Int, 3072)
        XCTAssertEqual(sites["mlp"]?["in"] as? Int, 768)
        XCTAssertTrue(sites["mlp"]?["scale"] is NSNull)
        // 12 layers × 9,437,184 + 50304 × 768 + the affine final norm's 2 × 768 = 151,881,216 parameters.
        XCTAssertEqual(object["parameters"] as? Int, 151_881_216)
        XCTAssertEqual(object["final_norm_affine"] as? Bool, true)
        XCTAssertEqual(r.stdout.filter { $0 == "\n" }.count, 1, "exactly one JSON object on one line")
    }

    func testRunPrintsTopFiveAndWritesNpy() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("tiny.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights, "--seed", "3"]), "init")
        let npy = dir.appendingPathComponent("l.npy").path
        let r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3", "--backend", "naive", "--logits", npy])
        XCTAssertSucceeded(r, "run")
        XCTAssertTrue(r.stdout.contains("1. token "), r.stdout)
        XCTAssertTrue(r.stdout.contains("5. token "), r.stdout)
        let check = try TFC.python(["-c", "import numpy as np; a = np.load('\(npy)'); print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'])"])
        XCTAssertEqual(check.stdout, "float32 (3, 256) True\n")
    }
}
