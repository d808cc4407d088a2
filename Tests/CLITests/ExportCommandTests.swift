import Foundation
import XCTest
import TFWeights

/// `tfc export` to the official layouts, read back by `tfc import` and by Python without PyTorch.
final class ExportCommandTests: XCTestCase {
    func spec(_ name: String) -> String { TFC.root.appendingPathComponent(name).path }

    /// A spec from tiny.tfs with some lines replaced, written into `dir`.
    func tinyVariant(_ replacements: [(String, String)], in dir: URL) throws -> String {
        var text = try String(contentsOfFile: spec("specs/tiny.tfs"), encoding: .utf8)
        for (a, b) in replacements {
            XCTAssertTrue(text.contains(a), a)
            text = text.replacingOccurrences(of: a, with: b)
        }
        let path = dir.appendingPathComponent("model-\(UUID().uuidString.prefix(8)).tfs").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func checkJSON(_ specPath: String) throws -> [String: Any] {
        let r = try TFC.run(["check", specPath, "--json"])
        XCTAssertSucceeded(r, "check")
        var object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        object.removeValue(forKey: "name")
        return object
    }

    /// export then import: the same weights, bit for bit, and a spec that checks the same.
    func testRoundTripGivesBackTheSameModel() throws {
        let dir = try TFC.temporaryDirectory(self)
        let variants = [
            ("tiny", spec("specs/tiny.tfs")),
            ("affine-untied", try tinyVariant([("final_norm = plain", "final_norm = affine"), ("tie_embeddings = true", "tie_embeddings = false"),
                                               ("pattention = l2_norm_gelu", "pattention = softmax")], in: dir)),
            ("parallel", spec("specs/examples/parallel.tfs")),
        ]
        for (name, specPath) in variants {
            let weights = dir.appendingPathComponent("\(name).safetensors").path
            XCTAssertSucceeded(try TFC.run(["init", specPath, "-o", weights, "--seed", "3"]), "init")
            for layout in ["hf", "deepspeed"] {
                let out = dir.appendingPathComponent("\(name)-\(layout)").path
                XCTAssertSucceeded(try TFC.run(["export", specPath, "--weights", weights, "-o", out, "--layout", layout]), "export \(name) \(layout)")
                let back = dir.appendingPathComponent("\(name)-\(layout)-back").path
                XCTAssertSucceeded(try TFC.run(["import", out, "-o", back]), "import \(name) \(layout)")
                let original = try WeightFile(path: weights), imported = try WeightFile(path: back + ".safetensors")
                XCTAssertEqual(original.names, imported.names, "\(name) \(layout)")
                for tensorName in original.names {
                    XCTAssertEqual(original.tensor(tensorName)!.shape, imported.tensor(tensorName)?.shape)
                    XCTAssertEqual(original.tensor(tensorName)!.values.map(\.bitPattern), imported.tensor(tensorName)?.values.map(\.bitPattern),
                                   "\(name) \(layout): \(tensorName)")
                }
                let a = try checkJSON(specPath) as NSDictionary, b = try checkJSON(back + ".tfs") as NSDictionary
                XCTAssertEqual(a, b, "\(name) \(layout): the imported spec differs")
            }
        }
    }

    /// The exported pytorch_model.bin and DeepSpeed file load with zipfile + a restricted pickle
    /// (Tests/fixtures/torchless_load.py) into the official keys and the same values.
    func testExportLoadsInPythonWithoutPyTorch() throws {
        let dir = try TFC.temporaryDirectory(self)
        let specPath = try tinyVariant([("final_norm = plain", "final_norm = affine")], in: dir)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", specPath, "-o", weights]), "init")
        let loader = TFC.root.appendingPathComponent("Tests/fixtures/torchless_load.py").path
        for (layout, file, extra) in [("hf", "pytorch_model.bin", [String]()), ("deepspeed", "global_step0/mp_rank_00_model_states.pt", ["--module"])] {
            let out = dir.appendingPathComponent(layout).path
            XCTAssertSucceeded(try TFC.run(["export", specPath, "--weights", weights, "-o", out, "--layout", layout]), "export")
            let arrays = dir.appendingPathComponent("\(layout)-arrays")
            let r = try TFC.python([loader, out + "/" + file, arrays.path] + extra)
            XCTAssertSucceeded(r, "torchless load")
            let original = try WeightFile(path: weights)
            XCTAssertEqual(r.stdout, "\(original.names.count) tensors\n")
            for name in original.names {
                // The official key, spelled out here: layers.i.X → sequential.(i+2).X, final norm at L+3.
                let key: String
                if name == "embed.weight" { key = "sequential.0.word_embeddings.weight" }
                else if name.hasPrefix("final_norm.") { key = "sequential.5.norm." + name.dropFirst("final_norm.".count) }
                else {
                    let parts = name.split(separator: ".", maxSplits: 2)
                    key = "sequential.\(Int(parts[1])! + 2).\(parts[2])"
                }
                let array = try Npy.read(path: arrays.appendingPathComponent(key + ".npy").path)
                XCTAssertEqual(array.shape, original.tensor(name)!.shape, key)
                XCTAssertEqual(array.data.map(\.bitPattern), original.tensor(name)!.values.map(\.bitPattern), key)
            }
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("hf/config.json"))) as! [String: Any]
        XCTAssertEqual(config["final_norm"] as? String, "layernorm")
        XCTAssertEqual(config["norm"] as? String, "layernorm_nonparam")
        XCTAssertEqual(config["ffn_slot_num"] as? Int, 256)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("deepspeed/latest"), encoding: .utf8), "global_step0\n")
    }

    func refused(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try TFC.run(["export"] + arguments)
        XCTAssertEqual(r.status, 1, "expected a refusal: \(r.stdout)", file: file, line: line)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "one line: \(r.stderr)", file: file, line: line)
        return r.stderr
    }

    func testWhatTheOfficialCodeCannotComputeIsRefused() throws {
        let dir = try TFC.temporaryDirectory(self)
        func weightsFor(_ specPath: String) throws -> String {
            let w = dir.appendingPathComponent(UUID().uuidString + ".safetensors").path
            XCTAssertSucceeded(try TFC.run(["init", specPath, "-o", w]), "init")
            return w
        }
        let out = dir.appendingPathComponent("out").path
        let variant = try tinyVariant([("tokens: qkv)\n    k", "tokens: qkv, norm: softmax)\n    k")], in: dir)
        XCTAssertEqual(try refused([variant, "--weights", try weightsFor(variant), "-o", out]),
                       "\(variant): error: cannot export: site 'attention.query' uses softmax while the model uses l2_norm_gelu: the official code has one norm_activation_type for every site\n")
        let twoMLP = spec("specs/examples/two-mlp.tfs")
        XCTAssertTrue(try refused([twoMLP, "--weights", try weightsFor(twoMLP), "-o", out]).hasPrefix("\(twoMLP): error: cannot export: site "))
        let noResidual = try tinyVariant([("x2 = x1 + pattention(h1, site: mlp, tokens: ffn)", "x2 = pattention(h1, site: mlp, tokens: ffn)")], in: dir)
        XCTAssertTrue(try refused([noResidual, "--weights", try weightsFor(noResidual), "-o", out])
            .hasPrefix("\(noResidual): error: cannot export: the block is not one the official layer computes"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a refused export writes nothing")

        // Weights named like an output in the output folder are never replaced.
        let folder = dir.appendingPathComponent("folder")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let inside = folder.appendingPathComponent("config.json").path
        try FileManager.default.copyItem(atPath: try weightsFor(spec("specs/tiny.tfs")), toPath: inside)
        let before = try Data(contentsOf: URL(fileURLWithPath: inside))
        XCTAssertEqual(try refused([spec("specs/tiny.tfs"), "--weights", inside, "-o", folder.path]),
                       "\(folder.path)/config.json: error: -o is the input weights file; write to another file\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: inside)), before)
    }

    /// After tfc grow, τ is pinned: refused, unless --allow-tau-drift, which measures the drift.
    func testGrownModelNeedsAllowTauDrift() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec("specs/tiny.tfs"), "-o", weights]), "init")
        let grown = dir.appendingPathComponent("grown.tfs").path, grownWeights = dir.appendingPathComponent("grown.safetensors").path
        XCTAssertSucceeded(try TFC.run(["grow", spec("specs/tiny.tfs"), "--weights", weights, "-o", grown, "--out-weights", grownWeights, "--tokens", "mlp=300"]), "grow")
        let out = dir.appendingPathComponent("out").path
        let message = try refused([grown, "--weights", grownWeights, "-o", out])
        XCTAssertTrue(message.hasPrefix("\(grown): error: cannot export: τ is pinned at layers.0.mlp (τ = 16.0, sqrt(n) = 17.32), layers.1.mlp"), message)
        XCTAssertTrue(message.contains("--allow-tau-drift"), message)
        let r = try TFC.run(["export", grown, "--weights", grownWeights, "-o", out, "--allow-tau-drift"])
        XCTAssertSucceeded(r, "export --allow-tau-drift")
        let drift = r.stdout.range(of: #"max \|Δlogit\| ([0-9.e-]+)"#, options: .regularExpression).map { Float(r.stdout[$0].split(separator: " ").last!)! }
        XCTAssertNotNil(drift, r.stdout)
        XCTAssertGreaterThan(drift ?? 0, 1e-4, "τ 16 → 17.3 changes the logits")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/pytorch_model.bin"))
    }
}
