import Foundation
import XCTest
import TFWeights
@testable import TFDriver

/// `tfc generate`: seeded sampling is reproducible, greedy decoding is the argmax of `tfc run`'s
/// logits, decoding against the KV cache equals recomputing the prefix, and generation stops at
/// -n, the end token and the context with a message.
final class GenerateTests: XCTestCase {
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-generate-test-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()
    static var environment: [String: String] { ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path] }
    static let weights: String = {
        let path = dir.appendingPathComponent("tiny.safetensors").path
        _ = try? TFC.run(["init", "specs/tiny.tfs", "-o", path, "--seed", "5"])
        return path
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func generate(_ args: [String], spec: String = "specs/tiny.tfs") throws -> TFCResult {
        try TFC.run(["generate", spec, "--weights", Self.weights] + args, environment: Self.environment)
    }

    func ids(_ stdout: String) -> [Int] {
        stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map { Int($0)! }
    }

    func testSamplingWithAFixedSeedIsReproducible() throws {
        let args = ["--tokens", "4,8,15,16,23,42", "-n", "32", "--temperature", "0.9", "--top-k", "50", "--top-p", "0.95"]
        let a = try generate(args + ["--seed", "7"])
        let b = try generate(args + ["--seed", "7"])
        let c = try generate(args + ["--seed", "8"])
        for r in [a, b, c] { XCTAssertSucceeded(r, "generate") }
        XCTAssertEqual(a.stdout, b.stdout)
        XCTAssertEqual(ids(a.stdout).count, 32)
        XCTAssertNotEqual(a.stdout, c.stdout, "another seed, another sample")
        // The naive backend draws the same tokens (same logits to float rounding, same sampler).
        let naive = try generate(args + ["--seed", "7", "--backend", "naive"])
        XCTAssertEqual(naive.stdout, a.stdout)
        XCTAssertTrue(a.stderr.hasPrefix("generated 32 tokens; prefill 6 tokens at "), a.stderr)
        for part in ["tokens/s", "time to first token", "decode "] { XCTAssertTrue(a.stderr.contains(part), a.stderr) }
    }

    func testGreedyEqualsArgmaxOfRunLogits() throws {
        let prompt = [9, 200, 31, 7]
        let r = try generate(["--tokens", prompt.map(String.init).joined(separator: ","), "-n", "12"])
        XCTAssertSucceeded(r, "generate")
        let generated = ids(r.stdout)
        XCTAssertEqual(generated.count, 12)
        // Row i of the logits of prompt + generated[..<11] predicts token i + 1.
        let all = prompt + generated.dropLast()
        let npy = Self.dir.appendingPathComponent("greedy.npy").path
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", Self.weights, "--tokens", all.map(String.init).joined(separator: ","),
                                        "--logits", npy], environment: Self.environment), "run")
        let logits = try Npy.read(path: npy)
        XCTAssertEqual(logits.shape, [all.count, 256])
        for (k, token) in generated.enumerated() {
            let row = Array(logits.data[((prompt.count - 1 + k) * 256)..<((prompt.count + k) * 256)])
            let argmax = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
            XCTAssertEqual(token, argmax, "generated token \(k)")
        }
    }

    func testDecodeWithKVCacheEqualsRecomputingThePrefix() throws {
        let loaded = try LoadedSpec(path: TFC.root.appendingPathComponent("specs/tiny.tfs").path)
        let file = try loaded.graph.loadWeights(Self.weights)
        let tokens: [Int32] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]
        for backend in [BackendChoice.fused, .naive] {
            setenv("TFC_CACHE_DIR", Self.environment["TFC_CACHE_DIR"]!, 1)
            let model = try ModelRunner(graph: loaded.graph, weights: file, backend: backend, threads: 2)
            let full = model.forward(tokens)
            model.reset()
            var worst: Float = 0
            let first = model.forwardLast(Array(tokens[0..<5]))
            worst = max(worst, maxAbsDifference(first, Array(full.row(4))))
            for i in 5..<tokens.count {
                let step = model.forwardLast([tokens[i]])
                worst = max(worst, maxAbsDifference(step, Array(full.row(i))))
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(backend)")
            XCTAssertEqual(model.position, tokens.count)
        }
    }

    func testStopsAtTheEndTokenAndTheContext() throws {
        let greedy = ids(try generate(["--tokens", "1,2,3", "-n", "6"]).stdout)
        guard let k = greedy.indices.dropFirst().first(where: { !greedy[..<$0].contains(greedy[$0]) }) else {
            throw XCTSkip("greedy output repeats one token: \(greedy)")
        }
        let source = try String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)
        let endSpec = Self.dir.appendingPathComponent("end.tfs").path
        try source.replacingOccurrences(of: "context = 128", with: "context = 128\n    end_token = \(greedy[k])")
            .write(toFile: endSpec, atomically: true, encoding: .utf8)
        var r = try generate(["--tokens", "1,2,3", "-n", "20"], spec: endSpec)
        XCTAssertSucceeded(r, "generate with end_token")
        XCTAssertEqual(ids(r.stdout), Array(greedy[...k]), "stops at the end token, which is printed")
        XCTAssertTrue(r.stderr.hasPrefix("end token \(greedy[k]); prefill 3 tokens"), r.stderr)

        let shortSpec = Self.dir.appendingPathComponent("short.tfs").path
        try source.replacingOccurrences(of: "context = 128", with: "context = 8").write(toFile: shortSpec, atomically: true, encoding: .utf8)
        r = try generate(["--tokens", "1,2,3", "-n", "20"], spec: shortSpec)
        XCTAssertSucceeded(r, "generate with context 8")
        XCTAssertEqual(ids(r.stdout).count, 6, "3 prompt tokens + 5 decoded fill the context; the last sampled token is not fed back")
        XCTAssertTrue(r.stderr.hasPrefix("reached the context length (8 tokens); prefill 3 tokens"), r.stderr)

        r = try generate(["--tokens", "1,2,3", "-n", "5"])
        XCTAssertTrue(r.stderr.hasPrefix("generated 5 tokens; "), r.stderr)
        r = try generate(["--tokens", Array(repeating: "1", count: 129).joined(separator: ","), "-n", "5"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("129 tokens exceed the model's context of 128"), r.stderr)
    }
}
