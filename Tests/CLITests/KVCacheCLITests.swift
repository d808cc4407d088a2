import Foundation
import XCTest
import TFWeights

/// `--kv f32|bf16` on run, generate, eval, bench model and compile: bad values and bf16 on the
/// naive backend are one-line errors (exit 1), checked before anything loads; a compiled
/// program with a bf16 cache computes and generates what the JIT's bf16 cache does.
final class KVCacheCLITests: XCTestCase {
    func testUnknownFormatOnEveryCommand() throws {
        let unknown = "error: --kv: unknown KV-cache format 'fp8'; use f32 or bf16"
        for command in modelRunningCommands("--kv", "fp8") + [benchModelCommand("--kv", "f32,fp8")] { try assertUsageError(command, unknown) }
        try assertUsageError(["compile", "specs/tiny.tfs", "--weights", "none.safetensors", "-o", "none", "--kv", "fp8"], unknown)
        try assertUsageError(["compile", "specs/tiny.tfs", "--emit", "plan", "--kv", "BF16"], "error: --kv: unknown KV-cache format 'BF16'; use f32 or bf16")
    }

    func testBadLists() throws {
        try assertUsageError(benchModelCommand("--kv", "bf16,bf16"),
                             "error: --kv: a format is listed twice in 'bf16,bf16'")
        try assertUsageError(benchModelCommand("--kv", "f32,,bf16"),
                             "error: --kv: empty format in 'f32,,bf16'; use a comma-separated list of f32, bf16 or all")
        try assertUsageError(benchModelCommand("--kv", ""),
                             "error: --kv: empty format in ''; use a comma-separated list of f32, bf16 or all")
    }

    /// The naive backend's cache is f32: bf16 is refused, never computed in f32.
    func testNaiveBackendRefusesBF16() throws {
        let message = "error: --kv bf16: the naive backend keeps its KV cache in f32 only; use --backend fused or --kv f32"
        for command in modelRunningCommands("--backend", "naive", "--kv", "bf16") { try assertUsageError(command, message) }
    }

