import XCTest
@testable import TFBench

final class KernelBenchTests: XCTestCase {
    func testNaiveOnlyLeavesFusedEmpty() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 4, contexts: [16])
        let results = KernelBench(repeats: 2, warmup: 0, flusher: nil).run(cases, fused: nil, progress: ProgressLine(enabled: false))
        XCTAssertEqual(results.count, cases.count)
        for r in results {
            XCTAssertEqual(r.naive.count, 2)
            XCTAssertNil(r.fused)
            XCTAssertNil(r.speedup)
            XCTAssertNil(r.difference)
            XCTAssertNotNil(r.gbs(r.naive))
        }
    }

    func testPluggedInProviderIsTimedAndChecked() throws {
        let cases = try KernelSuite.cases(for: try tinyGraph(), seq: 4, contexts: [16])
        let provider = EchoProvider()
        provider.unsupported = [.logits]
        provider.failing = [.layerNorm]
        let results = KernelBench(repeats: 3, warmup: 1, flusher: CacheFlusher(bytes: 1 << 16))
            .run(cases, fused: provider, progress: ProgressLine(enabled: false))
        for r in results {
            switch r.kernel.kernelClass {
            case .logits:
                XCTAssertNil(r.fused)
                XCTAssertNil(r.fusedError)
            case .layerNorm:
                XCTAssertNil(r.fused)
                XCTAssertEqual(r.fusedError, "no layernorm kernel: test failure")
            default:
                XCTAssertEqual(r.fused?.count, 3, r.kernel.key)
                XCTAssertEqual(r.difference, 0, "the echo side computes exactly what the naive side does")
                XCTAssertNotNil(r.speedup)
            }
        }
        XCTAssertEqual(provider.prepared.count, cases.filter { ![.logits, .layerNorm].contains($0.kernelClass) }.count)
    }

    func testDerivedFigures() {
        let k = KernelCase(name: "k", kernelClass: .pattention, phase: .prefill, shape: "s", op: .add, rows: 1, position: 0,
                           weights: [], flops: 2e9, bytes: 1e9, bound: .compute, inputWidths: [], outputWidth: 0)
        let r = KernelResult(kernel: k, naive: Summary([0.1]), fused: Summary([0.05]))
        XCTAssertEqual(r.gflops(r.naive)!, 20, accuracy: 1e-9)
        XCTAssertEqual(r.gbs(r.fused)!, 20, accuracy: 1e-9)
        XCTAssertEqual(r.percentOfBound(r.naive, peak: samplePeak)!, 20, accuracy: 1e-9)
        XCTAssertEqual(r.speedup!, 2, accuracy: 1e-12)
        var b = r
        b.kernel.bound = .bandwidth
        XCTAssertEqual(b.percentOfBound(b.naive, peak: samplePeak)!, 100, accuracy: 1e-9)
        XCTAssertNil(b.gflops(nil))
        // A probe between the runs replaces the start's peak: 0.5 s for 20 GFLOP is 40 GFLOP/s.
        var probed = r
        probed.boundProbe = Summary([0.5, 0.4, 1.0])
        probed.boundProbeWork = 20e9
        XCTAssertEqual(probed.percentOfBound(probed.naive, peak: samplePeak)!, 50, accuracy: 1e-9)
        XCTAssertEqual(probed.boundProbeRates!.min, 20, accuracy: 1e-9)
        XCTAssertEqual(probed.boundProbeRates!.max, 50, accuracy: 1e-9)
    }
}
