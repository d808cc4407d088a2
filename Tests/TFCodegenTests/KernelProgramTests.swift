import XCTest
@testable import TFCodegen

final class KernelProgramTests: XCTestCase {
    /// A program (mlp block with residual, then logits of the last row) equals the kernels
    /// called one by one.
    func testProgramMatchesIndividualCalls() throws {
        let d = 24, n = 40, vocab = 30, T = 7
        let mlp = PattentionKernelSpec(dIn: d, site: PattentionSite(tokens: n, dOut: d, residual: true), layerNormEps: 1e-5)
        let logits = GemmKernelSpec(k: d, n: vocab, layerNormEps: 1e-5)
        let m = try KernelModule(name: "program")
        let mlpSym = m.addPattention(mlp), logitsSym = m.addGemm(logits)
        // table: 0 x (in/out), 1 K, 2 V, 3 embed (packed), 4 logits [1, vocab]
        let prog = m.addProgram("tfc_test_program", calls: [
            KernelCall(mlpSym, args: [.init(0), .init(1), .init(2), .init(0)]),
            KernelCall(logitsSym, args: [.init(0, lastRowStride: d), .init(3), .init(4)], rows: .one, lastRowPosition: true),
        ])
        let jit = try KernelJIT()
        try jit.add(m)
        let program = CompiledKernel(name: prog, entry: try jit.kernel(prog))

        var rng = TestRandom(seed: 3)
        let x = rng.array(T * d), k = rng.array(n * d), v = rng.array(n * d), e = rng.array(vocab * d)
        let kp = mlp.keyLayout(0).packedTransposed(k), vp = mlp.valueLayout(0).packed(v), ep = logits.weightLayout.packedTransposed(e)
        let X1 = AlignedBuffer(x), L1 = AlignedBuffer(count: vocab)
        program([X1.raw, kp.raw, vp.raw, ep.raw, L1.raw], rows: T)

        let X2 = AlignedBuffer(x), L2 = AlignedBuffer(count: vocab)
        let mlpK = try jit.pattention(mlp), logitsK = try jit.gemm(logits)
        XCTAssertEqual(mlpK.name, mlpSym, "already compiled: reused")
        mlpK([X2.raw, kp.raw, vp.raw, X2.raw], rows: T)
        logitsK([X2.raw + (T - 1) * d * 4, ep.raw, L2.raw], rows: 1)
        XCTAssertEqual(X1.array, X2.array)
        XCTAssertEqual(L1.array, L2.array)
    }
}
