import Foundation
import XCTest
import TFWeights

/// `tfc compile --weights-format bf16`: every variant reads bf16 panels from one weights file
/// and computes what the naive backend computes on the bf16-rounded weights; a program refuses
/// a weights file of another format (or an older file version) in one line.
final class CompileWeightFormatTests: XCTestCase {
    /// The bf16 value nearest `x` (ties to the even one), found by comparing the two bf16
    /// neighbours in float64: the test's own rounding, not the packer's.
    static func nearestBF16(_ x: Float) -> Float {
        guard x.isFinite else { return x }
        let below = Float(bitPattern: x.bitPattern & 0xffff_0000)
        let above = Float(bitPattern: (x.bitPattern & 0xffff_0000) &+ 0x1_0000)
        let dBelow = abs(Double(x) - Double(below)), dAbove = abs(Double(x) - Double(above))
        if dBelow != dAbove { return dBelow < dAbove ? below : above }
        return (below.bitPattern >> 16) & 1 == 0 ? below : above
    }

    /// What the CPU can run, from /proc/cpuinfo (not from the code under test).
    static var cpuFlags: Set<String> {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }

    /// The logits of a compiled program run as a CPU lacking `pretendLacking` would run it,
    /// after checking that it picks the variant `label`.
    func variantLogits(_ exe: URL, pretendLacking: String?, label: String, format: String, in dir: URL) throws -> Npy.Array {
        let environment = pretendLacking.map { ["TFC_CPU_PRETEND_LACKING": $0] }
        let info = try TFC.runProcess(exe, ["--info"], environment: environment)
        XCTAssertTrue(info.stdout.contains(" for \(label) (sse3,"), "\(pretendLacking ?? "-"): \(info.stdout)")
        XCTAssertTrue(info.stdout.contains("\nweights \(exe.lastPathComponent).weights (\(format))\n"), "--info names the weights format: \(info.stdout)")
        let out = dir.appendingPathComponent("aot-\(label).npy").path
        XCTAssertSucceeded(try TFC.runProcess(exe, ["--tokens", CompiledTiny.prompt, "--logits", out], environment: environment), label)
        return try Npy.read(path: out)
    }

