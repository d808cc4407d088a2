import XCTest
@testable import TFCodegen

final class EmissionTests: XCTestCase {
    func testHostTargetAndEmittedText() throws {
        let host = TargetHost.host
        XCTAssertFalse(host.cpu.isEmpty)
        XCTAssertTrue(host.triple.hasPrefix("x86_64"), host.description)
        let m = try KernelModule(name: "emit")
        let spec = PattentionKernelSpec(dIn: 16, site: PattentionSite(tokens: 24, dOut: 16))
        let sym = m.addPattention(spec)
        XCTAssertEqual(m.addPattention(spec), sym, "one kernel per distinct spec")
        XCTAssertEqual(m.kernelNames, [sym])
        try m.verify()
        let raw = try m.llvmIR()
        XCTAssertTrue(raw.contains("define void @\(sym)(i8** %0, i64 %1, i64 %2)"), raw.prefix(400).description)
        try m.optimize()
        let ir = try m.llvmIR()
        XCTAssertTrue(ir.contains("<8 x float>"))
        XCTAssertTrue(ir.contains("llvm.fma.v8f32"))
        XCTAssertTrue(ir.contains("tfc_parallel_for"))
        let asm = try m.assembly()
        XCTAssertTrue(asm.contains("vfmadd"), "AVX2 FMA code expected on this host")
        XCTAssertTrue(asm.contains(sym))
        let obj = try m.objectFile()
        XCTAssertEqual(Array(obj.prefix(4)), [0x7f, 0x45, 0x4c, 0x46], "ELF object")
        // The module still JIT-compiles after emitting text and objects.
        let jit = try KernelJIT()
        try jit.add(m)
        _ = try jit.kernel(sym)
        XCTAssertThrowsError(try m.llvmIR(), "the JIT owns the module now")
        XCTAssertThrowsError(try jit.address(of: "no_such_symbol"))
    }

    func testDescriptionsAreStableAndDistinct() {
        let a = PattentionKernelSpec(dIn: 768, site: PattentionSite(tokens: 3072, dOut: 768, residual: true), layerNormEps: 1e-5)
        let b = PattentionKernelSpec(dIn: 768, site: PattentionSite(tokens: 3072, dOut: 768, residual: false), layerNormEps: 1e-5)
        XCTAssertEqual(a.symbol, PattentionKernelSpec(dIn: 768, site: PattentionSite(tokens: 3072, dOut: 768, residual: true), layerNormEps: 1e-5).symbol)
        XCTAssertNotEqual(a.symbol, b.symbol)
        XCTAssertTrue(a.description.contains("residual"), a.description)
        XCTAssertEqual(PattentionSite(tokens: 3072, dOut: 768).tau, Float(3072.0.squareRoot()))
        XCTAssertEqual(RotaryEmbedding(heads: 12, headDim: 64).rotaryDims, 16)
    }
}
