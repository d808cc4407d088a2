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

    func testUnknownEmitKind() throws {
        let r = try TFC.run(["compile", "specs/tiny.tfs", "--emit", "bitcode"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("bitcode"), r.stderr)
    }
}
