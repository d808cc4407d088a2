import Foundation
import XCTest

/// `tfc compile --emit KIND` prints each stage of the pipeline.
final class EmitTests: XCTestCase {
    func emit(_ kind: String, _ spec: String = "specs/tiny.tfs") throws -> String {
        let cache = try TFC.temporaryDirectory(self).path
        let r = try TFC.run(["compile", spec, "--emit", kind], environment: ["TFC_CACHE_DIR": cache])
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

        let llvm = try emit("llvm")
        XCTAssertTrue(llvm.contains("define void @tfc_model_forward("), String(llvm.prefix(500)))
        XCTAssertTrue(llvm.contains("<8 x float>"))
        XCTAssertTrue(llvm.contains("@llvm.fma.v8f32"))

        let asm = try emit("asm")
        XCTAssertTrue(asm.contains("vfmadd"), "FMA instructions in the generated code")
        XCTAssertTrue(asm.contains("ymm"), "256-bit vectors")
    }

    /// `--schedule` overrides every GEMM's schedule: the plan shows it, the logits do not change.
    func testScheduleOverride() throws {
        let dir = try TFC.temporaryDirectory(self)
        let env = ["TFC_CACHE_DIR": dir.path]
        var r = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "plan", "--schedule", "mr=4 nr=24 kc=32"], environment: env)
        XCTAssertSucceeded(r, "plan")
        XCTAssertTrue(r.stdout.contains("scores[mr=4 nr=24 kc=32 "), r.stdout)
        XCTAssertFalse(r.stdout.contains("mr=6"), r.stdout)

        let weights = dir.appendingPathComponent("w.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", "specs/tiny.tfs", "-o", weights]), "init")
        let a = dir.appendingPathComponent("a.npy").path, b = dir.appendingPathComponent("b.npy").path
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--logits", a], environment: env), "run")
        XCTAssertSucceeded(try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1,2,3,4,5", "--logits", b,
                                        "--schedule", "mr=4 nr=24 kc=32 rowBlock=8"], environment: env), "run with a schedule")
        let compare = try TFC.python(["-c", "import numpy as np; print(float(np.abs(np.load('\(a)') - np.load('\(b)')).max()))"])
        XCTAssertLessThanOrEqual(try XCTUnwrap(Double(compare.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), 1e-5)

        r = try TFC.run(["run", "specs/tiny.tfs", "--weights", weights, "--tokens", "1", "--schedule", "mr=9 nr=24"], environment: env)
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
