import Foundation
import XCTest

/// `tfc bench kernels --weights-format`: a fused row per format for every case with matrix
/// weights, checked against the naive (f32 OpenBLAS) output, its traffic counted at the format's
/// bytes, and bad values refused in one line. No speed is asserted.
final class BenchKernelsFormatTests: XCTestCase {
    func testRowPerFormatAgainstNaive() throws {
        let dir = try TFC.temporaryDirectory(self)
        let report = dir.appendingPathComponent("kernels.json")
        let r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--repeat", "1", "--warmup", "0", "--quick", "--seq", "8",
                             "--contexts", "16", "--threads", "2", "--weights-format", "bf16,int8", "--json", report.path])
        XCTAssertSucceeded(r, "tfc bench kernels --weights-format bf16,int8")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        for side in ["fused f32", "fused bf16", "fused int8"] {
            // pattention ×2 shapes ×2 phases, gemm ×2, fused q/k/v ×2, logits ×2.
            XCTAssertEqual(lines.filter { $0.contains(side + " ") && ($0.contains("% cpu") || $0.contains("% mem")) }.count,
                           side == "fused f32" ? 14 : 10, "\(side) rows:\n\(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("vs f32"), r.stdout)
        XCTAssertFalse(r.stdout.contains("warning"), r.stdout)
        XCTAssertFalse(r.stdout.contains("n/a"), r.stdout)

        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        let kernels = try XCTUnwrap(object["kernels"] as? [[String: Any]])
        XCTAssertEqual(kernels.count, 14 + 2 * 10)
        func find(_ name: String, _ phase: String, _ format: String) throws -> [String: Any] {
            try XCTUnwrap(kernels.first { $0["name"] as? String == name && $0["phase"] as? String == phase && $0["weights_format"] as? String == format },
                          "\(name) \(phase) \(format)")
        }
        // tiny's mlp site: keys and values [256, 64] each, T=8 rows of 64 in and out.
        let activations = 4.0 * (8 * 64 + 8 * 64), weights = 2.0 * 256 * 64
        XCTAssertEqual(try find("pattention mlp", "prefill", "f32")["bytes"] as? Double, activations + 4 * weights)
        XCTAssertEqual(try find("pattention mlp", "prefill", "bf16")["bytes"] as? Double, activations + 2 * weights)
        // int8: a 2-byte (bf16) scale per 32 depth values and column: keys (depth 64) 2·256, values (depth 256) 8·64.
        XCTAssertEqual(try find("pattention mlp", "prefill", "int8")["bytes"] as? Double, activations + weights + 2 * (2 * 256 + 8 * 64))
        for k in kernels {
            let format = try XCTUnwrap(k["weights_format"] as? String)
            let difference = try XCTUnwrap(k["difference"] as? Double, "\(k)")
            let fused = try XCTUnwrap(k["fused"] as? [String: Any])
            XCTAssertTrue(fused["median_s"] is Double, "\(k)")
            switch format {
            case "f32":
                XCTAssertLessThan(difference, 1e-4, "\(k)")
                XCTAssertTrue(k["vs_f32"] is NSNull, "\(k)")
            case "bf16":
                // The weights' bf16 rounding (2⁻⁹ relative) shows, and nothing more.
                XCTAssertGreaterThan(difference, 1e-4, "bf16 weights are rounded: \(k)")
                XCTAssertLessThan(difference, 3e-2, "\(k)")
                XCTAssertTrue(k["vs_f32"] is Double, "\(k)")
            case "int8":
                XCTAssertGreaterThan(difference, 1e-3, "int8 weights are quantised: \(k)")
                XCTAssertLessThan(difference, 1e-1, "\(k)")
                XCTAssertTrue(k["vs_f32"] is Double, "\(k)")
            default: XCTFail("unexpected format \(format)")
            }
        }
        // Kernels without matrix weights run once, in f32.
        XCTAssertEqual(kernels.filter { $0["class"] as? String == "attention" }.map { $0["weights_format"] as? String }, ["f32", "f32"])
    }

    func testBadFormats() throws {
        for (value, message) in [("fp16", "error: --weights-format: unknown format 'fp16'; use f32, bf16, int8"),
                                 ("bf16,bf16", "error: --weights-format: a format is listed twice in 'bf16,bf16'"),
                                 ("f32,", "error: --weights-format: empty format in 'f32,'; use a comma-separated list of f32, bf16, int8 or all")] {
            let r = try TFC.run(["bench", "kernels", "specs/tiny.tfs", "--quick", "--repeat", "1", "--weights-format", value])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderr, message + "\n")
            XCTAssertEqual(r.stdout, "", "refused before anything is measured")
        }
    }
}

