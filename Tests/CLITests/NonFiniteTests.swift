import Foundation
import XCTest
import TFWeights

/// Non-finite values (README "Non-finite values"): every command that loads weights refuses a NaN
/// or ±Inf with the file, tensor and index, unless --allow-nonfinite; logits that come out
/// non-finite are a warning for `run` and an error for `generate` (tfc and compiled programs).
final class NonFiniteTests: XCTestCase {
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-nonfinite-test-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()
    static var environment: [String: String] { ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path] }
    static let clean: String = {
        let path = dir.appendingPathComponent("tiny.safetensors").path
        _ = try? TFC.run(["init", "specs/tiny.tfs", "-o", path, "--seed", "5"])
        return path
    }()

    /// tiny with an untied lm_head, so a poisoned embedding row touches only the rows of its token.
    static let untied: (spec: String, weights: String) = {
        let spec = dir.appendingPathComponent("untied.tfs").path
        let text = (try? String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)) ?? ""
        try? text.replacingOccurrences(of: "tie_embeddings = true", with: "tie_embeddings = false").write(toFile: spec, atomically: true, encoding: .utf8)
        let path = dir.appendingPathComponent("untied.safetensors").path
        _ = try? TFC.run(["init", spec, "-o", path, "--seed", "5"])
        return (spec, path)
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    /// The clean weights with `tensor[index] = value`, written to a new file.
    func poisoned(_ tensor: String, _ index: Int, _ value: Float, name: String, from source: String? = nil) throws -> String {
        try poisoned(tensor, [index], value, name: name, from: source)
    }

    func poisoned(_ tensor: String, _ indices: [Int], _ value: Float, name: String, from source: String? = nil) throws -> String {
        let file = try WeightFile(path: source ?? Self.clean)
        XCTAssertNotNil(file.tensor(tensor), "no tensor \(tensor) to poison")
        var writer = SafetensorsWriter()
        for t in file.tensors {
            var data = t.values
            if t.name == tensor { for i in indices { data[i] = value } }
            writer.add(t.name, shape: t.shape, data: data)
        }
        let path = Self.dir.appendingPathComponent(name).path
        try writer.write(to: path)
        return path
    }

    func tfc(_ arguments: [String]) throws -> TFCResult { try TFC.run(arguments, environment: Self.environment) }

    func testEveryCommandThatLoadsWeightsRefusesNaNAndInf() throws {
        let cases: [(String, Int, Float, String)] = [
            ("layers.0.attention.key.key_param_tokens", 70, .nan, "a non-finite value (nan) at index 70 [1, 6]"),
            ("embed.weight", 64 * 200 + 3, .infinity, "a non-finite value (inf) at index 12803 [200, 3]"),
            ("layers.1.mlp.value_param_tokens", 5, -.infinity, "a non-finite value (-inf) at index 5 [0, 5]"),
            ("embed.weight", 64 * 3 + 1, 3e38,
             "a value too large for float32 arithmetic (3e+38 at index 193 [3, 1]; its square overflows, the limit is ±2^64)"),
            ("layers.0.mlp.key_param_tokens", 0, -0x1p64, "a value too large for float32 arithmetic (-1.8446744e+19 at index 0 [0, 0]; its square overflows, the limit is ±2^64)"),
        ]
        for (i, (tensor, index, value, what)) in cases.enumerated() {
            let w = try poisoned(tensor, index, value, name: "bad\(i).safetensors")
            let expected = "\(w): error: tensor \(tensor) holds \(what); pass --allow-nonfinite to load it anyway\n"
            let out = Self.dir.appendingPathComponent("out\(i)").path
            let commands: [[String]] = [
                ["run", "specs/tiny.tfs", "--weights", w, "--tokens", "1,2,3"],
                ["run", "specs/tiny.tfs", "--weights", w, "--tokens", "1,2,3", "--backend", "naive"],
                ["generate", "specs/tiny.tfs", "--weights", w, "--tokens", "1,2,3", "-n", "2"],
                ["compile", "specs/tiny.tfs", "--weights", w, "-o", out],
                ["grow", "specs/tiny.tfs", "--weights", w, "--tokens", "mlp=+8", "-o", out + ".tfs", "--out-weights", out + ".safetensors"],
                ["bench", "model", "specs/tiny.tfs", "--weights", w, "--seq", "4", "--decode", "1", "--repeat", "1", "--quick"],
            ]
            for command in commands {
                let r = try tfc(command)
                XCTAssertEqual(r.status, 1, "\(command.prefix(2)): \(r.stderr)")
                XCTAssertEqual(r.stderr, expected, "\(command.prefix(2))")
                XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written")
            }
        }
    }

    func testAllowNonFiniteLoadsThemAndWarnsAboutTheLogits() throws {
        let w = try poisoned("layers.0.attention.key.key_param_tokens", 70, .nan, name: "nan-key.safetensors")
        let r = try tfc(["run", "specs/tiny.tfs", "--weights", w, "--tokens", "1,2,3", "--backend", "naive", "--allow-nonfinite"])
        XCTAssertSucceeded(r, "run --allow-nonfinite")
        XCTAssertEqual(r.stderr, "warning: 768 of 768 logits are not finite (NaN or ±Inf), first in row 0 of 3: "
                       + "the weights hold huge or non-finite values, or the computation overflowed float32\n")
        // Just below the limit loads.
        let large = try poisoned("layers.0.mlp.key_param_tokens", 0, Float(0x1p64).nextDown, name: "large.safetensors")
        XCTAssertSucceeded(try tfc(["run", "specs/tiny.tfs", "--weights", large, "--tokens", "1,2,3"]), "run, 2^64 - ulp")
        // Clean weights: no warning.
        let clean = try tfc(["run", "specs/tiny.tfs", "--weights", Self.clean, "--tokens", "1,2,3"])
        XCTAssertSucceeded(clean, "run")
        XCTAssertEqual(clean.stderr, "")
    }

    /// Allowed non-finite weights that make the logits NaN: `run` warns, and `generate` stops with
    /// an error (after prefill, or after a decoding step) instead of sampling token 0 from them.
    func testNonFiniteLogitsWarnAndStopGeneration() throws {
        let w = try poisoned("embed.weight", 64 * 3 + 1, .infinity, name: "inf-row.safetensors", from: Self.untied.weights)
        for backend in ["fused", "naive"] {
            let run = try tfc(["run", Self.untied.spec, "--weights", w, "--tokens", "1,2,3", "--backend", backend, "--allow-nonfinite"])
            XCTAssertSucceeded(run, "run \(backend)")
            // Every row, not only token 3's: both backends multiply the masked (future) keys'
            // probabilities, 0, by their values, and 0 · NaN is NaN.
            XCTAssertEqual(run.stderr, "warning: 768 of 768 logits are not finite (NaN or ±Inf), first in row 0 of 3: "
                           + "the weights hold huge or non-finite values, or the computation overflowed float32\n", backend)
            // Token 3 in the prompt: the prefill's logits are already NaN.
            let g = try tfc(["generate", Self.untied.spec, "--weights", w, "--tokens", "1,2,3", "-n", "4", "--backend", backend, "--allow-nonfinite"])
            XCTAssertEqual(g.status, 1, backend)
            XCTAssertEqual(g.stdout, "", backend)
            XCTAssertEqual(g.stderr, "error: generate: 256 of 256 logits at position 2 are not finite (NaN or ±Inf), so no token can be sampled: "
                           + "the weights hold huge or non-finite values, or the computation overflowed float32\n", backend)
        }
        // Every embedding row infinite but those of tokens 1 and 2: the prompt's logits are finite,
        // and the first decoded token (if not 1 or 2) makes the next ones NaN.
        let rows = try poisoned("embed.weight", (0..<256).filter { $0 != 1 && $0 != 2 }.map { $0 * 64 }, .infinity, name: "inf-rows.safetensors", from: Self.untied.weights)
        for backend in ["fused", "naive"] {
            let g = try tfc(["generate", Self.untied.spec, "--weights", rows, "--tokens", "1,2", "-n", "8", "--backend", backend, "--allow-nonfinite"])
            let first = g.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertFalse(["1", "2"].contains(first), "the test needs another first token: \(g.stdout)")
            XCTAssertEqual(g.status, 1, backend)
            XCTAssertEqual(g.stdout, first + "\n", "the tokens printed so far end their line")
            XCTAssertEqual(g.stderr, "error: generate: 256 of 256 logits at position 2 are not finite (NaN or ±Inf), so no token can be sampled: "
                           + "the weights hold huge or non-finite values, or the computation overflowed float32\n", backend)
        }
    }

    /// The compiled program (built with --allow-nonfinite) applies the same policy to its logits.
    func testCompiledProgramWarnsAndStops() throws {
        let w = try poisoned("embed.weight", 64 * 3 + 1, .infinity, name: "inf-c.safetensors", from: Self.untied.weights)
        let exe = Self.dir.appendingPathComponent("huge").path
        XCTAssertSucceeded(try tfc(["compile", Self.untied.spec, "--weights", w, "-o", exe, "--allow-nonfinite"]), "compile")
        let npy = Self.dir.appendingPathComponent("huge.npy").path
        let logits = try TFC.runProcess(URL(fileURLWithPath: exe), ["--tokens", "1,2,3", "--logits", npy])
        XCTAssertSucceeded(logits, "--logits")
        XCTAssertTrue(logits.stderr.hasPrefix("huge: warning: ") && logits.stderr.contains("768 of 768 logits are not finite"), logits.stderr)
        let generate = try TFC.runProcess(URL(fileURLWithPath: exe), ["--tokens", "1,2,3", "-n", "4"])
        XCTAssertEqual(generate.status, 1)
        XCTAssertEqual(generate.stdout, "")
        XCTAssertEqual(generate.stderr, "huge: error: 256 of 256 logits at position 2 are not finite (NaN or Inf), so no token can be sampled: "
                       + "the weights hold huge or non-finite values, or the computation overflowed float32\n")
    }
}
