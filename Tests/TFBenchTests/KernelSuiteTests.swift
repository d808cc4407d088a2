import XCTest
import TFIR
@testable import TFBench

final class KernelSuiteTests: XCTestCase {
    func testTinySuiteCoversEveryKernelClassAtPrefillAndDecode() throws {
        let graph = try tinyGraph()
        let cases = try KernelSuite.cases(for: graph, seq: 16, contexts: [32, 128])
        for kernelClass in KernelClass.allCases {
            let phases = Set(cases.filter { $0.kernelClass == kernelClass }.map(\.phase))
            // The bare score GEMM is a compute-throughput comparison: prefill only.
            XCTAssertEqual(phases, kernelClass == .gemm ? [.prefill] : [.prefill, .decode], "\(kernelClass)")
        }
        XCTAssertEqual(cases.filter { $0.kernelClass == .gemm }.map(\.name), ["gemm X·Kᵀ query,key,value,proj", "gemm X·Kᵀ mlp"])
        XCTAssertEqual(Set(cases.map(\.key)).count, cases.count, "keys identify cases")
        // tiny: q/k/v/proj share 64 tokens 64→64; the mlp has 256 tokens.
        let pattention = cases.filter { $0.kernelClass == .pattention && $0.phase == .prefill }
        XCTAssertEqual(pattention.map(\.name), ["pattention query,key,value,proj", "pattention mlp"])
        XCTAssertEqual(cases.filter { $0.kernelClass == .attention }.map(\.name),
                       ["attention L=32", "attention L=32", "attention L=128", "attention L=128"])
    }

    func testWorkAndBoundsFollowTheShapes() throws {
        let graph = try tinyGraph()
        let cases = try KernelSuite.cases(for: graph, seq: 16, contexts: [128])
        func find(_ name: String, _ phase: Phase) -> KernelCase { cases.first { $0.name == name && $0.phase == phase }! }

        let mlp = find("pattention mlp", .prefill)
        XCTAssertEqual(mlp.rows, 16)
        XCTAssertEqual(mlp.flops, 16 * 2 * 256 * (64 + 64))
        XCTAssertEqual(mlp.bytes, 4 * Double(16 * 64 + 2 * 256 * 64 + 16 * 64))
        XCTAssertEqual(mlp.bound, .compute)
        XCTAssertEqual(find("pattention mlp", .decode).bound, .bandwidth)
        XCTAssertEqual(mlp.weights.map(\.name), ["layers.0.mlp.key_param_tokens", "layers.0.mlp.value_param_tokens"])

        // Decode attention at L: the extra FLOPs per cached position Graph.flopsPerToken counts, for one layer.
        let decode = find("attention L=128", .decode)
        XCTAssertEqual(decode.rows, 1)
        XCTAssertEqual(decode.position, 127)
        let perLayer = (graph.flopsPerToken(atPosition: 127) - graph.flopsPerToken(atPosition: -1)) / Double(graph.config.layers)
        XCTAssertEqual(decode.flops!, perLayer, accuracy: 1e-6)
        // Causal prefill of L tokens: L(L+1)/2 query-key pairs.
        let prefill = find("attention L=128", .prefill)
        XCTAssertEqual(prefill.flops, 4 * 64 * 128 * 129 / 2)

        let qkv = cases.first { $0.kernelClass == .fusedQKV && $0.phase == .prefill }!
        guard case .fusedPattention(let f) = qkv.op else { return XCTFail("fused q/k/v is a fused_pattention") }
        XCTAssertEqual(f.sites.map(\.site), ["attention.query", "attention.key", "attention.value"])
        XCTAssertNotNil(f.prologue)
        XCTAssertEqual(f.rotary.map { $0 != nil }, [true, true, false])
        XCTAssertEqual(qkv.outputWidth, 192)
        XCTAssertEqual(qkv.flops, 16 * 3 * 2 * 64 * 128)

        let logits = find("logits", .decode)
        XCTAssertEqual(logits.outputWidth, 256)
        XCTAssertEqual(logits.flops, 2 * 64 * 256)
        XCTAssertNil(find("layernorm", .prefill).flops)
        XCTAssertEqual(find("layernorm", .prefill).bound, .bandwidth)
    }

    func testWorkloadAllocatesWhatTheCaseDescribes() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 8, contexts: [32])
        let attention = cases.first { $0.kernelClass == .attention && $0.phase == .decode }!
        let w = KernelWorkload(attention)
        XCTAssertEqual(w.inputs.map(\.count), [64, 64, 64])
        XCTAssertEqual(w.output.count, 64)
        XCTAssertEqual(w.keyCache?.count, 32 * 64)
        let mlp = KernelWorkload(cases.first { $0.name == "pattention mlp" }!)
        XCTAssertEqual(mlp.weight("layers.0.mlp.key_param_tokens").count, 256 * 64)
        XCTAssertEqual(mlp.inputs[0].count, 8 * 64)
        XCTAssertNil(mlp.keyCache)
    }
}
