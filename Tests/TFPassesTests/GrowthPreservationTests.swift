import XCTest
import TFIR
import TFNaive
import TFSpec
import TFWeights
@testable import TFPasses

/// Grown models against their originals on the naive backend: with τ pinned and zero new tokens
/// the logits stay within 1e-5 (float rounding from the longer sums); with τ following n, softmax
/// sites or random new keys they drift, and the growth says so.
final class GrowthPreservationTests: XCTestCase {
    let tolerance: Float = 1e-5

    func assertExact(_ grown: Grown, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let c = grown.compare()
        report(label, c)
        XCTAssertFalse(c.maxAbsDifference.isNaN, label, file: file, line: line)
        XCTAssertLessThanOrEqual(c.maxAbsDifference, tolerance, label, file: file, line: line)
        XCTAssertGreaterThan(c.maxAbsLogit, 0.1, "\(label): the logits should not be trivially small", file: file, line: line)
        XCTAssertEqual(grown.result.drift, [], label, file: file, line: line)
        // The grown spec prints and parses back as itself, and lowers to the grown graph.
        let text = Printer.print(grown.result.spec)
        XCTAssertEqual(try parse(text), grown.result.spec, label, file: file, line: line)
        XCTAssertNil(try lower(try parse(text)).structuralDifference(from: grown.result.graph), label, file: file, line: line)
    }

    func models() throws -> [(String, (spec: Spec, graph: Graph))] {
        [("tiny", try GrowthFixture.load("specs/tiny.tfs")), ("mid", try GrowthFixture.load("specs/examples/mid.tfs"))]
    }

    func testGrowingEachSiteAlone() throws {
        for (name, model) in try models() {
            for site in model.graph.siteTemplates {
                let grown = try Grown(model, [GrowSites([site.site: site.tokens + 37])])
                assertExact(grown, "\(name) \(site.site) \(site.tokens) → \(site.tokens + 37)")
                XCTAssertEqual(grown.result.graph.pattentionSites.filter { $0.site == site.site }.map(\.scale),
                               Array(repeating: site.tau, count: model.graph.config.layers))
            }
        }
    }

    func testGrowingAllSites() throws {
        for (name, model) in try models() {
            var targets: [String: Int] = [:]
            for site in model.graph.siteTemplates { targets[site.site] = site.tokens * 2 }
            let grown = try Grown(model, [GrowSites(targets)])
            assertExact(grown, "\(name) all sites ×2")
            XCTAssertGreaterThan(grown.result.graph.parameterCount, model.graph.parameterCount)
        }
    }

    func testInsertingLayersAtStartMiddleAndEnd() throws {
        for (name, model) in try models() {
            let layers = model.graph.config.layers
            for (at, count) in [(0, 1), (layers / 2, 2), (layers, 1)] {
                let grown = try Grown(model, [InsertLayers(count: count, at: at)])
                assertExact(grown, "\(name) +\(count) layers at \(at)")
                XCTAssertEqual(grown.result.graph.config.layers, layers + count)
                XCTAssertTrue(Printer.print(grown.result.spec).contains("    layers = \(layers + count)\n"))
            }
        }
    }

    func testGrowingAndInsertingTogetherAndAgain() throws {
        for (name, model) in try models() {
            var targets: [String: Int] = [:]
            for site in model.graph.siteTemplates { targets[site.site] = site.tokens * 3 / 2 }
            let once = try Grown(model, [GrowSites(targets), InsertLayers(count: 1, at: 1)])
            assertExact(once, "\(name) all ×1.5 + 1 layer at 1")
            // A grown model grows again: pinned sites keep their pinned τ.
            let twice = try once.again([GrowSites(["mlp": targets["mlp"]! + 64]), InsertLayers(count: 1, at: 0)])
            assertExact(twice, "\(name) grown again: mlp +64, 1 layer at 0")
            XCTAssertEqual(twice.result.graph.pattentionSites.filter { $0.site == "mlp" }.map(\.scale),
                           Array(repeating: model.graph.siteTemplates.first { $0.site == "mlp" }!.tau, count: model.graph.config.layers + 2))
            // And the twice-grown model is exactly the original too.
            let c = GrowthComparison.compare(
                NaiveExecutorFactory.make(model.graph, once.oldWeights),
                NaiveExecutorFactory.make(twice.result.graph, twice.newWeights),
                tokens: GrowthComparison.sampleTokens(count: 24, vocab: model.graph.config.vocab, seed: 5))
            report("\(name) original vs grown twice", c)
            XCTAssertLessThanOrEqual(c.maxAbsDifference, tolerance)
        }
    }

