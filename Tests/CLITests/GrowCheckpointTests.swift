import Foundation
import TFWeights
import XCTest

/// `tfc grow` on a training checkpoint: the weights grow as in plain growth, both Adam moments grow
/// with them (old entries bit-identical, new entries zero), the step and sampler state are kept,
/// and `tfc train --resume` continues from the grown spec.
final class GrowCheckpointTests: XCTestCase {
    var tiny: String { TFC.root.appendingPathComponent("specs/tiny.tfs").path }

    /// A tiny model trained for 6 steps on bytes of this repository's README.
    func trainedRun(in dir: URL) throws -> (data: String, run: String) {
        let data = dir.appendingPathComponent("text.txt").path
        try Data(contentsOf: TFC.root.appendingPathComponent("README.md")).prefix(8_000).write(to: URL(fileURLWithPath: data))
        let run = dir.appendingPathComponent("run").path
        XCTAssertSucceeded(try TFC.run(["train", tiny, "--data", data, "--format", "bytes", "--steps", "12", "--stop-after", "6",
                                        "--batch", "2", "--seq", "16", "--seed", "2", "--out", run]), "train")
        return (data, run)
    }

    func floats(_ file: WeightFile, _ name: String) throws -> [Float] { Array(try XCTUnwrap(file.tensor(name), name).floats) }

    func testGrownCheckpointKeepsMomentsAndResumes() throws {
        let dir = try TFC.temporaryDirectory(self)
        let (data, run) = try trainedRun(in: dir)
        let grownSpec = dir.appendingPathComponent("grown.tfs").path, grown = dir.appendingPathComponent("grown").path
        let r = try TFC.run(["grow", tiny, "--weights", run, "--tokens", "mlp=+64", "--tokens", "attention=x2", "--init", "exact",
                             "-o", grownSpec, "--out-checkpoint", grown])
        XCTAssertSucceeded(r, "grow checkpoint")
        XCTAssertTrue(r.stdout.contains("at step 6"), r.stdout)
        XCTAssertTrue(r.stdout.contains(": exact"), r.stdout)   // the logits agree within --tolerance 1e-4
        // The same figure plain growth's tests hold exact growth to.
        let range = try XCTUnwrap(r.stdout.range(of: "max |Δlogit| = "), r.stdout)
        let difference = try XCTUnwrap(Double(r.stdout[range.upperBound...].prefix { !$0.isWhitespace }), r.stdout)
        XCTAssertLessThanOrEqual(difference, 1e-5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: grown).sorted(),
                       ["checkpoint.json", "checkpoint.safetensors", "loss.csv", "loss.json", "weights.safetensors"])
        // The plain weights are the checkpoint's, for tfc run.
        let plain = try WeightFile(path: grown + "/weights.safetensors"), state = try WeightFile(path: grown + "/checkpoint.safetensors")
        XCTAssertEqual(try floats(plain, "layers.0.mlp.key_param_tokens"), try floats(state, "layers.0.mlp.key_param_tokens"))

        let old = try WeightFile(path: run + "/checkpoint.safetensors"), new = try WeightFile(path: grown + "/checkpoint.safetensors")
        XCTAssertEqual(new.metadata["tfc.train.step"], "6")
        XCTAssertEqual(new.metadata["tfc.train.random"], old.metadata["tfc.train.random"])
        for site in ["layers.0.mlp", "layers.1.attention.query"] {
            for tensor in ["key_param_tokens", "value_param_tokens"] {
                let name = "\(site).\(tensor)"
                let oldShape = try XCTUnwrap(old.tensor(name)).shape, newShape = try XCTUnwrap(new.tensor(name)).shape
                XCTAssertEqual(newShape[1], oldShape[1])
                XCTAssertGreaterThan(newShape[0], oldShape[0], name)
                let oldCount = oldShape.reduce(1, *)
                for prefix in ["", "adam.m.", "adam.v."] {
                    let a = try floats(old, prefix + name), b = try floats(new, prefix + name)
                    XCTAssertEqual(a.map(\.bitPattern), b[..<oldCount].map(\.bitPattern), "old rows of \(prefix + name)")
                    XCTAssertTrue(b[oldCount...].allSatisfy { $0 == 0 }, "new rows of \(prefix + name) are zero")
                    if prefix != "" { XCTAssertTrue(a.contains { $0 != 0 }, "training moved \(prefix + name)") }
                }
            }
        }
        // An untouched tensor is the same, moments and all.
        for prefix in ["", "adam.m.", "adam.v."] {
            XCTAssertEqual(try floats(old, prefix + "embed.weight").map(\.bitPattern), try floats(new, prefix + "embed.weight").map(\.bitPattern))
        }
        let log = try String(contentsOfFile: grown + "/loss.csv", encoding: .utf8)
        XCTAssertEqual(log.split(separator: "\n").count, 7, log)   // header and steps 1...6 carried over

