import Foundation
import XCTest
import TFWeights

/// `tfc compile SPEC --weights W -o NAME`: a standalone executable that computes what the JIT
/// computes, generates what `tfc generate` generates, and needs only the C library.
final class CompileExecutableTests: XCTestCase {
    func testLogitsMatchTfcRun() throws {
        let tiny = try CompiledTiny.get()
        let out = tiny.dir.appendingPathComponent("exe-logits.npy").path
        let r = try tiny.run(["--tokens", CompiledTiny.prompt, "--logits", out])
        XCTAssertSucceeded(r, "compiled tiny --logits")
        XCTAssertTrue(r.stdout.contains("logits [12, 256] written to \(out)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("tokens/s"), r.stdout)
        let exe = try Npy.read(path: out)
        let run = try tiny.runLogits(CompiledTiny.prompt)
        XCTAssertEqual(exe.shape, [12, 256])
        XCTAssertEqual(exe.shape, run.shape)
        XCTAssertLessThanOrEqual(maxAbsDifference(exe.data, run.data), 1e-5)

        // The same top-5 lines as tfc run prints.
        let top = try tiny.tfc(["run", CompiledTiny.spec, "--weights", tiny.weights, "--tokens", CompiledTiny.prompt])
        let lines = { (s: String) in s.split(separator: "\n").filter { $0.contains(". token ") } }
        XCTAssertEqual(lines(r.stdout), lines(top.stdout))
        XCTAssertEqual(lines(r.stdout).count, 5)
    }

    func testGenerationMatchesTfcGenerate() throws {
        let tiny = try CompiledTiny.get()
        for sampling in [[], ["--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--seed", "11"]] {
            let args = ["--tokens", "1,2,3", "-n", "24"] + sampling
            let exe = try tiny.run(args)
            XCTAssertSucceeded(exe, "compiled tiny \(args)")
            let jit = try tiny.tfc(["generate", CompiledTiny.spec, "--weights", tiny.weights] + args)
            XCTAssertSucceeded(jit, "tfc generate \(args)")
            XCTAssertEqual(exe.stdout, jit.stdout, "\(args)")
            XCTAssertEqual(exe.stdout.split(separator: ",").count, 24, exe.stdout)
            XCTAssertTrue(exe.stderr.hasPrefix("generated 24 tokens; prefill 3 tokens at "), exe.stderr)
            XCTAssertTrue(exe.stderr.contains("time to first token"), exe.stderr)
            XCTAssertTrue(exe.stderr.contains("decode "), exe.stderr)
        }
    }

    func testStopsAtTheEndTokenAndTheContextLikeTfcGenerate() throws {
        let tiny = try CompiledTiny.get()
        // Sampling (seeded, so both sides draw the same), with an end token the continuation of
        // 1,2,3 reaches within the context.
        let sampling = ["--temperature", "1", "--seed", "3"]
        let sampled = try tiny.tfc(["generate", CompiledTiny.spec, "--weights", tiny.weights, "--tokens", "1,2,3", "-n", "6"] + sampling)
        let ids = sampled.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map { Int($0)! }
        guard let end = ids.dropFirst().first(where: { $0 != ids[0] }) else { throw XCTSkip("sampled output is constant: \(ids)") }
        let source = try String(contentsOf: TFC.root.appendingPathComponent(CompiledTiny.spec), encoding: .utf8)
            .replacingOccurrences(of: "context = 128", with: "context = 8\n    end_token = \(end)")
        let spec = tiny.dir.appendingPathComponent("stop.tfs").path
        try source.write(toFile: spec, atomically: true, encoding: .utf8)
        let exe = tiny.dir.appendingPathComponent("stop").path
        XCTAssertSucceeded(try tiny.tfc(["compile", spec, "--weights", tiny.weights, "-o", exe]), "compile stop.tfs")
        for prompt in ["1,2,3", "9,8", "200"] {
            let args = ["--tokens", prompt, "-n", "20"] + sampling
            let a = try TFC.runProcess(URL(fileURLWithPath: exe), args)
            let b = try tiny.tfc(["generate", spec, "--weights", tiny.weights] + args)
            XCTAssertSucceeded(a, "stop \(args)")
            XCTAssertEqual(a.stdout, b.stdout, "\(args)")
            let reason = { (s: String) in s.split(separator: ";").first.map(String.init) ?? s }
            XCTAssertEqual(reason(a.stderr), reason(b.stderr), "\(args)")
            if prompt == "1,2,3" { XCTAssertEqual(reason(a.stderr), "end token \(end)") }
            XCTAssertTrue(a.stderr.hasPrefix("end token") || a.stderr.hasPrefix("reached the context length (8 tokens)"), a.stderr)
        }
    }

    func testNeedsOnlyTheCLibrary() throws {
        let tiny = try CompiledTiny.get()
        guard let ldd = try runTool("/usr/bin/ldd", [tiny.executable.path]) else { throw XCTSkip("no ldd") }
        XCTAssertEqual(ldd.status, 0, ldd.stderr)
        for library in ["swift", "LLVM", "openblas", "Foundation"] {
            XCTAssertFalse(ldd.stdout.lowercased().contains(library.lowercased()), "links \(library):\n\(ldd.stdout)")
        }
        XCTAssertTrue(ldd.stdout.contains("libc.so"), ldd.stdout)
        // Runs from anywhere: the weights are found next to the executable.
        let r = try tiny.run(["--tokens", "1,2,3", "-n", "4"], cwd: URL(fileURLWithPath: "/"))
        XCTAssertSucceeded(r, "compiled tiny from /")
        let info = try tiny.run(["--info"])
        XCTAssertTrue(info.stdout.contains("model tiny: vocab 256, hidden 64, context 128"), info.stdout)
        XCTAssertTrue(info.stdout.contains("spec hash "), info.stdout)
        XCTAssertTrue(info.stdout.contains("\nweights tiny.weights (f32)\nKV cache f32\n"), "the weights file, its format and the KV cache's: \(info.stdout)")
    }

    func testRefusesACPUWithoutTheFeaturesItWasBuiltFor() throws {
        let tiny = try CompiledTiny.get()
        // The host build requires what the host has (avx2 and fma on any machine the kernels run well on).
        let info = try tiny.run(["--info"]).stdout
        guard info.contains("avx2") else { throw XCTSkip("host without avx2: \(info)") }
        let r = try tiny.run(["--tokens", "1"], environment: ["TFC_CPU_PRETEND_LACKING": "avx2"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("tiny: error: this program was built for "), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("but this CPU lacks avx2\n"), r.stderr)
        XCTAssertEqual(r.stdout, "")

        // --target-cpu x86-64-v4: AVX-512. Runs only where the CPU has it.
        let v4 = tiny.dir.appendingPathComponent("tiny-v4").path
        let c = try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", v4, "--target-cpu", "x86-64-v4"])
        XCTAssertSucceeded(c, "compile --target-cpu x86-64-v4")
        XCTAssertTrue(c.stdout.contains("for x86-64-v4 ["), c.stdout)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let run = try TFC.runProcess(URL(fileURLWithPath: v4), ["--tokens", "1,2,3", "-n", "4"])
        if cpuinfo.contains(" avx512f") {
            XCTAssertSucceeded(run, "x86-64-v4 build on an AVX-512 CPU")
        } else {
            XCTAssertEqual(run.status, 1)
            XCTAssertTrue(run.stderr.hasPrefix("tiny-v4: error: this program was built for x86-64-v4 (sse3, ssse3, "), run.stderr)
            XCTAssertTrue(run.stderr.contains("avx512f, avx512dq, avx512cd, avx512bw, avx512vl) but this CPU lacks avx512f"), run.stderr)
        }
    }

    func testArgumentErrors() throws {
        let tiny = try CompiledTiny.get()
        let cases: [([String], String)] = [
            ([], "tiny: error: --tokens is required"),
            (["--tokens", ""], "tiny: error: --tokens: the token list is empty"),
            (["--tokens", "1,x"], "tiny: error: --tokens: 'x' (item 2) is not an integer token id"),
            (["--tokens", "1,256"], "tiny: error: --tokens: token id 256 (item 2) is outside the vocabulary 0..<256"),
            (["--tokens", Array(repeating: "1", count: 129).joined(separator: ",")], "tiny: error: --tokens: 129 tokens exceed the model's context of 128"),
            (["--tokens", "1", "-n", "0"], "tiny: error: -n must be at least 1, got 0"),
            (["--tokens", "1", "--top-p", "0"], "tiny: error: --top-p must be in (0, 1], got 0"),
            (["--tokens", "1", "--threads", "0"], "tiny: error: --threads must be at least 1, got 0"),
            (["--tokens", "1", "--frobnicate"], "tiny: error: unknown option '--frobnicate'"),
            (["--tokens"], "tiny: error: --tokens needs a value"),
        ]
        for (args, message) in cases {
            let r = try tiny.run(args)
            XCTAssertEqual(r.status, 1, "\(args)")
            XCTAssertTrue(r.stderr.hasPrefix(message), "\(args): \(r.stderr)")
        }
        let help = try tiny.run(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("usage: tiny --tokens"), help.stdout)
    }
}
