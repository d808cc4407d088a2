import Foundation
import XCTest
import TFWeights

/// `tfc import` on checkpoints real PyTorch wrote (Tests/fixtures/checkpoints).
final class ImportCommandTests: XCTestCase {
    typealias F = CheckpointFixtures
    static let tokens = [0, 5, 9, 99, 3, 3, 77, 1, 42, 14, 15, 92, 65, 35, 89]

    func importModel(_ arguments: [String], as name: String, in dir: URL, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = dir.appendingPathComponent(name).path
        XCTAssertSucceeded(try TFC.run(["import"] + arguments + ["-o", out]), "tfc import \(arguments)", file: file, line: line)
        return out
    }

    func logits(_ model: String, backend: String, in dir: URL) throws -> Npy.Array {
        let out = dir.appendingPathComponent("\((model as NSString).lastPathComponent)-\(backend).npy").path
        XCTAssertSucceeded(try TFC.run(["run", model + ".tfs", "--weights", model + ".safetensors", "--tokens",
                                        Self.tokens.map(String.init).joined(separator: ","), "--backend", backend, "--logits", out]), "tfc run")
        return try Npy.read(path: out)
    }

    func maxDifference(_ a: Npy.Array, _ b: Npy.Array) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.data, b.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    func testHuggingFaceFolderMatchesTheReference() throws {
        let dir = try TFC.temporaryDirectory(self)
        let model = try importModel([F.path("hf")], as: "tiny-hf", in: dir)
        let spec = try String(contentsOfFile: model + ".tfs", encoding: .utf8)
        for line in ["vocab = 100", "hidden = 32", "heads = 4", "layers = 2", "context = 64", "final_norm = affine",
                     "end_token = 0", "tokenizer = \"tiny-hf.tokenizer.json\"", "let qkv = 24", "let proj = 20", "let ffn = 48", "tie_embeddings = true"] {
            XCTAssertTrue(spec.contains(line), "spec lacks '\(line)':\n\(spec)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model + ".tokenizer.json")),
                       try Data(contentsOf: URL(fileURLWithPath: F.path("hf/tokenizer.json"))))
        try F.assertWeights(model + ".safetensors", equal: try F.arrays("arrays"), "hf")
        let reference = try F.referenceLogits("arrays", untied: false, parallel: false, tokens: Self.tokens, in: dir)
        XCTAssertGreaterThan(reference.data.map(abs).max()!, 0.5, "degenerate reference logits")
        for backend in ["naive", "fused"] {
            XCTAssertLessThanOrEqual(maxDifference(try logits(model, backend: backend, in: dir), reference), 1e-4, backend)
        }
    }

    func testParallelUntiedModelMatchesTheReference() throws {
        let dir = try TFC.temporaryDirectory(self)
        let model = try importModel([F.path("hf-parallel-untied")], as: "parallel", in: dir)
        let spec = try String(contentsOfFile: model + ".tfs", encoding: .utf8)
        XCTAssertTrue(spec.contains("tie_embeddings = false"), spec)
        XCTAssertFalse(spec.contains("end_token"), "no tokenizer, no end token")
        try F.assertWeights(model + ".safetensors", equal: try F.arrays("arrays-parallel", untied: true), "parallel")
        let reference = try F.referenceLogits("arrays-parallel", untied: true, parallel: true, tokens: Self.tokens, in: dir)
        XCTAssertLessThanOrEqual(maxDifference(try logits(model, backend: "naive", in: dir), reference), 1e-4)
    }

    /// fp16, bf16, both DeepSpeed layouts, a trainer file with its YAML, the legacy format, strided
    /// views and a Zip64 archive: all give the same float32 weights.
    func testEveryLayoutAndDtypeGivesTheSameWeights() throws {
        let dir = try TFC.temporaryDirectory(self)
        let expected = try F.arrays("arrays")
        let config = F.path("hf/config.json")
        let cases: [(String, [String])] = [
            ("fp16", [F.path("hf-fp16")]), ("bf16", [F.path("hf-bf16")]),
            ("deepspeed", [F.path("deepspeed")]), ("layers", [F.path("deepspeed-layers")]),
            ("stepdir", [F.path("deepspeed/global_step3")]),
            ("single", [F.path("single/model.pt"), "--config", F.path("single/tiny.yml")]),
            ("legacy", [F.path("legacy.bin"), "--config", config]),
            ("strided", [F.path("noncontiguous.bin"), "--config", config]),
            ("zip64", [F.path("zip64.bin"), "--config", config]),
        ]
        for (name, arguments) in cases {
            let model = try importModel(arguments, as: name, in: dir)
            try F.assertWeights(model + ".safetensors", equal: expected, name)
        }
    }

    func testDeepSpeedStepSelection() throws {
        let dir = try TFC.temporaryDirectory(self)
        let model = try importModel([F.path("deepspeed"), "--step", "1"], as: "step1", in: dir)
        try F.assertWeights(model + ".safetensors", equal: try F.arrays("arrays-step1"), "step 1")
        XCTAssertTrue(try String(contentsOfFile: model + ".tfs", encoding: .utf8).contains("DeepSpeed checkpoint, step 1"))
        let r = try TFC.run(["import", F.path("deepspeed"), "--step", "2", "-o", dir.appendingPathComponent("x").path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(F.path("deepspeed")): error: no global_step2 (steps here: 1, 3)\n")
    }

    /// Runs an import expected to fail; returns stderr after checking it is one line and nothing was written.
    func refused(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let dir = try TFC.temporaryDirectory(self)
        let r = try TFC.run(["import"] + arguments + ["-o", dir.appendingPathComponent("out").path])
        XCTAssertEqual(r.status, 1, "expected a refusal: \(r.stdout)", file: file, line: line)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "nothing written", file: file, line: line)
        return r.stderr
    }

    func config(_ changes: [String: Any], removing: [String] = [], in dir: URL) throws -> String {
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: F.path("hf/config.json")))) as! [String: Any]
        var keys = original.merging(changes) { $1 }
        for key in removing { keys.removeValue(forKey: key) }
        let path = dir.appendingPathComponent("config-\(UUID().uuidString).json").path
        try JSONSerialization.data(withJSONObject: keys).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testConfigKeysTfcCannotExpressAreRefused() throws {
        let dir = try TFC.temporaryDirectory(self)
        let cases: [([String: Any], [String], String)] = [
            (["pos_emb": "learned"], [], "'pos_emb' = \"learned\" is not supported: tfc models use rotary position embeddings (or none)"),
            (["norm": "layernorm"], [], "'norm' = \"layernorm\" is not supported: the blocks' LayerNorm must be non-parametric (\"layernorm_nonparam\")"),
            ([:], ["norm"], "'norm' = \"layernorm\" is not supported"),
            (["final_norm": "rmsnorm"], [], "'final_norm' = \"rmsnorm\" is not supported"),
            (["use_bias_in_attn_linear": true], [], "'use_bias_in_attn_linear' = true is not supported: Pattention sites have no bias"),
            (["norm_activation_type": "relu"], [], "'norm_activation_type' = \"relu\" is not supported"),
            (["attention_config": [[["global"], 2]]], [], "'attention_config' names \"global\" attention: every layer must be \"tokenformer\""),
            (["num_attention_heads": 5], [], "'hidden_size' = 32 is not divisible by 'num_attention_heads' = 5"),
            (["hidden_size": "big"], [], "'hidden_size' = \"big\" must be a positive integer"),
            ([:], ["qkv_slot_num"], "the config has no 'qkv_slot_num'"),
        ]
        for (changes, removing, message) in cases {
            let path = try config(changes, removing: removing, in: dir)
            let stderr = try refused([F.path("hf/pytorch_model.bin"), "--config", path])
            XCTAssertTrue(stderr.hasPrefix("\(path): error: \(message)"), "\(stderr) does not start with \(message)")
        }
    }