    func testBF16ProgramMatchesNaiveOnRoundedWeightsInEveryVariant() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path]
        // Untied: the embedding table (gathered, rows widened) and every packed tensor are bf16.
        let source = try String(contentsOf: TFC.root.appendingPathComponent(CompiledTiny.spec), encoding: .utf8)
            .replacingOccurrences(of: "tie_embeddings = true", with: "tie_embeddings = false")
        let spec = dir.appendingPathComponent("untied.tfs").path
        try source.write(toFile: spec, atomically: true, encoding: .utf8)
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", "5"]), "init")

        // The reference: the naive backend on the weights as the bf16 program stores them.
        let file = try WeightFile(path: weights)
        var rounded = SafetensorsWriter()
        var changed = 0
        for t in file.tensors {
            let values = t.values
            let stored = values.map(Self.nearestBF16)  // LayerNorm's ones and zeros are exact in bf16
            changed += zip(values, stored).filter { $0 != $1 }.count
            rounded.add(t.name, shape: t.shape, data: stored)
        }
        XCTAssertGreaterThan(changed, file.parameterCount / 2, "rounding changed most weights")
        let roundedPath = dir.appendingPathComponent("rounded.safetensors").path
        try rounded.write(to: roundedPath)
        let naivePath = dir.appendingPathComponent("naive.npy").path
        XCTAssertSucceeded(try TFC.run(["run", spec, "--weights", roundedPath, "--backend", "naive", "--tokens", CompiledTiny.prompt,
                                        "--logits", naivePath], environment: env), "naive")
        let naive = try Npy.read(path: naivePath)
        let scale = naive.data.map(abs).max()!
        // How far float32 weights are from the rounded ones, for scale: what bf16 storage costs.
        let f32Path = dir.appendingPathComponent("naive-f32.npy").path
        XCTAssertSucceeded(try TFC.run(["run", spec, "--weights", weights, "--backend", "naive", "--tokens", CompiledTiny.prompt,
                                        "--logits", f32Path], environment: env), "naive f32")
        let roundingEffect = maxAbsDifference(try Npy.read(path: f32Path).data, naive.data) / scale

        let exe = dir.appendingPathComponent("tiny-bf16")
        let c = try TFC.run(["compile", spec, "--weights", weights, "-o", exe.path, "--weights-format", "bf16"], environment: env)
        XCTAssertSucceeded(c, "compile --weights-format bf16")
        XCTAssertTrue(c.stdout.contains("executable tiny with bf16 weights for x86-64-v4+avx512bf16 ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("avx512vl avx512bf16] and x86-64-v4 ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("] and x86-64-v3 ["), c.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".weights") }, ["tiny-bf16.weights"])

        // Each variant this CPU runs, picked as a CPU lacking the features of the ones before it would.
        let flags = Self.cpuFlags
        let avx512 = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        // Tolerances about 3x the measured error (Zen 4, seed 5): the widening kernels compute in
        // float32 (measured 8e-7, the f32 program's own summation-order noise), so they check the
        // bf16 panels exactly; vdpbf16ps also rounds every GEMM's activations to bf16 (measured
        // 6.6e-3, as large as what rounding the weights does, 8e-3), so its bound catches a wrong
        // layout or kernel (errors of order 1), not a small rounding difference.
        var cases: [(pretend: String?, label: String, tolerance: Float)] = [("avx512f", "x86-64-v3", 3e-6)]
        if avx512 { cases.insert(("avx512bf16", "x86-64-v4", 3e-6), at: 0) }
        if avx512 && flags.contains("avx512_bf16") { cases.insert((nil, "x86-64-v4+avx512bf16", 2e-2), at: 0) }
        var measured: [String] = []
        for (pretend, label, tolerance) in cases {
            let logits = try variantLogits(exe, pretendLacking: pretend, label: label, format: "bf16", in: dir)
            XCTAssertEqual(logits.shape, naive.shape)
            let error = maxAbsDifference(logits.data, naive.data) / scale
            measured.append("\(label) \(error)")
            XCTAssertLessThanOrEqual(error, tolerance, label)
        }
        print("bf16 program vs naive on bf16-rounded weights (max |diff| / max |logit|): \(measured.joined(separator: ", ")); f32 vs rounded weights \(roundingEffect)")
        XCTAssertGreaterThan(roundingEffect, 1e-4, "the rounded weights differ measurably (so the comparison can tell them apart)")
    }

    /// A default int8 build: its variants share one weights file (32-column panels on every ISA)
    /// and each computes what the JIT's int8 kernels compute on its ISA (the same per-row
    /// quantisation and exact int32 sums, so only float summation order may differ).
    func testInt8ProgramMatchesTheJITInEveryVariant() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path]
        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", CompiledTiny.spec, "-o", weights, "--seed", "6"]), "init")
        let exe = dir.appendingPathComponent("tiny-int8")
        let c = try TFC.run(["compile", CompiledTiny.spec, "--weights", weights, "-o", exe.path, "--weights-format", "int8"], environment: env)
        XCTAssertSucceeded(c, "compile --weights-format int8")
        XCTAssertTrue(c.stdout.contains("with int8 weights for x86-64-v4+avx512vnni ["), c.stdout)
        XCTAssertTrue(c.stdout.contains("] and x86-64-v3 ["), c.stdout)
        let flags = Self.cpuFlags
        let avx512 = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        var cases: [(pretend: String?, label: String, jit: String)] = [("avx512f", "x86-64-v3", "avx2")]
        if avx512 { cases.insert(("avx512vnni", "x86-64-v4", "avx512"), at: 0) }
        if avx512 && flags.contains("avx512_vnni") { cases.insert((nil, "x86-64-v4+avx512vnni", "avx512"), at: 0) }
        for (pretend, label, jit) in cases {
            let aot = try variantLogits(exe, pretendLacking: pretend, label: label, format: "int8", in: dir)
            let reference = dir.appendingPathComponent("jit-\(label).npy").path
            XCTAssertSucceeded(try TFC.run(["run", CompiledTiny.spec, "--weights", weights, "--weights-format", "int8", "--target-cpu", jit,
                                            "--tokens", CompiledTiny.prompt, "--logits", reference], environment: env), "jit \(jit)")
            let want = try Npy.read(path: reference)
            XCTAssertEqual(aot.shape, want.shape)
            let scale = want.data.map(abs).max()!
            XCTAssertLessThanOrEqual(maxAbsDifference(aot.data, want.data) / scale, 1e-5, "\(label) against the JIT on \(jit)")
        }
    }

    func testAProgramRefusesWeightsOfAnotherFormatOrAnOlderVersion() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let bf16 = dir.appendingPathComponent("tiny")
        XCTAssertSucceeded(try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", bf16.path, "--weights-format", "bf16"]),
                           "compile --weights-format bf16")
        let f32Weights = tiny.dir.appendingPathComponent("tiny.weights").path
        let bf16Weights = dir.appendingPathComponent("tiny.weights").path
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: bf16Weights)).count, try Data(contentsOf: URL(fileURLWithPath: f32Weights)).count)
        XCTAssertSucceeded(try TFC.runProcess(bf16, ["--tokens", "1,2", "-n", "2"]), "the bf16 program with its own weights")

        var r = try tiny.run(["--tokens", "1,2", "--weights", bf16Weights])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "tiny: error: \(bf16Weights): holds bf16 weights; this program was compiled for f32 (tfc compile --weights-format f32): give the weights file written with it, or recompile\n")
        XCTAssertEqual(r.stdout, "")
        r = try TFC.runProcess(bf16, ["--tokens", "1,2", "--weights", f32Weights])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "tiny: error: \(f32Weights): holds f32 weights; this program was compiled for bf16 (tfc compile --weights-format bf16): give the weights file written with it, or recompile\n")

        // int8 for one target: the file says int8 (header byte 168).
        let int8 = dir.appendingPathComponent("tiny8")
        XCTAssertSucceeded(try tiny.tfc(["compile", CompiledTiny.spec, "--weights", tiny.weights, "-o", int8.path, "--weights-format", "int8",
                                         "--target-cpu", "avx2"]), "compile --weights-format int8 --target-cpu avx2")
        XCTAssertSucceeded(try TFC.runProcess(int8, ["--tokens", "1,2", "-n", "2"]), "the int8 program with its own weights")
        let int8Weights = dir.appendingPathComponent("tiny8.weights").path
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: int8Weights))[168], 2)
        r = try tiny.run(["--tokens", "1,2", "--weights", int8Weights])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "tiny: error: \(int8Weights): holds int8 weights; this program was compiled for f32 (tfc compile --weights-format f32): give the weights file written with it, or recompile\n")

        // A file of an earlier version (3: int8 entries with fp32 group scales) is refused by its version.
        var old = try Data(contentsOf: URL(fileURLWithPath: bf16Weights))
        XCTAssertEqual(old[8], 4, "weights file version")
        old[8] = 3
        let oldPath = dir.appendingPathComponent("old.weights").path
        try old.write(to: URL(fileURLWithPath: oldPath))
        r = try TFC.runProcess(bf16, ["--tokens", "1", "--weights", oldPath])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "tiny: error: \(oldPath): weights file format version 3, this program reads version 4: re-run tfc compile\n")
    }

    func testBadWeightsFormatIsOneLine() throws {
        let tiny = try CompiledTiny.get()
        let dir = try TFC.temporaryDirectory(self)
        let out = dir.appendingPathComponent("x").path
        let cases: [([String], String)] = [
            (["--weights", tiny.weights, "-o", out, "--weights-format", "fp16"], "error: --weights-format: unknown format 'fp16'; use f32, bf16, int8\n"),
            (["--emit", "plan", "--weights-format", "BF16"], "error: --weights-format: unknown format 'BF16'; use f32, bf16, int8\n"),
            (["--emit", "ir", "--weights-format", "bf16"],
             "error: --weights, -o, --target-cpu, --weights-format, --kv and --tokenizer build a program (--emit exe or shared), not --emit ir\n"),
        ]
        for (args, message) in cases {
            let r = try tiny.tfc(["compile", CompiledTiny.spec] + args)
            XCTAssertEqual(r.status, 1, "\(args)")
            XCTAssertEqual(r.stderr, message, "\(args)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "nothing written")
        // --emit plan shows the kernel the format selects for the target.
        let plan = try tiny.tfc(["compile", CompiledTiny.spec, "--emit", "plan", "--weights-format", "bf16", "--target-cpu", "avx2"])
        XCTAssertSucceeded(plan, "--emit plan --weights-format bf16")
        XCTAssertTrue(plan.stdout.contains("micro-kernel bf16-widen-fma"), plan.stdout)
    }
}