    /// `--kv` builds a program, so it is refused with a stage; `--emit plan` shows the cache format.
    func testCompileStagesAndPlan() throws {
        try assertUsageError(["compile", "specs/tiny.tfs", "--emit", "ir", "--kv", "bf16"],
                             "error: --weights, -o, --target-cpu, --weights-format, --kv and --tokenizer build a program (--emit exe or shared), not --emit ir")
        let plan = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "plan", "--kv", "bf16", "--target-cpu", "avx2"])
        XCTAssertSucceeded(plan, "--emit plan --kv bf16")
        let attention = plan.stdout.split(separator: "\n").filter { $0.contains(" attention heads=") }
        XCTAssertFalse(attention.isEmpty, plan.stdout)
        XCTAssertTrue(attention.allSatisfy { $0.hasSuffix(" kv bf16") }, plan.stdout)
    }

    /// One fused row per KV format; the f32-cache row keeps its name.
    func testBenchModelRowPerKVFormat() throws {
        let r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "4", "--repeat", "1", "--warmup", "0",
                             "--threads", "2", "--weights-format", "int8", "--kv", "f32,bf16"])
        XCTAssertSucceeded(r, "bench model --kv f32,bf16")
        let rows = r.stdout.split(separator: "\n").map(String.init).filter { $0.contains("% cpu") || $0.contains("% mem") }
        let bf16 = rows.filter { $0.contains("fused ") && $0.contains(" int8 kv-bf16 ") }
        let f32 = rows.filter { $0.contains("fused ") && $0.contains(" int8 ") && !$0.contains("kv-") }
        XCTAssertEqual(bf16.count, 2, "a prefill and a decode row with the bf16 cache:\n" + r.stdout)
        XCTAssertEqual(f32.count, 2, "a prefill and a decode row with the f32 cache:\n" + r.stdout)
        XCTAssertFalse(r.stdout.contains("failed"), r.stdout)
    }

    /// `tfc run --kv bf16` changes the logits (the prompt's own attention reads the rounded cache)
    /// and `tfc compile --kv bf16` builds variants that compute the JIT's bf16-cache logits and
    /// generate what `tfc generate --kv bf16` generates (decoding from the bf16 cache).
    func testCompiledProgramWithBF16CacheMatchesTheJIT() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let exe = dir.appendingPathComponent("tiny-kv")
        let c = try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", exe.path, "--kv", "bf16"])
        XCTAssertSucceeded(c, "compile --kv bf16")
        XCTAssertTrue(c.stdout.contains("executable tiny with a bf16 KV cache for x86-64-v4 ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("] and x86-64-v3 ["), c.stdout)

        let avx512 = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(CompileWeightFormatTests.cpuFlags.contains)
        var cases: [(pretend: String?, label: String, jit: String)] = [("avx512f", "x86-64-v3", "avx2")]
        if avx512 { cases.insert((nil, "x86-64-v4", "avx512"), at: 0) }
        for (pretend, label, jit) in cases {
            let environment = pretend.map { ["TFC_CPU_PRETEND_LACKING": $0] }
            let info = try TFC.runProcess(exe, ["--info"], environment: environment)
            XCTAssertTrue(info.stdout.contains(" for \(label) (sse3,"), "\(pretend ?? "-"): \(info.stdout)")
            XCTAssertTrue(info.stdout.hasSuffix("\nKV cache bf16\n"), "--info names the KV-cache format: \(info.stdout)")
            let out = dir.appendingPathComponent("aot-\(label).npy").path
            XCTAssertSucceeded(try TFC.runProcess(exe, ["--tokens", CompiledTiny.prompt, "--logits", out], environment: environment), label)
            let aot = try Npy.read(path: out)
            func jitLogits(_ kv: String) throws -> Npy.Array {
                let path = dir.appendingPathComponent("jit-\(label)-\(kv).npy").path
                XCTAssertSucceeded(try tiny.tfc(["run", CompiledTiny.spec, "--weights", tiny.weights, "--kv", kv, "--target-cpu", jit,
                                                 "--tokens", CompiledTiny.prompt, "--logits", path]), "jit \(jit) --kv \(kv)")
                return try Npy.read(path: path)
            }
            let want = try jitLogits("bf16"), f32 = try jitLogits("f32")
            XCTAssertEqual(aot.shape, want.shape)
            let scale = want.data.map(abs).max()!
            XCTAssertLessThanOrEqual(maxAbsDifference(aot.data, want.data) / scale, 1e-5, "\(label) against the JIT on \(jit)")
            XCTAssertGreaterThan(maxAbsDifference(f32.data, want.data) / scale, 1e-4, "the bf16 cache changes the logits measurably on \(jit)")

            let args = ["--tokens", "1,2,3", "-n", "24"]
            let generated = try TFC.runProcess(exe, args, environment: environment)
            XCTAssertSucceeded(generated, "compiled tiny \(args) on \(label)")
            let jitGenerated = try tiny.tfc(["generate", CompiledTiny.spec, "--weights", tiny.weights, "--kv", "bf16", "--target-cpu", jit] + args)
            XCTAssertSucceeded(jitGenerated, "tfc generate --kv bf16 \(args)")
            XCTAssertEqual(generated.stdout, jitGenerated.stdout, "\(label) vs the JIT on \(jit)")
            XCTAssertEqual(generated.stdout.split(separator: ",").count, 24, generated.stdout)

            // The cache format changes the arena, not the weights: the f32-cache build's weights
            // file is byte for byte this one, and this program takes it.
            let f32Weights = tiny.dir.appendingPathComponent("tiny.weights")
            XCTAssertEqual(try Data(contentsOf: f32Weights), try Data(contentsOf: dir.appendingPathComponent("tiny-kv.weights")))
            let other = dir.appendingPathComponent("aot-\(label)-f32-build-weights.npy").path
            XCTAssertSucceeded(try TFC.runProcess(exe, ["--tokens", CompiledTiny.prompt, "--logits", other, "--weights", f32Weights.path],
                                                  environment: environment), "\(label) with the f32-cache build's weights file")
            XCTAssertEqual(try Npy.read(path: other).data, aot.data, "\(label): the same weights give the same logits")
        }
    }
}
