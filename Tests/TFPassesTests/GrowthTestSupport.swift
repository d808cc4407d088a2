import Foundation
import XCTest
import TFIR
import TFNaive
import TFSpec
import TFWeights
@testable import TFPasses

/// Specs, weights and runs for the growth tests.
enum GrowthFixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A spec file of the repository, parsed and lowered.
    static func load(_ relativePath: String) throws -> (spec: Spec, graph: Graph) {
        let source = try SourceFile.load(root.appendingPathComponent(relativePath).path)
        let spec = try parse(source)
        return (spec, try lower(spec, source: source))
    }

    static func load(text: String) throws -> (spec: Spec, graph: Graph) {
        let spec = try parse(text, path: "test.tfs")
        return (spec, try lower(spec))
    }

    /// The normal stream filler the CLI uses (`tfc init`'s generator).
    static func normal(seed: UInt64) -> (String, Double, UnsafeMutableBufferPointer<Float>) -> Void {
        { stream, std, buffer in
            WeightInit.fill(buffer, for: TensorSpec(name: stream, shape: [buffer.count], initStd: Float(std)), seed: seed)
        }
    }
}

/// A model's weights in memory. "Trained-like" random values: every tensor normal(0, 0.1)
/// (affine norms 1 + noise), so every layer changes the logits noticeably.
final class GrowthWeights {
    private(set) var storage: [String: UnsafeMutableBufferPointer<Float>] = [:]

    init(_ graph: Graph, seed: UInt64 = 7) {
        for p in graph.parameters {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.elementCount)
            WeightInit.fill(buffer, for: TensorSpec(name: p.name, shape: p.shape, initStd: 0.1), seed: seed)
            if case .constant(let v) = p.initialization {
                for i in buffer.indices { buffer[i] += Float(v) }
            }
            storage[p.name] = buffer
        }
    }

    /// The grown model's weights, built by the one generic routine from `plan`.
    init(grownFrom old: GrowthWeights, plan: WeightPlan, seed: UInt64 = 0) {
        for t in plan.tensors {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.count)
            buffer.initialize(repeating: .nan)
            WeightPlan.materialise(t, into: buffer, source: old.lookup, normal: GrowthFixture.normal(seed: seed))
            storage[t.name] = buffer
        }
    }

    deinit { storage.values.forEach { $0.deallocate() } }

    func lookup(_ name: String) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(storage[name]!) }
    func values(_ name: String) -> [Float] { Array(storage[name]!) }
}

/// One grown model next to its original.
struct Grown {
    var old: (spec: Spec, graph: Graph)
    var result: GrowthResult
    var oldWeights: GrowthWeights
    var newWeights: GrowthWeights

    /// Grows `model` with `rewrites` and materialises the weights.
    init(_ model: (spec: Spec, graph: Graph), _ rewrites: [any GrowthRewrite], weights: GrowthWeights? = nil, seed: UInt64 = 0) throws {
        old = model
        result = try GrowthPipeline(rewrites).run(spec: model.spec, graph: model.graph)
        oldWeights = weights ?? GrowthWeights(model.graph)
        newWeights = GrowthWeights(grownFrom: oldWeights, plan: result.plan, seed: seed)
    }

    /// Old vs new logits on the naive backend, through the `ModelExecutor` protocol.
    func compare(tokens count: Int = 24, seed: UInt64 = 3) -> GrowthComparison {
        let old: any ModelExecutor = NaiveExecutor(graph: self.old.graph, weights: oldWeights.lookup, threads: 1)
        let new: any ModelExecutor = NaiveExecutor(graph: result.graph, weights: newWeights.lookup, threads: 1)
        let n = min(count, self.old.graph.config.context)
        return GrowthComparison.compare(old, new, tokens: GrowthComparison.sampleTokens(count: n, vocab: self.old.graph.config.vocab, seed: seed))
    }

    /// The same growth applied again to the grown model.
    func again(_ rewrites: [any GrowthRewrite]) throws -> Grown {
        try Grown((result.spec, result.graph), rewrites, weights: newWeights)
    }
}

/// Records measured differences so the test log shows them.
func report(_ label: String, _ c: GrowthComparison) {
    print(String(format: "growth %@: max |Δlogit| = %.3g (max |logit| %.3g, top-1 %d/%d)",
                 label, c.maxAbsDifference, c.maxAbsLogit, c.top1Agreement, c.positions))
}