/// `tfc bench model --profile`: the fused prefill by kernel kind, a column pair per format.
final class BenchModelProfileTests: XCTestCase {
    func testProfileTablePerFormat() throws {
        let dir = try TFC.temporaryDirectory(self)
        let report = dir.appendingPathComponent("model.json")
        let r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "2", "--repeat", "1", "--warmup", "0",
                             "--threads", "2", "--weights-format", "f32,bf16", "--profile", "--json", report.path])
        XCTAssertSucceeded(r, "bench model --profile")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("fused prefill by kernel kind") }, r.stdout)
        // tiny: 2 layers; a row per kind with its calls, both formats' ms and shares, and the ratio.
        for (kind, calls) in [("pattention mlp", 2), ("pattention query/key/value", 2), ("attention", 2), ("logits", 1), ("embedding", 1)] {
            let row = try XCTUnwrap(lines.first { $0.hasPrefix(kind + " ") }, "\(kind):\n\(r.stdout)")
            let cells = row.dropFirst(kind.count).split(separator: " ")
            XCTAssertEqual(cells.first, "\(calls)", row)
            XCTAssertEqual(cells.count, 6, row)   // calls, f32 ms, %, bf16 ms, %, ratio
            XCTAssertTrue(cells.last!.hasSuffix("×"), row)
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("all kernels") && $0.contains("100") }, r.stdout)

        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        let prefill = try XCTUnwrap(object["prefill"] as? [String: Any])
        let profile = try XCTUnwrap(prefill["fused_profile"] as? [[String: Any]])
        let kinds = Set(profile.compactMap { $0["kind"] as? String })
        XCTAssertTrue(kinds.isSuperset(of: ["embedding", "pattention query/key/value", "pattention proj", "pattention mlp", "attention", "logits"]), "\(kinds)")
        XCTAssertTrue(profile.allSatisfy { ($0["seconds"] as? Double ?? 0) > 0 }, "\(profile)")
        let other = try XCTUnwrap((object["other_fused"] as? [[String: Any]])?.first)
        XCTAssertEqual((other["prefill_profile"] as? [[String: Any]])?.count, profile.count)

        // The decode steps: a second table, and per kind the calls of one step (tiny: 2 layers).
        let decodeTable = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("fused decode step by kernel kind (ms per step: median of 1 profiled decode of 2 tokens") }, r.stdout)
        XCTAssertTrue(lines[decodeTable...].contains { $0.hasPrefix("median decode step in the timed runs: avx2") || $0.hasPrefix("median decode step in the timed runs: avx512") }, r.stdout)
        let decode = try XCTUnwrap(object["decode"] as? [String: Any])
        let decodeProfile = try XCTUnwrap(decode["fused_profile"] as? [[String: Any]])
        let decodeCalls = Dictionary(uniqueKeysWithValues: decodeProfile.map { ($0["kind"] as! String, $0["calls"] as! Int) })
        XCTAssertEqual(decodeCalls, ["embedding": 1, "pattention query/key/value": 2, "attention": 2, "pattention proj": 2, "pattention mlp": 2,
                                     "layernorm": 1, "logits": 1], "\(decodeProfile)")
        XCTAssertTrue(decodeProfile.allSatisfy { ($0["seconds"] as? Double ?? 0) > 0 }, "\(decodeProfile)")
        XCTAssertEqual((other["decode_profile"] as? [[String: Any]])?.count, decodeProfile.count)

        // Without --profile there is no table and the key is null.
        let plain = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "2", "--repeat", "1", "--warmup", "0", "--threads", "1"])
        XCTAssertSucceeded(plain, "bench model")
        XCTAssertFalse(plain.stdout.contains("by kernel kind"), plain.stdout)
    }
}

/// `tfc bench accuracy --text`: perplexity of a held-out text per format, against the naive
/// backend's on the same windows.
final class BenchAccuracyTextTests: XCTestCase {
    func testPerplexityPerFormat() throws {
        let dir = try TFC.temporaryDirectory(self)
        let text = dir.appendingPathComponent("held-out.txt"), report = dir.appendingPathComponent("accuracy.json")
        let sentence = "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n"
        try String(repeating: sentence, count: 4).write(to: text, atomically: true, encoding: .utf8)
        let bytes = 4 * sentence.utf8.count, windows = (bytes - 1 + 127) / 128   // targets 1..<bytes, 128 per window
        let r = try TFC.run(["bench", "accuracy", "specs/tiny.tfs", "--tokens", "8", "--threads", "2", "--weights-format", "f32,bf16",
                             "--text", text.path, "--json", report.path])
        XCTAssertSucceeded(r, "bench accuracy --text")
        XCTAssertTrue(r.stdout.contains("held-out text \(text.path) (bytes): \(bytes) tokens, \(bytes - 1) scored in \(windows) windows of 128"), r.stdout)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as! [String: Any]
        let heldOut = try XCTUnwrap(object["held_out"] as? [String: Any])
        let reference = try XCTUnwrap(heldOut["reference_perplexity"] as? Double)
        // Random weights of std 0.02 give nearly uniform logits over tiny's 256 byte values.
        XCTAssertEqual(reference, 256, accuracy: 256 * 0.05)
        let formats = try XCTUnwrap(object["formats"] as? [[String: Any]])
        func perplexity(_ name: String) throws -> Double {
            try XCTUnwrap(formats.first { $0["format"] as? String == name }?["perplexity"] as? Double, name)
        }
        // f32 fused is the naive model up to float rounding; bf16 moves it by its rounding, slightly.
        XCTAssertEqual(try perplexity("f32"), reference, accuracy: reference * 1e-5)
        XCTAssertEqual(try perplexity("bf16"), reference, accuracy: reference * 1e-2)
        XCTAssertNotEqual(try perplexity("bf16"), try perplexity("f32"))
        let change = try XCTUnwrap(formats.first { $0["format"] as? String == "bf16" }?["perplexity_change_percent"] as? Double)
        XCTAssertEqual(change, 100 * (try perplexity("bf16") / reference - 1), accuracy: 1e-9)
        for line in ["naive f32", "f32 ", "bf16 "] {
            XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasPrefix(line) && ($0.contains("reference") || $0.contains("%")) }, "\(line):\n\(r.stdout)")
        }
    }

    func testTextErrors() throws {
        let missing = try TFC.run(["bench", "accuracy", "specs/tiny.tfs", "--tokens", "4", "--text", "no-such-file.txt"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "no-such-file.txt: error: cannot read the text\n")
        let stray = try TFC.run(["bench", "accuracy", "specs/tiny.tfs", "--tokens", "4", "--tokenizer", "t.json"])
        XCTAssertEqual(stray.status, 1)
        XCTAssertEqual(stray.stderr, "error: --tokenizer is for --text; give the text to score\n")
    }
}
