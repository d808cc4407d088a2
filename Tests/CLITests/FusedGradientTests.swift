import Foundation
import XCTest
import TFWeights

/// `tfc grad --backend fused` (generated Pattention and attention backward kernels) against
/// `tfc grad --backend naive`, the oracle that GradientReferenceTests checks against float64 finite
/// differences: the same loss, and every element of every weight's gradient within 1e-4 of that
/// tensor's largest |gradient| (observed: ~1e-6) — floored at 1e-3 of the model's largest |gradient|
/// for tensors whose whole gradient is far smaller (tiny softmax: layer-1 query/key tensors at
/// 1e-5 of the largest, from near-uniform attention, where float32 cancellation leaves both
/// backends ~1e-4 of such a tensor from float64 finite differences). A wrong rule is off by the
/// size of the gradient itself. On the spec variants the reference tests use.
final class FusedGradientTests: XCTestCase {
    /// Both backends on `spec`; every tensor compared. `zero` names tensors whose gradient is
    /// exactly zero by construction; all others must have a non-zero one.
    func compare(spec: String, weights: String, in dir: URL, tokens: [Int], _ what: String, zero: (String) -> Bool = { _ in false },
                 threads: Int = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let list = tokens.map(String.init).joined(separator: ",")
        var loaded: [WeightFile] = []
        var losses: [String] = []
        // naive, then fused for every vector target this CPU runs.
        let runs = [("naive", [String]())] + TFC.runnableTargets.map { ("fused", ["--target-cpu", $0]) }
        for (i, (backend, target)) in runs.enumerated() {
            let out = dir.appendingPathComponent("g-\(i).safetensors").path
            let run = try TFC.run(["grad", spec, "--weights", weights, "--tokens", list, "-o", out, "--backend", backend, "--threads", String(threads)] + target)
            XCTAssertSucceeded(run, "\(what): tfc grad --backend \(backend) \(target)", file: file, line: line)
            XCTAssertTrue(run.stdout.contains("\(backend) backend"), run.stdout, file: file, line: line)
            losses.append(run.stdout.split(separator: "\n").first { $0.hasPrefix("loss = ") }.map(String.init) ?? "no loss line")
            loaded.append(try WeightFile(path: out))
        }
        let naive = loaded[0]
        let largest = naive.tensors.map { $0.floats.map(abs).max() ?? 0 }.max() ?? 0
        for (index, fused) in loaded.enumerated().dropFirst() {
            let what = "\(what) (\(runs[index].1.last!))"
            XCTAssertEqual(Double(losses[0].dropFirst(7)) ?? .nan, Double(losses[index].dropFirst(7)) ?? 0, accuracy: 1e-5, "\(what): loss", file: file, line: line)
            XCTAssertEqual(naive.names.sorted(), fused.names.sorted(), "\(what): tensors", file: file, line: line)
            for name in naive.names {
                let a = Array(naive.tensor(name)!.floats), b = Array(fused.tensor(name)!.floats)
                XCTAssertEqual(a.count, b.count, "\(what): \(name)", file: file, line: line)
                let scale = a.map(abs).max() ?? 0
                if zero(name) { XCTAssertEqual(scale, 0, "\(what): \(name) should be zero", file: file, line: line); continue }
                XCTAssertGreaterThan(scale, 0, "\(what): \(name) has an all-zero gradient", file: file, line: line)
                let error = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(error, 1e-4 * max(scale, 1e-3 * largest),
                                         "\(what): \(name): max |fused - naive| \(error) of max |g| \(scale)", file: file, line: line)
            }
        }
    }

    func compare(_ specText: String, tokens: [Int] = GradientSpecVariants.tokens, _ what: String, threads: Int = 1,
                 file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try TFC.temporaryDirectory(self)
        let (spec, weights) = try GradientSpecVariants.materialize(specText, in: dir, file: file, line: line)
        try compare(spec: spec, weights: weights, in: dir, tokens: tokens, what, threads: threads, file: file, line: line)
    }

    func specText(_ name: String) throws -> String { try GradientSpecVariants.text(name) }

    func testTinyEveryVariant() throws {
        for (text, what) in try GradientSpecVariants.tinyEveryNorm() { try compare(text, what) }
    }

    /// 300 tokens: the Pattention backward's row blocks (128 rows) are two full and a partial one;
    /// with 2 threads they are two tasks with partial dK and dV sums.
    func testSeveralRowBlocks() throws {
        let text = try specText("specs/tiny.tfs").replacingOccurrences(of: "context = 128", with: "context = 320")
        XCTAssertTrue(text.contains("context = 320"))
        var random = UInt64(12345)
        let tokens = (0..<300).map { _ -> Int in random = random &* 6364136223846793005 &+ 1442695040888963407; return Int(random >> 56) }
        try compare(text, tokens: tokens, "tiny, 300 tokens")
        try compare(text, tokens: tokens, "tiny, 300 tokens, 2 threads", threads: 2)
    }

