import Foundation
import XCTest
import TFWeights

/// The checkpoints Tests/fixtures/make_checkpoints.py wrote with real PyTorch, and the tests' own
/// reading of them: their float32 arrays by official key, mapped to tfc's names here (not by the
/// importer), and the NumPy reference run on them.
enum CheckpointFixtures {
    static let root = TFC.root.appendingPathComponent("Tests/fixtures/checkpoints")
    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// The tiny model's shape (make_checkpoints.py's TINY).
    static let layers = 2, hidden = 32, heads = 4, qkv = 24, proj = 20, ffn = 48, vocab = 100

    /// tfc name → official key, written out independently of TFCheckpoint.OfficialNames.
    static func officialKey(_ name: String) -> String {
        if name == "embed.weight" { return "sequential.0.word_embeddings.weight" }
        if name.hasPrefix("final_norm.") { return "sequential.\(layers + 3).norm." + name.dropFirst("final_norm.".count) }
        if name == "lm_head.weight" { return "sequential.\(layers + 4).final_linear.weight" }
        let parts = name.split(separator: ".", maxSplits: 2)
        return "sequential.\(Int(parts[1])! + 2).\(parts[2])"
    }

    static func tfcNames(untied: Bool) -> [String] {
        var names = ["embed.weight", "final_norm.weight", "final_norm.bias"] + (untied ? ["lm_head.weight"] : [])
        for i in 0..<layers {
            for site in ["attention.query", "attention.key", "attention.value", "attention.proj", "mlp"] {
                names += ["layers.\(i).\(site).key_param_tokens", "layers.\(i).\(site).value_param_tokens"]
            }
        }
        return names
    }

    /// The arrays of `folder` (arrays, arrays-parallel, arrays-step1) by tfc name.
    static func arrays(_ folder: String, untied: Bool = false) throws -> [String: Npy.Array] {
        var out: [String: Npy.Array] = [:]
        for name in tfcNames(untied: untied) {
            out[name] = try Npy.read(path: root.appendingPathComponent("\(folder)/\(officialKey(name)).npy").path)
        }
        return out
    }

    /// Asserts a safetensors file holds exactly `expected` (same names, shapes, bits).
    static func assertWeights(_ path: String, equal expected: [String: Npy.Array], _ what: String,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let weights = try WeightFile(path: path)
        XCTAssertEqual(Set(weights.names), Set(expected.keys), what, file: file, line: line)
        for (name, array) in expected {
            guard let tensor = weights.tensor(name) else { continue }
            XCTAssertEqual(tensor.shape, array.shape, "\(what): \(name)", file: file, line: line)
            XCTAssertEqual(tensor.values.map(\.bitPattern), array.data.map(\.bitPattern), "\(what): \(name) differs", file: file, line: line)
        }
    }

    /// The NumPy reference's logits for the model in `folder`, built from the arrays.
    static func referenceLogits(_ folder: String, untied: Bool, parallel: Bool, tokens: [Int], in dir: URL) throws -> Npy.Array {
        var writer = SafetensorsWriter()
        for (name, array) in try arrays(folder, untied: untied) { writer.add(name, shape: array.shape, data: array.data) }
        let weights = dir.appendingPathComponent("reference.safetensors").path
        try writer.write(to: weights)
        func site(_ n: Int) -> [String: Any] { ["tokens": n, "in": hidden, "out": hidden, "scale": NSNull(), "norm": "l2_norm_gelu"] }
        let config: [String: Any] = [
            "vocab": vocab, "hidden": hidden, "heads": heads, "layers": layers, "norm_eps": 1e-5, "rotary_fraction": 0.25,
            "rotary_base": 10000.0, "tie_embeddings": !untied, "final_norm_affine": true, "pattention_norm": "l2_norm_gelu",
            "sites": ["attention.query": site(qkv), "attention.key": site(qkv), "attention.value": site(qkv),
                      "attention.proj": site(proj), "mlp": site(ffn)]]
        let configPath = dir.appendingPathComponent("reference.json").path
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let out = dir.appendingPathComponent("reference.npy").path
        let r = try TFC.python([TFC.root.appendingPathComponent("Tests/reference/tokenformer_ref.py").path, "--config", configPath,
                                "--weights", weights, "--tokens", tokens.map(String.init).joined(separator: ","), "--out", out,
                                "--block", parallel ? "parallel" : "tokenformer"])
        XCTAssertSucceeded(r, "reference")
        return try Npy.read(path: out)
    }
}