    func testGeluL2NormSoftmaxAndOtherBlocks() throws {
        // two-mlp: gelu_l2_norm by default, a softmax query, an explicitly scaled value site, an MLP
        // of two Pattentions, untied embeddings and an affine final norm.
        let twoMLP = try GrowthFixture.load("specs/examples/two-mlp.tfs")
        let pinned = try Grown(twoMLP, [GrowSites(["attention.key": 40, "attention.value": 33, "attention.proj": 31, "mlp.up": 100, "mlp.down": 90]),
                                        InsertLayers(count: 1, at: 1)])
        assertExact(pinned, "two-mlp gelu_l2_norm sites + 1 layer")
        let parallel = try GrowthFixture.load("specs/examples/parallel.tfs")
        assertExact(try Grown(parallel, [GrowSites(["mlp": 200, "attention.query": 50]), InsertLayers(count: 2, at: 0)]), "parallel block")

        // Softmax in reference mode: runs, drifts, and says why.
        let softmax = try Grown(twoMLP, [GrowSites(["attention.query": 40], scale: .reference)])
        let c = softmax.compare()
        report("two-mlp softmax query 24 → 40 (reference)", c)
        XCTAssertGreaterThan(c.maxAbsDifference, 1e-4)
        XCTAssertEqual(softmax.result.drift.count, 1)
        XCTAssertTrue(softmax.result.drift[0].contains("softmax"))
    }

    func testReferenceScalingDrifts() throws {
        for (name, model) in try models() {
            var targets: [String: Int] = [:]
            for site in model.graph.siteTemplates { targets[site.site] = site.tokens * 2 }
            let grown = try Grown(model, [GrowSites(targets, scale: .reference)])
            let c = grown.compare()
            report("\(name) all ×2, τ follows n (reference)", c)
            XCTAssertGreaterThan(c.maxAbsDifference, 1e-3, name)
            XCTAssertEqual(grown.result.drift.count, targets.count)
            XCTAssertFalse(Printer.print(grown.result.spec).contains("scale:"))
            // Inserting layers does not touch τ: exact in either mode.
            assertExact(try Grown(model, [InsertLayers(count: 1, at: 1, exact: false)]), "\(name) +1 layer (reference)")
        }
    }

    func testSmallRandomKeysDriftALittle() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let grown = try Grown(tiny, [GrowSites(["mlp": 512], newKeys: .normal(std: 0.001))], seed: 9)
        let c = grown.compare()
        report("tiny mlp ×2 with normal(0, 0.001) keys (pinned)", c)
        XCTAssertGreaterThan(c.maxAbsDifference, 0)
        XCTAssertLessThan(c.maxAbsDifference, 0.5)
        XCTAssertEqual(grown.result.drift.count, 1)
        // The new key rows are random, the new value rows zero.
        let key = grown.newWeights.values("layers.0.mlp.key_param_tokens")
        let value = grown.newWeights.values("layers.0.mlp.value_param_tokens")
        XCTAssertTrue(key[(256 * 64)...].contains { $0 != 0 })
        XCTAssertTrue(value[(256 * 64)...].allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(key[..<(256 * 64)]), Array(grown.oldWeights.values("layers.0.mlp.key_param_tokens")))
    }

    func testInsertedLayersGetTheInitWeightsOfTheNewModel() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let grown = try Grown(tiny, [InsertLayers(count: 1, at: 1)], seed: 42)
        // layers.1 is new: its query keys are what `tfc init --seed 42` gives the grown spec.
        let p = grown.result.graph.parameters.first { $0.name == "layers.1.attention.query.key_param_tokens" }!
        guard case .normal(let std) = p.initialization else { return XCTFail("keys are normal") }
        XCTAssertEqual(grown.newWeights.values(p.name), WeightInit.values(for: TensorSpec(name: p.name, shape: p.shape, initStd: Float(std)), seed: 42))
        XCTAssertTrue(grown.newWeights.values("layers.1.mlp.value_param_tokens").allSatisfy { $0 == 0 })
        // The old layer 1 is now layer 2.
        XCTAssertEqual(grown.newWeights.values("layers.2.mlp.key_param_tokens"), grown.oldWeights.values("layers.1.mlp.key_param_tokens"))
        XCTAssertEqual(grown.newWeights.values("layers.0.mlp.key_param_tokens"), grown.oldWeights.values("layers.0.mlp.key_param_tokens"))
    }
}

enum NaiveExecutorFactory {
    static func make(_ graph: Graph, _ weights: GrowthWeights) -> any ModelExecutor {
        NaiveExecutor(graph: graph, weights: weights.lookup, threads: 1)
    }
}