    /// The fused gradients do not depend on the thread count: with saved scores the Pattention
    /// backward splits rows, then weight-gradient tiles, never summing partial copies (before,
    /// 2 threads summed two partial dK and dV and gave other bits). 300 tokens: three row blocks.
    func testThreadCountKeepsTheBits() throws {
        let text = try specText("specs/tiny.tfs").replacingOccurrences(of: "context = 128", with: "context = 320")
        let dir = try TFC.temporaryDirectory(self)
        let (spec, weights) = try GradientSpecVariants.materialize(text, in: dir)
        var random = UInt64(777)
        let list = (0..<300).map { _ -> String in random = random &* 6364136223846793005 &+ 1442695040888963407; return String(random >> 56) }
            .joined(separator: ",")
        for target in TFC.runnableTargets {
            var files: [Data] = []
            for threads in [1, 2] {
                let out = dir.appendingPathComponent("g-\(target)-\(threads).safetensors").path
                let run = try TFC.run(["grad", spec, "--weights", weights, "--tokens", list, "-o", out, "--backend", "fused",
                                       "--threads", String(threads), "--target-cpu", target])
                XCTAssertSucceeded(run, "tfc grad --threads \(threads) --target-cpu \(target)")
                files.append(try Data(contentsOf: URL(fileURLWithPath: out)))
            }
            XCTAssertGreaterThan(files[0].count, 1000)
            XCTAssertTrue(files[0] == files[1], "\(target): the gradients of 1 and 2 threads differ")
        }
    }

    /// Bidirectional attention, and a head dimension (12) that is not a multiple of the vector width.
    func testNonCausalAndOddHeadDim() throws {
        let tiny = try specText("specs/tiny.tfs")
        let nonCausal = tiny.replacingOccurrences(of: "causal: true", with: "causal: false")
        XCTAssertTrue(nonCausal.contains("causal: false"))
        try compare(nonCausal, "tiny non-causal")
        let odd = tiny.replacingOccurrences(of: "hidden = 64", with: "hidden = 48").replacingOccurrences(of: "rotary_fraction = 0.25", with: "rotary_fraction = 0.5")
        XCTAssertTrue(odd.contains("hidden = 48") && odd.contains("rotary_fraction = 0.5"))
        try compare(odd, "tiny head_dim 12")
    }

    func testPerSiteVariantsAndPinnedScale() throws {
        try compare(try GradientSpecVariants.perSiteVariantsAndPinnedScale(), "tiny per-site")
    }

    func testAffineFinalNormAndUntiedHead() throws {
        try compare(try GradientSpecVariants.affineFinalNormAndUntiedHead(), "tiny affine untied")
    }

    func testParallelBlock() throws {
        try compare(try specText("specs/examples/parallel.tfs"), tokens: GradientSpecVariants.parallelTokens, "parallel")
    }

    func testTwoMLP() throws {
        try compare(try specText("specs/examples/two-mlp.tfs"), tokens: GradientSpecVariants.twoMLPTokens, "two-mlp")
    }

    /// A grown model (tokens doubled with zero keys and pinned τ, a zero-valued layer inserted).
    func testAfterGrowth() throws {
        let dir = try TFC.temporaryDirectory(self)
        let grown = try GradientSpecVariants.grownTiny(in: dir)
        try compare(spec: grown.spec, weights: grown.weights, in: dir, tokens: GradientSpecVariants.tokens, "grown tiny", zero: grown.zero)
    }

    /// `--target-cpu` on grad and train: a target this CPU lacks is refused in one line, before any work.
    func testATargetTheCPULacksIsRefused() throws {
        let dir = try TFC.temporaryDirectory(self)
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", tiny, "-o", weights]), "tfc init")
        let data = dir.appendingPathComponent("d.txt").path
        try String(repeating: "some text to train on. ", count: 20).write(toFile: data, atomically: true, encoding: .utf8)
        let lacking = ["TFC_CPU_PRETEND_LACKING": "avx512f"]
        // The refusal lists every AVX-512 feature missing: the pretended one and whatever this CPU lacks itself.
        let flags = Set(((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        let missing = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].filter { $0 == "avx512f" || !flags.contains($0) }.joined(separator: ", ")
        for arguments in [["grad", tiny, "--weights", weights, "--tokens", "1,2,3", "-o", dir.appendingPathComponent("g.safetensors").path],
                          ["train", tiny, "--data", data, "--steps", "1", "--seq", "8", "--out", dir.appendingPathComponent("out").path]] {
            let run = try TFC.run(arguments + ["--backend", "fused", "--target-cpu", "avx512"], environment: lacking)
            XCTAssertEqual(run.status, 1, arguments[0])
            XCTAssertTrue(run.stderr.hasPrefix("error: --target-cpu avx512: this CPU ("), run.stderr)
            XCTAssertTrue(run.stderr.hasSuffix(") lacks \(missing), so it cannot run avx512 code\n"), run.stderr)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.safetensors").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    func testUnknownBackendIsAUsageError() throws {
        let dir = try TFC.temporaryDirectory(self)
        let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs").path
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", tiny, "-o", weights]), "tfc init")
        let run = try TFC.run(["grad", tiny, "--weights", weights, "--tokens", "1,2,3", "-o", dir.appendingPathComponent("g.safetensors").path,
                               "--backend", "gpu"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("--backend") && run.stderr.contains("gpu"), run.stderr)
    }
}
