import Foundation
import XCTest

/// `tfc compile --emit KIND` prints each stage of the pipeline.
final class EmitTests: XCTestCase {
    func emit(_ kind: String, _ spec: String = "specs/tiny.tfs", target: String? = nil) throws -> String {
        let cache = try TFC.temporaryDirectory(self).path
        let r = try TFC.run(["compile", spec, "--emit", kind] + (target.map { ["--target-cpu", $0] } ?? []), environment: ["TFC_CACHE_DIR": cache])
        XCTAssertSucceeded(r, "--emit \(kind)")
        return r.stdout
    }

    func testEveryStagePrints() throws {
        let ast = try emit("ast")
        XCTAssertTrue(ast.contains("model \"tiny\" {"), ast)
        XCTAssertTrue(ast.contains("x2 = x1 + pattention(h1, site: mlp, tokens: ffn)"), ast)

        let ir = try emit("ir")
        XCTAssertTrue(ir.hasPrefix("graph \"tiny\""), ir)
        XCTAssertTrue(ir.contains(" = pattention %"), ir)
        XCTAssertTrue(ir.contains(" = rotary %"), ir)

        let fused = try emit("fused-ir")
        XCTAssertFalse(fused.contains(" = pattention %"), fused)
        XCTAssertTrue(fused.contains("prologue=layernorm"), fused)
        XCTAssertTrue(fused.contains("epilogue=residual_add"), fused)
        XCTAssertTrue(fused.contains("rotary(heads=4"), fused)

        let plan = try emit("plan")
        XCTAssertTrue(plan.contains("memory plan: 4 activation buffers"), plan)
        XCTAssertTrue(plan.contains("(in place)"), plan)
        XCTAssertTrue(plan.contains("scores[mr="), plan)
        // The program layout: tiny's embedding (256 x 64 floats) raw at the start of the weights block.
        XCTAssertTrue(plan.contains("\nlayout: weights "), plan)
        XCTAssertTrue(plan.contains("\n  weight @0 65536 bytes raw f32 - embed.weight\n"), plan)

        let llvm = try emit("llvm", target: "avx2")
        XCTAssertTrue(llvm.contains("define void @tfc_model_forward("), String(llvm.prefix(500)))
        XCTAssertTrue(llvm.contains("<8 x float>"))
        XCTAssertTrue(llvm.contains("@llvm.fma.v8f32"))
        XCTAssertFalse(llvm.contains("<16 x float>"))

        let asm = try emit("asm", target: "avx2")
        XCTAssertTrue(asm.contains("vfmadd"), "FMA instructions in the generated code")
        XCTAssertTrue(asm.contains("ymm"), "256-bit vectors")
        XCTAssertFalse(asm.contains("zmm"), "no 512-bit registers in AVX2 code")
    }

    /// Each vector target's code and plan, whether or not this CPU could run it.
    func testEveryVectorTargetEmits() throws {
        let llvm = try emit("llvm", target: "avx512")
        XCTAssertTrue(llvm.contains("<16 x float>"))
        XCTAssertTrue(llvm.contains("@llvm.fma.v16f32"))
        XCTAssertTrue(llvm.contains("@llvm.masked.store.v16f32"), "masked tails")

        let asm = try emit("asm", target: "avx512")
        XCTAssertTrue(asm.contains("vfmadd231ps\t%zmm") || asm.contains("vfmadd231ps\t(%"), "512-bit FMAs")
        XCTAssertTrue(asm.contains("zmm"), "512-bit vectors")
        XCTAssertTrue(asm.contains("{%k"), "k-masked tail loads and stores")

        let avx2 = try emit("plan", target: "avx2")
        XCTAssertTrue(avx2.contains("target: x86-64-v3, vector avx2 (8 fp32 lanes, 16 registers)"), avx2)
        XCTAssertTrue(avx2.contains(": tile 6x16: issue 100%"), avx2)
        XCTAssertTrue(avx2.contains(", micro-kernel f32-fma"), "each GEMM names its micro-kernel: \(avx2)")
        let avx512 = try emit("plan", target: "avx512")
        XCTAssertTrue(avx512.contains("target: x86-64-v4, vector avx512 (16 fp32 lanes, 32 registers)"), avx512)
        XCTAssertTrue(avx512.contains(": tile 12x32: issue 100%"), avx512)
        XCTAssertTrue(avx512.contains("scores[mr=12 nr=32 "), avx512)
        XCTAssertTrue(avx512.contains(" keys/16"), "the KV cache's key blocks are 16 positions: \(avx512)")
    }

    /// `--schedule` overrides every GEMM's schedule: the plan shows it, the logits do not change.
    func testScheduleOverride() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.path]
        var r = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "plan", "--target-cpu", "avx2", "--schedule", "mr=4 nr=24 kc=32"], environment: env)
        XCTAssertSucceeded(r, "plan")
        XCTAssertTrue(r.stdout.contains("scores[mr=4 nr=24 kc=32 "), r.stdout)
        XCTAssertFalse(r.stdout.contains("scores[mr=6") || r.stdout.contains("values[mr=6"), r.stdout)

        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let a = dir.appendingPathComponent("a.npy").path, b = dir.appendingPathComponent("b.npy").path
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--logits", a], environment: env), "run")
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--logits", b,
                                        "--target-cpu", "avx2", "--schedule", "mr=4 nr=24 kc=32 rowBlock=8"], environment: env), "run with a schedule")
        let compare = try TFC.python(["-c", "import numpy as np; print(float(np.abs(np.load('\(a)') - np.load('\(b)')).max()))"])
        XCTAssertLessThanOrEqual(try XCTUnwrap(Double(compare.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), 1e-5)

        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1", "--target-cpu", "avx2", "--schedule", "mr=9 nr=24"], environment: env)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--schedule 'mr=9 nr=24': an 9x24 tile needs more than the 16 ymm registers"), r.stderr)
        r = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "plan", "--schedule", "kc=lots"], environment: env)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--schedule 'kc=lots': schedule item 'kc=lots' is not key=integer"), r.stderr)
    }

    func testUnknownEmitKind() throws {
        let r = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "bitcode"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bitcode"), r.stderr)
    }
}