        let resumed = try TFC.run(["train", grownSpec, "--data", data, "--format", "bytes", "--steps", "12", "--batch", "2", "--seq", "16",
                                   "--seed", "2", "--out", grown, "--resume"])
        XCTAssertSucceeded(resumed, "resume the grown checkpoint")
        XCTAssertTrue(resumed.stdout.contains("steps 7...12 of 12"), resumed.stdout)
        let last = try XCTUnwrap(resumed.stdout.split(separator: "\n").first { $0.hasPrefix("step 12/12  loss ") }, resumed.stdout)
        let loss = try XCTUnwrap(Double(last.split(separator: " ")[3]), String(last))
        XCTAssertTrue(loss.isFinite && loss > 0 && loss < 7, String(last))
        let journal = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: grown + "/checkpoint.json"))) as? [String: Any]
        XCTAssertEqual(journal?["step"] as? Int, 12)
        // Zero keys with zero values are a stationary point: a new token's value gets gelu(0) = 0
        // of the gradient and its key gets v = 0 of it, so exact growth leaves the new rows at zero.
        let after = try WeightFile(path: grown + "/checkpoint.safetensors")
        for name in ["layers.0.mlp.key_param_tokens", "adam.v.layers.0.mlp.key_param_tokens", "adam.v.layers.0.mlp.value_param_tokens"] {
            XCTAssertTrue(try floats(after, name)[(256 * 64)...].allSatisfy { $0 == 0 }, name)
            XCTAssertTrue(try floats(after, name)[..<(256 * 64)].contains { $0 != 0 }, name)
        }
    }

    func testRandomKeysAndReferenceInitialisations() throws {
        let dir = try TFC.temporaryDirectory(self)
        let (data, run) = try trainedRun(in: dir)
        let old = try WeightFile(path: run + "/checkpoint.safetensors")
        let name = "layers.0.mlp"
        let oldRows = try XCTUnwrap(old.tensor(name + ".key_param_tokens")).shape[0]

        let random = try TFC.run(["grow", tiny, "--weights", run + "/checkpoint.safetensors", "--tokens", "mlp=+64", "--init", "random-keys",
                                  "--seed", "4", "-o", dir.appendingPathComponent("r.tfs").path, "--out-checkpoint", dir.appendingPathComponent("r").path])
        XCTAssertSucceeded(random, "grow --init random-keys")
        XCTAssertTrue(random.stdout.contains(": drift expected"), random.stdout)
        let r = try WeightFile(path: dir.appendingPathComponent("r/checkpoint.safetensors").path)
        let width = try XCTUnwrap(r.tensor(name + ".key_param_tokens")).shape[1]
        let keys = try floats(r, name + ".key_param_tokens")[(oldRows * width)...]
        XCTAssertEqual(keys.count, 64 * width)
        XCTAssertTrue(keys.allSatisfy { $0 != 0 }, "new keys are random")
        let mean = keys.reduce(0, +) / Float(keys.count), std = (keys.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(keys.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
        let valueWidth = try XCTUnwrap(r.tensor(name + ".value_param_tokens")).shape[1]
        XCTAssertTrue(try floats(r, name + ".value_param_tokens")[(oldRows * valueWidth)...].allSatisfy { $0 == 0 }, "new values are zero")
        XCTAssertTrue(try floats(r, "adam.m." + name + ".key_param_tokens")[(oldRows * width)...].allSatisfy { $0 == 0 }, "new moments are zero")
        // τ follows sqrt(n) with random keys (the official code's choice): no pinned scale.
        XCTAssertFalse(try String(contentsOfFile: dir.appendingPathComponent("r.tfs").path, encoding: .utf8).contains("scale:"))
        // Random keys make the new tokens trainable: after two more steps their values have moved.
        XCTAssertSucceeded(try TFC.run(["train", dir.appendingPathComponent("r.tfs").path, "--data", data, "--format", "bytes", "--steps", "12",
                                        "--stop-after", "8", "--batch", "2", "--seq", "16", "--seed", "2", "--out", dir.appendingPathComponent("r").path, "--resume"]), "resume")
        let trained = try WeightFile(path: dir.appendingPathComponent("r/checkpoint.safetensors").path)
        XCTAssertEqual(trained.metadata["tfc.train.step"], "8")
        XCTAssertTrue(try floats(trained, name + ".value_param_tokens")[(oldRows * valueWidth)...].contains { $0 != 0 }, "new values trained")

        let reference = try TFC.run(["grow", tiny, "--weights", run, "--tokens", "mlp=+64", "--init", "reference",
                                     "-o", dir.appendingPathComponent("f.tfs").path, "--out-checkpoint", dir.appendingPathComponent("f").path])
        XCTAssertSucceeded(reference, "grow --init reference")
        XCTAssertTrue(reference.stdout.contains("drift: mlp: τ follows n"), reference.stdout)
        let f = try WeightFile(path: dir.appendingPathComponent("f/checkpoint.safetensors").path)
        XCTAssertTrue(try floats(f, name + ".key_param_tokens")[(oldRows * width)...].allSatisfy { $0 == 0 }, "reference: zero keys")
    }

    func testCheckpointGrowthRefusals() throws {
        let dir = try TFC.temporaryDirectory(self)
        let (_, run) = try trainedRun(in: dir)
        let spec = dir.appendingPathComponent("g.tfs").path
        func refused(_ arguments: [String], _ message: String, line: UInt = #line) throws {
            let r = try TFC.run(["grow", tiny, "--weights", run, "--tokens", "mlp=+64", "-o", spec] + arguments)
            XCTAssertEqual(r.status, 1, r.stderr, line: line)
            XCTAssertTrue(r.stderr.contains(message), r.stderr, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, line: line)
        }
        try refused([], "needs --out-checkpoint DIR")
        try refused(["--out-weights", dir.appendingPathComponent("w.safetensors").path], "give --out-checkpoint DIR instead")
        try refused(["--out-checkpoint", run], "is the checkpoint being grown")
        let copy = dir.appendingPathComponent("copy").path
        try FileManager.default.copyItem(atPath: run, toPath: copy)
        try refused(["--out-checkpoint", copy], "already holds a checkpoint")
        try refused(["--out-checkpoint", dir.appendingPathComponent("x").path, "--init", "reference", "--scale", "pinned"],
                    "--init reference sets τ to reference, which contradicts --scale pinned")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: spec))
    }
}