    func testStateDictMismatchIsOneMessage() throws {
        let dir = try TFC.temporaryDirectory(self)
        let wrong = try config(["ffn_slot_num": 40, "num_layers": 3, "attention_config": [[["tokenformer"], 3]]], in: dir)
        let stderr = try refused([F.path("hf/pytorch_model.bin"), "--config", wrong])
        XCTAssertTrue(stderr.hasPrefix("\(F.path("hf/pytorch_model.bin")): error: the state dict does not match the config \(wrong): "), stderr)
        XCTAssertTrue(stderr.contains("missing sequential.4.attention.query.key_param_tokens [24, 32]"), stderr)
        XCTAssertTrue(stderr.contains("mis-shaped sequential.2.mlp.key_param_tokens is [48, 32], the config needs [40, 32]"), stderr)
        XCTAssertTrue(stderr.contains("unknown sequential.5.norm.bias, sequential.5.norm.weight"), stderr)
    }

    func testBrokenAndHostileFilesAreOneLineErrors() throws {
        let config = F.path("hf/config.json")
        XCTAssertTrue(try refused([F.path("truncated-zip.bin"), "--config", config]).hasPrefix("\(F.path("truncated-zip.bin")): error: corrupt zip archive: no end-of-central-directory record"))
        XCTAssertTrue(try refused([F.path("truncated-legacy.bin"), "--config", config]).hasPrefix("\(F.path("truncated-legacy.bin")): error: truncated: storage"))
        let short = try refused([F.path("short-storage.bin"), "--config", config])
        XCTAssertTrue(short.hasPrefix("\(F.path("short-storage.bin")): error: storage '0' holds 6400 bytes, its 3200 float32 elements need 12800"), short)
        let text = try refused([F.path("hf/config.json"), "--config", config])
        XCTAssertTrue(text.contains("not a PyTorch checkpoint"), text)
        XCTAssertTrue(try refused([F.path("legacy.bin")]).contains("a single checkpoint file needs --config FILE"))
        XCTAssertTrue(try refused([F.path("arrays")]).contains("neither a Hugging Face folder"))

        // A pickle whose __reduce__ calls os.system: nothing runs, the object is inert data.
        let marker = "/tmp/tfc-import-fixture-pwned"
        unlink(marker)
        let evil = try refused([F.path("evil.pt"), "--config", config])
        XCTAssertTrue(evil.hasPrefix("\(F.path("evil.pt")): error: the state dict has no embedding"), evil)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the pickle ran a command")
    }
}
