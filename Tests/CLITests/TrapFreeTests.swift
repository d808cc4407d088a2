import Foundation
import XCTest

/// Inputs that used to trap, overflow the stack, exhaust memory or hang: through the `tfc` binary,
/// each is now an error at the spec text (or the option) that caused it, with exit status 1 and
/// no signal — or, where the input is legitimate, it just works.
final class TrapFreeTests: XCTestCase {
    static let tiny = TFC.root.appendingPathComponent("specs/tiny.tfs")

    /// tiny.tfs with `old` replaced by `new`, written to a fresh directory.
    func tinySpec(_ old: String, _ new: String, in dir: URL, name: String = "m.tfs") throws -> String {
        let text = try String(contentsOf: Self.tiny, encoding: .utf8)
        XCTAssertTrue(text.contains(old), old)
        let path = dir.appendingPathComponent(name).path
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Asserts exit status 1 (not a signal, not 64) and that stderr starts with `prefix`, on one
    /// headline (a diagnostic may add its source line and caret below it).
    func assertRefused(_ r: TFCResult, _ prefix: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix(prefix), "\(what): expected \(prefix)\ngot: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", what, file: file, line: line)
    }

    func testSpecsThatUsedToTrap() throws {
        let dir = try TFC.temporaryDirectory(self)
        let max = Int(Int32.max)
        let minInt = "(-9223372036854775807-1)"
        let cases: [(old: String, new: String, command: String, expected: String)] = [
            ("hidden = 64", "hidden = 1099511627776", "check", ":4:14: error: 'hidden' must be at most \(max), got 1099511627776"),
            ("hidden = 64", "hidden = 2147483648", "check", ":4:14: error: 'hidden' must be at most \(max), got 2147483648"),
            ("hidden = 64", "hidden = 4294967296", "init", ":4:14: error: 'hidden' must be at most \(max), got 4294967296"),
            ("vocab = 256", "vocab = 1152921504606846976", "check", ":3:13: error: 'vocab' must be at most \(max), got 1152921504606846976"),
            ("context = 128", "context = 4611686018427387904", "check", ":7:15: error: 'context' must be at most \(max), got 4611686018427387904"),
            ("context = 128", "context = 1073741824", "check", ":7:15: error: at context 1073741824 the model needs 2.0 TiB of memory (weights 576.0 KiB, KV cache 1.0 TiB, activations 1.0 TiB); this machine has "),
            ("layers = 2", "layers = 10000000", "check", ":6:14: error: 'layers' must be at most 4096, got 10000000"),
            ("let ffn = 4 * hidden", "let ffn = 4000000000000 * hidden", "init", ":29:49: error: token count must be at most \(max), got 256000000000000"),
            // 2^30 × 64 = 2^36 elements in one tensor: refused before anything is allocated.
            ("let ffn = 4 * hidden", "let ffn = 1073741824", "init",
             ":29:15: error: parameter 'layers.0.mlp.key_param_tokens' [1073741824, 64] has 6.87e+10 elements, more than the limit of 17179869184 (64.0 GiB as float32) for one tensor"),
            ("let proj = hidden", "let proj = hidden + 0 * (\(minInt)/(-1))", "check", ":17:25: error: integer overflow in -9223372036854775808 / -1"),
            ("let proj = hidden", "let proj = hidden + 0 * -\(minInt)", "check", ":17:25: error: integer overflow in -(-9223372036854775808)"),
            ("let proj = hidden", "let proj = hidden" + String(repeating: " + 0", count: 10_000), "check", ":17:4019: error: expression is too deep"),
            ("return x2", "return x2" + String(repeating: " + x2", count: 10_000), "check", ":30:5015: error: expression is too deep"),
            ("let proj = hidden", "let proj = " + String(repeating: "(", count: 100_000) + "hidden" + String(repeating: ")", count: 100_000), "check",
             ":17:212: error: expression is nested too deeply (more than 200 levels)"),
        ]
        for (i, c) in cases.enumerated() {
            let path = try tinySpec(c.old, c.new, in: dir, name: "case\(i).tfs")
            var arguments = [c.command, path]
            if c.command == "init" { arguments += ["-o", dir.appendingPathComponent("case\(i).safetensors").path] }
            assertRefused(try TFC.run(arguments), path + c.expected, "case \(i): \(c.new.prefix(60))")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("case\(i).safetensors").path), "case \(i)")
        }
    }

    /// 2^40 parameters, every tensor within the per-tensor limit: `init` refuses before allocating.
    func testInitOfAHugeModelIsRefusedBeforeAllocating() throws {
        let dir = try TFC.temporaryDirectory(self)
        var text = try String(contentsOf: Self.tiny, encoding: .utf8)
        text = text.replacingOccurrences(of: "layers = 2", with: "layers = 32").replacingOccurrences(of: "let ffn = 4 * hidden", with: "let ffn = 268435456")
        let path = dir.appendingPathComponent("huge.tfs").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("huge.safetensors").path
        // 32 layers × (2 × 2^28 × 64 in mlp + 4 × 2 × 64 × 64 in attention) + 256 × 64 embedding.
        let parameters = 32 * (2 * 268_435_456 * 64 + 4 * 2 * 64 * 64) + 256 * 64
        assertRefused(try TFC.run(["init", path, "-o", out]),
                      "\(path):2:1: error: the model needs 4.0 TiB of weights (\(parameters) parameters as float32); this machine has ", "init")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// 10,000 statements written in reverse order used to overflow the stack while being ordered.
    func testLongReversedStatementChainChecks() throws {
        let dir = try TFC.temporaryDirectory(self)
        let n = 10_000
        let statements = (["y0 = layernorm(x)"] + (1..<n).map { "y\($0) = layernorm(y\($0 - 1))" }).reversed()
        let text = "model \"m\" {\n vocab = 16\n hidden = 16\n heads = 2\n layers = 1\n context = 8\n}\nblock(x) {\n"
            + statements.map { "  " + $0 + "\n" }.joined() + "  return y\(n - 1)\n}\n"
        let path = dir.appendingPathComponent("chain.tfs").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try TFC.run(["check", path])
        XCTAssertSucceeded(r, "check")
        XCTAssertTrue(r.stdout.contains("IR: \(n + 4) instructions"), r.stdout)
    }

    func testGrowAmountsThatOverflow() throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = dir.appendingPathComponent("m.tfs").path
        try FileManager.default.copyItem(atPath: Self.tiny.path, toPath: spec)
        let weights = dir.appendingPathComponent("m.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights]), "init")
        let cases: [(option: String, value: String, expected: String)] = [
            ("--tokens", "mlp=x1e300", "error: --tokens 'mlp=x1e300': site 'mlp' would have more than 2147483647 tokens, the limit of one dimension"),
            ("--tokens", "mlp=+9223372036854775807", "error: --tokens 'mlp=+9223372036854775807': site 'mlp' would have more than 2147483647 tokens, the limit of one dimension"),
            ("--tokens", "mlp=4294967296", "error: --tokens 'mlp=4294967296': site 'mlp' would have more than 2147483647 tokens, the limit of one dimension"),
            ("--layers", "+9223372036854775807", "error: --layers '+9223372036854775807': a model has at most 4096 layers"),
            ("--layers", "5000", "error: --layers '5000': a model has at most 4096 layers"),
        ]
        for c in cases {
            let r = try TFC.run(["grow", spec, "--weights", weights, "-o", dir.appendingPathComponent("g.tfs").path,
                                 "--out-weights", dir.appendingPathComponent("g.safetensors").path, c.option, c.value])
            assertRefused(r, c.expected, "\(c.option) \(c.value)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.tfs").path))
        }
    }

    /// More threads than OpenBLAS can use are clamped, with a note; the answer is unchanged.
    func testNaiveThreadsAreClamped() throws {
        let dir = try TFC.temporaryDirectory(self)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", Self.tiny.path, "-o", weights]), "init")
        let one = try TFC.run(["run", Self.tiny.path, "--weights", weights, "--tokens", "1,2,3", "--backend", "naive", "--threads", "1"])
        XCTAssertSucceeded(one, "run")
        let many = try TFC.run(["run", Self.tiny.path, "--weights", weights, "--tokens", "1,2,3", "--backend", "naive", "--threads", "1000"])
        XCTAssertSucceeded(many, "run --threads 1000")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertTrue(many.stderr.hasPrefix("note: 1000 threads requested; the naive backend (OpenBLAS) uses "), many.stderr)
        XCTAssertEqual(many.stderr.split(separator: "\n").count, 1, many.stderr)
        let used = Int(many.stderr.dropFirst("note: 1000 threads requested; the naive backend (OpenBLAS) uses ".count).prefix { $0.isNumber })
        XCTAssertNotNil(used)
        XCTAssertLessThanOrEqual(used ?? .max, cores)
        XCTAssertTrue(many.stdout.contains("(3 tokens, \(used ?? -1) threads)"), many.stdout)
        let topFive = { (r: TFCResult) in r.stdout.split(separator: "\n").filter { $0.contains("logit") } }
        XCTAssertEqual(topFive(many), topFive(one))
        XCTAssertEqual(topFive(one).count, 5)
    }

    /// A long context no longer costs memory up front: a 3-token prompt at context 2^20 gives the
    /// same logits as at context 128, on both backends (the weights do not depend on the context).
    func testShortPromptAtLongContext() throws {
        let dir = try TFC.temporaryDirectory(self)
        let long = try tinySpec("context = 128", "context = 1048576", in: dir)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", Self.tiny.path, "-o", weights]), "init")
        let topFive = { (r: TFCResult) in r.stdout.split(separator: "\n").filter { $0.contains("logit") } }
        for backend in ["naive", "fused"] {
            let short = try TFC.run(["run", Self.tiny.path, "--weights", weights, "--tokens", "5,6,7", "--backend", backend])
            let wide = try TFC.run(["run", long, "--weights", weights, "--tokens", "5,6,7", "--backend", backend])
            XCTAssertSucceeded(short, "\(backend) at 128")
            XCTAssertSucceeded(wide, "\(backend) at 2^20")
            XCTAssertEqual(topFive(wide), topFive(short), backend)
            XCTAssertEqual(topFive(short).count, 5)
        }
    }
}
