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

    /// Every vector target's code, runnable here or not: AVX-512 kernels are zmm code with
    /// k-masked tails, AVX2 kernels never touch a zmm register.
    func testEveryVectorTargetsEmittedCode() throws {
        for vector in VectorTarget.all {
            let m = try KernelModule(name: "emit_\(vector.name)", target: .portable(vector))
            XCTAssertEqual(m.vector, vector)
            let spec = PattentionKernelSpec(dIn: 40, site: PattentionSite(tokens: 37, dOut: 40), for: vector)
            _ = m.addPattention(spec)
            _ = m.addAttention(AttentionKernelSpec(heads: 2, headDim: 24, context: 40, for: vector))
            let ir = try m.llvmIR()
            XCTAssertTrue(ir.contains("<\(vector.lanes) x float>"), vector.name)
            XCTAssertTrue(ir.contains("llvm.fma.v\(vector.lanes)f32"), vector.name)
            let asm = try m.assembly()
            XCTAssertTrue(asm.contains("vfmadd"), vector.name)
            switch vector.isa {
            case .avx512:
                XCTAssertTrue(asm.contains("%zmm"), "512-bit registers")
                XCTAssertTrue(asm.contains("{%k"), "k-masked tails")
                XCTAssertEqual(spec.schedule.nr % 16, 0)
            case .avx2:
                XCTAssertTrue(asm.contains("%ymm"), "256-bit registers")
                XCTAssertFalse(asm.contains("%zmm"), "no 512-bit registers")
                XCTAssertFalse(asm.contains("{%k"), "no mask registers")
            }
        }
    }

    func testJITRefusesATargetThisCPUCannotRun() throws {
        let host = TargetHost(triple: TargetHost.host.triple, cpu: "haswell", features: "+avx,+avx2,+fma")
        XCTAssertEqual(try VectorTarget.resolve("avx2", on: host), .avx2)
        XCTAssertEqual(try VectorTarget.resolve("native", on: host), .avx2)
        XCTAssertThrowsError(try VectorTarget.resolve("avx512", on: host)) { error in
            XCTAssertEqual("\(error)", "codegen: --target-cpu avx512: this CPU (haswell) lacks avx512f, avx512bw, avx512dq, avx512vl, so it cannot run avx512 code")
        }
        XCTAssertThrowsError(try VectorTarget.resolve("sse9", on: host)) { error in
            XCTAssertEqual("\(error)", "codegen: --target-cpu: unknown target 'sse9'; use native, avx2, avx512")
        }
        let zen4 = TargetHost(triple: TargetHost.host.triple, cpu: "znver4",
                              features: "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512bf16")
        XCTAssertEqual(try VectorTarget.resolve("native", on: zen4), .avx512)
        XCTAssertEqual(zen4.vector, .avx512)
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
