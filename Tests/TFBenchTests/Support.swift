import Foundation
import TFIR
import TFSpec
@testable import TFBench

/// The repository's specs/ directory.
let specsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("specs")

/// specs/tiny.tfs, lowered.
func tinyGraph() throws -> Graph {
    let path = specsDirectory.appendingPathComponent("tiny.tfs").path
    return try lower(try parse(try SourceFile.load(path)))
}

/// A stand-in fused side for the tests: runs the naive kernel (so outputs agree), optionally
/// refusing some kernel classes or failing on them.
final class EchoProvider: FusedKernelProvider {
    var unsupported: Set<KernelClass> = []
    var failing: Set<KernelClass> = []
    var prepared: [String] = []

    struct Failure: Error, CustomStringConvertible { var description: String }

    func prepare(_ workload: KernelWorkload) throws -> (() -> Void)? {
        let kernelClass = workload.kernel.kernelClass
        if failing.contains(kernelClass) { throw Failure(description: "no \(kernelClass.rawValue) kernel: test failure") }
        if unsupported.contains(kernelClass) { return nil }
        prepared.append(workload.kernel.key)
        return NaiveSide.prepare(workload)
    }
}

/// A model executor that only counts what it is asked to do.
final class CountingExecutor: ModelExecutor {
    let graph: Graph
    private(set) var position = 0
    var forwards: [Int] = []
    var resets = 0
    init(graph: Graph) { self.graph = graph }
    func forward(_ tokens: [Int32]) -> Matrix {
        forwards.append(tokens.count)
        position += tokens.count
        return Matrix(rows: tokens.count, columns: graph.config.vocab)
    }
    func reset() { resets += 1; position = 0 }
}

/// A fixed peak, so derived percentages are exact.
let samplePeak = MachinePeak(sgemmGFlops: 100, sgemmSize: 2048, bandwidthGBs: 10, bandwidthBytes: 512 << 20)

func sampleRun(fused: Bool) -> BenchRun {
    BenchRun(spec: "specs/tiny.tfs", model: "tiny", cpu: "Test CPU", threads: 2, repeats: 3, warmup: 1, quick: true,
             version: "0.0.0", date: Date(timeIntervalSince1970: 0), fusedAvailable: fused)
}

/// Parses JSON text back into an object.
func parseJSON(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}
