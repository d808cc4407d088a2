import XCTest
import TFIR
import TFSpec
@testable import TFPasses

/// The growth rewrites one at a time: the IR they produce, the parameter map they report, the spec
/// they write, and the requests they refuse.
final class GrowthRewriteTests: XCTestCase {
    func sites(_ g: Graph, _ name: String) -> [PattentionOp] { g.pattentionSites.filter { $0.site == name } }

    func errorMessage(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    // MARK: grow sites

    func testGrowOneSiteRewritesEveryLayerAndPinsTau() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let grown = try GrowSites(["mlp": 300]).run(tiny.graph)
        XCTAssertEqual(sites(grown, "mlp").map(\.tokens), [300, 300])
        XCTAssertEqual(sites(grown, "mlp").map(\.scale), [16, 16])  // sqrt(256)
        XCTAssertEqual(sites(grown, "attention.query").map(\.tokens), [64, 64])
        XCTAssertEqual(sites(grown, "attention.query").map(\.scale), [nil, nil])
        XCTAssertEqual(grown.instructions.count, tiny.graph.instructions.count)
        XCTAssertNil(grown.structuralDifference(from: grown))
        XCTAssertNotNil(grown.structuralDifference(from: tiny.graph))

        let reference = try GrowSites(["mlp": 300], scale: .reference).run(tiny.graph)
        XCTAssertEqual(sites(reference, "mlp").map(\.scale), [nil, nil])
        XCTAssertEqual(sites(reference, "mlp")[0].tau, Double(300).squareRoot())
    }

    func testGrowSiteParameterMapPadsRows() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let rewrite = GrowSites(["attention.proj": 100], newKeys: .normal(std: 0.001))
        let grown = try rewrite.run(tiny.graph)
        let map = try rewrite.parameterMap(from: tiny.graph, to: grown)
        XCTAssertEqual(map.tensors.count, grown.parameters.count)
        XCTAssertEqual(map.tensors["layers.1.attention.proj.value_param_tokens"],
                       [.copy(from: "layers.1.attention.proj.value_param_tokens", start: 0, count: 64), .fill(.zero, count: 36)])
        XCTAssertEqual(map.tensors["layers.1.attention.proj.key_param_tokens"],
                       [.copy(from: "layers.1.attention.proj.key_param_tokens", start: 0, count: 64),
                        .fill(.normal(std: 0.001, stream: "layers.1.attention.proj.key_param_tokens[64..<100]", skipRows: 0), count: 36)])
        XCTAssertEqual(map.tensors["embed.weight"], [.copy(from: "embed.weight", start: 0, count: 256)])
        XCTAssertEqual(rewrite.drift(in: tiny.graph).count, 1)
        XCTAssertEqual(GrowSites(["attention.proj": 100]).drift(in: tiny.graph), [])
        XCTAssertEqual(GrowSites(["attention.proj": 100], scale: .reference).drift(in: tiny.graph),
                       ["attention.proj: τ follows n, 8 → sqrt(100) = 10"])
    }

    func testSpecRewriteOfASharedConstantTouchesOnlyTheGrownSite() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let spec = try GrowSites(["attention.query": 96]).rewrite(tiny.spec, lowering: tiny.graph)
        let text = Printer.print(spec)
        XCTAssertTrue(text.contains("q = pattention(h, site: attention.query, tokens: 96, scale: 8.0)"), text)
        XCTAssertTrue(text.contains("k = pattention(h, site: attention.key, tokens: qkv)"), text)
        XCTAssertTrue(text.contains("v = pattention(h, site: attention.value, tokens: qkv)"), text)
        XCTAssertTrue(text.contains("let qkv = hidden"), text)
        XCTAssertEqual(try parse(text), spec)
    }

    func testSpecRewriteSetsALetReadOnlyByGrownSites() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let rewrite = GrowSites(["attention.query": 128, "attention.key": 128, "attention.value": 128, "mlp": 512])
        let spec = try rewrite.rewrite(tiny.spec, lowering: tiny.graph)
        let text = Printer.print(spec)
        XCTAssertTrue(text.contains("let qkv = 128\n"), text)
        XCTAssertTrue(text.contains("let ffn = 512\n"), text)
        XCTAssertTrue(text.contains("let proj = hidden\n"), text)
        XCTAssertTrue(text.contains("site: attention.key, tokens: qkv, scale: 8.0)"), text)
        XCTAssertTrue(text.contains("site: mlp, tokens: ffn, scale: 16.0)"), text)
        XCTAssertTrue(text.contains("site: attention.proj, tokens: proj)"), text)
        XCTAssertNil(try lower(spec).structuralDifference(from: try rewrite.run(tiny.graph)))

        // Different counts for sites sharing `qkv`: literals, the let stays.
        let split = try GrowSites(["attention.query": 128, "attention.key": 96]).rewrite(tiny.spec, lowering: tiny.graph)
        let splitText = Printer.print(split)
        XCTAssertTrue(splitText.contains("let qkv = hidden"), splitText)
        XCTAssertTrue(splitText.contains("site: attention.query, tokens: 128, scale: 8.0)"), splitText)
        XCTAssertTrue(splitText.contains("site: attention.key, tokens: 96, scale: 8.0)"), splitText)
    }

    func testALetAlsoReadElsewhereIsNotChanged() throws {
        let model = try GrowthFixture.load(text: """
        model "m" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 2
            context = 8
        }
        let t = 8
        let ffn = 4 * t
        block(x) {
            h = layernorm(x)
            a = attention(pattention(h, site: q, tokens: t), pattention(h, site: k, tokens: t), pattention(h, site: v, tokens: t), heads: 2)
            x1 = x + pattention(a, site: o, tokens: t)
            return x1 + pattention(layernorm(x1), site: mlp, tokens: ffn)
        }
        """)
        let rewrite = GrowSites(["q": 10, "k": 10, "v": 10, "o": 10])
        let spec = try rewrite.rewrite(model.spec, lowering: model.graph)
        let text = Printer.print(spec)
        XCTAssertTrue(text.contains("let t = 8\n"), text)
        XCTAssertTrue(text.contains("site: q, tokens: 10, scale: 2.8284271247461903)"), text)
        XCTAssertTrue(text.contains("site: mlp, tokens: ffn)"), text)
        XCTAssertNil(try lower(spec).structuralDifference(from: try rewrite.run(model.graph)))
    }

    func testExistingScaleIsKeptWhenPinnedAndDroppedForReference() throws {
        let model = try GrowthFixture.load("specs/examples/two-mlp.tfs")
        let pinned = Printer.print(try GrowSites(["attention.value": 30]).rewrite(model.spec, lowering: model.graph))
        XCTAssertTrue(pinned.contains("site: attention.value, tokens: 30, norm: l2_norm_gelu, scale: 3.5)"), pinned)
        let reference = Printer.print(try GrowSites(["attention.value": 30], scale: .reference).rewrite(model.spec, lowering: model.graph))
        XCTAssertTrue(reference.contains("site: attention.value, tokens: 30, norm: l2_norm_gelu)"), reference)
        // Softmax sites never take a scale.
        let softmax = Printer.print(try GrowSites(["attention.query": 30], scale: .reference).rewrite(model.spec, lowering: model.graph))
        XCTAssertTrue(softmax.contains("site: attention.query, tokens: 30, norm: softmax)"), softmax)
    }

    func testBadSiteRequests() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs").graph
        XCTAssertEqual(errorMessage { _ = try GrowSites(["mpl": 300]).run(tiny) },
                       "error: unknown site 'mpl'; the sites are attention.query, attention.key, attention.value, attention.proj, mlp")
        XCTAssertEqual(errorMessage { _ = try GrowSites(["mlp": 10]).run(tiny) },
                       "error: site 'mlp' has 256 tokens; growth cannot shrink it to 10")
        XCTAssertEqual(errorMessage { _ = try GrowSites(["mlp": 256]).run(tiny) },
                       "error: site 'mlp' already has 256 tokens; give a larger count")
        XCTAssertEqual(errorMessage { _ = try GrowSites(["mlp": 0]).run(tiny) },
                       "error: site 'mlp': a token count must be positive, got 0")
        XCTAssertEqual(errorMessage { _ = try GrowSites(["mlp": -4]).run(tiny) },
                       "error: site 'mlp': a token count must be positive, got -4")
    }

    func testSoftmaxIsRefusedWhenPinnedAndGeluL2NormIsAllowed() throws {
        let model = try GrowthFixture.load("specs/examples/two-mlp.tfs").graph
        let message = errorMessage { _ = try GrowSites(["attention.query": 30]).run(model) }
        XCTAssertTrue(message.contains("site 'attention.query' uses softmax"), message)
        XCTAssertTrue(message.contains("exp(0) = 1"), message)
        XCTAssertTrue(message.contains("--scale reference"), message)
        XCTAssertEqual(model.pattentionSites.first { $0.site == "attention.key" }?.norm, .geluL2Norm)
        XCTAssertNoThrow(try GrowSites(["attention.key": 30, "mlp.up": 100]).run(model))
        let drift = GrowSites(["attention.query": 30], scale: .reference).drift(in: model)
        XCTAssertEqual(drift.count, 1)
        XCTAssertTrue(drift[0].contains("softmax"), drift[0])
    }

    // MARK: insert layers

    func testInsertLayersRenumbersSitesCachesAndWeights() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let rewrite = InsertLayers(count: 2, at: 1)
        let grown = try rewrite.run(tiny.graph)
        XCTAssertEqual(grown.config.layers, 4)
        XCTAssertEqual(sites(grown, "mlp").map(\.layer), [0, 1, 2, 3])
        XCTAssertEqual(grown.cacheSlots, 4)
        XCTAssertNoThrow(try grown.verify())
        XCTAssertEqual(grown.parameters.count, 1 + 4 * 10)
        // Identical to lowering the spec with four layers.
        let four = try lower(try parse(Printer.print(tiny.spec).replacingOccurrences(of: "layers = 2", with: "layers = 4")))
        XCTAssertNil(four.structuralDifference(from: grown))

        let map = try rewrite.parameterMap(from: tiny.graph, to: grown)
        XCTAssertEqual(map.tensors["layers.0.mlp.key_param_tokens"], [.copy(from: "layers.0.mlp.key_param_tokens", start: 0, count: 256)])
        XCTAssertEqual(map.tensors["layers.3.mlp.key_param_tokens"], [.copy(from: "layers.1.mlp.key_param_tokens", start: 0, count: 256)])
        XCTAssertEqual(map.tensors["layers.1.mlp.value_param_tokens"], [.fill(.zero, count: 256)])
        XCTAssertEqual(map.tensors["layers.2.attention.proj.value_param_tokens"], [.fill(.zero, count: 64)])
        // Non-residual sites: tfc init's initialisation for the new model (4 layers).
        XCTAssertEqual(map.tensors["layers.2.attention.query.value_param_tokens"],
                       [.fill(.normal(std: 2.0 / 4 / 8, stream: "layers.2.attention.query.value_param_tokens", skipRows: 0), count: 64)])
        XCTAssertEqual(map.tensors["layers.1.mlp.key_param_tokens"],
                       [.fill(.normal(std: 0.02, stream: "layers.1.mlp.key_param_tokens", skipRows: 0), count: 256)])
    }

    func testInsertAtStartAndEnd() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        for at in [0, 2] {
            let grown = try InsertLayers(count: 1, at: at).run(tiny.graph)
            XCTAssertEqual(sites(grown, "attention.query").map(\.layer), [0, 1, 2])
            let map = try InsertLayers(count: 1, at: at).parameterMap(from: tiny.graph, to: grown)
            XCTAssertEqual(map.tensors["layers.\(at).mlp.value_param_tokens"], [.fill(.zero, count: 256)])
        }
    }

    func testResidualSitesOfDifferentBlocks() throws {
        XCTAssertEqual(InsertLayers.residualSites(of: try GrowthFixture.load("specs/tiny.tfs").graph), ["attention.proj", "mlp"])
        XCTAssertEqual(InsertLayers.residualSites(of: try GrowthFixture.load("specs/examples/two-mlp.tfs").graph), ["attention.proj", "mlp.down"])
        XCTAssertEqual(InsertLayers.residualSites(of: try GrowthFixture.load("specs/examples/parallel.tfs").graph), ["attention.proj", "mlp"])
    }

    func testInsertSpecRewriteFreezesOtherReadsOfLayers() throws {
        let model = try GrowthFixture.load(text: """
        model "m" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 2
            context = 8
        }
        let ffn = 8 * layers
        block(x) {
            h = layernorm(x)
            return x + pattention(h, site: mlp, tokens: ffn)
        }
        """)
        let rewrite = InsertLayers(count: 3, at: 2)
        let spec = try rewrite.rewrite(model.spec, lowering: model.graph)
        let text = Printer.print(spec)
        XCTAssertTrue(text.contains("    layers = 5\n"), text)
        XCTAssertTrue(text.contains("let ffn = 8 * 2\n"), text)
        XCTAssertNil(try lower(spec).structuralDifference(from: try rewrite.run(model.graph)))
    }

    func testInsertRefusals() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs").graph
        XCTAssertEqual(errorMessage { _ = try InsertLayers(count: 1, at: 3).run(tiny) },
                       "error: --at 3: layers can be inserted at 0...2 (before layer K; 2 appends)")
        XCTAssertEqual(errorMessage { _ = try InsertLayers(count: 0, at: 1).run(tiny) },
                       "error: --layers: the number of layers to insert must be positive, got 0")
        // A post-norm block cannot be extended by an identity layer.
        let postNorm = try GrowthFixture.load(text: """
        model "m" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 2
            context = 8
        }
        block(x) {
            return layernorm(x + pattention(x, site: mlp, tokens: 8))
        }
        """)
        XCTAssertTrue(errorMessage { _ = try InsertLayers(count: 1, at: 1).run(postNorm.graph) }.contains("cannot insert layers exactly"))
        let loose = InsertLayers(count: 1, at: 1, exact: false)
        XCTAssertNoThrow(try loose.run(postNorm.graph))
        XCTAssertEqual(loose.drift(in: postNorm.graph).count, 1)
    }

    // MARK: composition

    func testPipelineComposesMapsInEitherOrder() throws {
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let a = try GrowthPipeline([GrowSites(["mlp": 300]), InsertLayers(count: 1, at: 0)]).run(spec: tiny.spec, graph: tiny.graph)
        let b = try GrowthPipeline([InsertLayers(count: 1, at: 0), GrowSites(["mlp": 300])]).run(spec: tiny.spec, graph: tiny.graph)
        XCTAssertEqual(a.spec, b.spec)
        XCTAssertNil(a.graph.structuralDifference(from: b.graph))
        XCTAssertEqual(a.steps.count, 3)
        let plan = Dictionary(uniqueKeysWithValues: a.plan.tensors.map { ($0.name, $0.segments) })
        XCTAssertEqual(plan["layers.2.mlp.key_param_tokens"],
                       [.copy(from: "layers.1.mlp.key_param_tokens", start: 0, count: 256), .fill(.zero, count: 44)])
        XCTAssertEqual(plan["layers.0.mlp.value_param_tokens"], [.fill(.zero, count: 300)])
        // Growing after inserting slices the fresh keys' stream and pads it: the stream starts the same.
        let planB = Dictionary(uniqueKeysWithValues: b.plan.tensors.map { ($0.name, $0.segments) })
        XCTAssertEqual(planB["layers.0.mlp.key_param_tokens"],
                       [.fill(.normal(std: 0.02, stream: "layers.0.mlp.key_param_tokens", skipRows: 0), count: 256), .fill(.zero, count: 44)])
        XCTAssertEqual(a.plan.summary.renamed, 16)
        XCTAssertEqual(a.plan.summary.grown, 4)
        XCTAssertEqual(a.plan.summary.fresh, 10)
        XCTAssertEqual(a.plan.summary.unchanged, 1)
    }

    func testSliceAndMerge() throws {
        let segments: [RowSegment] = [.copy(from: "a", start: 0, count: 4), .fill(.normal(std: 1, stream: "s", skipRows: 0), count: 6)]
        XCTAssertEqual(try ParameterMap.slice(segments, start: 2, count: 5, of: "t"),
                       [.copy(from: "a", start: 2, count: 2), .fill(.normal(std: 1, stream: "s", skipRows: 0), count: 3)])
        XCTAssertEqual(try ParameterMap.slice(segments, start: 6, count: 2, of: "t"),
                       [.fill(.normal(std: 1, stream: "s", skipRows: 2), count: 2)])
        XCTAssertThrowsError(try ParameterMap.slice(segments, start: 8, count: 5, of: "t"))
        XCTAssertEqual(ParameterMap.merged([.copy(from: "a", start: 0, count: 2), .copy(from: "a", start: 2, count: 3), .fill(.zero, count: 1), .fill(.zero, count: 2)]),
                       [.copy(from: "a", start: 0, count: 5), .fill(.zero, count: 3)])
    }

    func testMaterialiseCopiesPadsAndDraws() throws {
        let tensor = WeightPlan.Tensor(name: "t", shape: [5, 2], segments: [
            .copy(from: "a", start: 1, count: 2), .fill(.zero, count: 1), .fill(.normal(std: 1, stream: "s", skipRows: 1), count: 2),
        ])
        let a: [Float] = [0, 1, 2, 3, 4, 5]
        var out = [Float](repeating: .nan, count: 10)
        a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { op in
                WeightPlan.materialise(tensor, into: op, source: { _ in ap }, normal: { _, _, buffer in
                    for i in buffer.indices { buffer[i] = Float(100 + i) }
                })
            }
        }
        XCTAssertEqual(out, [2, 3, 4, 5, 0, 0, 102, 103, 104, 105])
    }

    func testAnInconsistentRewriteIsAnInternalError() throws {
        /// Grows the IR but forgets the spec.
        struct Forgetful: GrowthRewrite {
            var name: String { "forgetful" }
            func run(_ graph: Graph) throws -> Graph { try GrowSites(["mlp": 300]).run(graph) }
            func parameterMap(from old: Graph, to new: Graph) throws -> ParameterMap { try GrowSites(["mlp": 300]).parameterMap(from: old, to: new) }
            func rewrite(_ spec: Spec, lowering old: Graph) throws -> Spec { spec }
            func drift(in old: Graph) -> [String] { [] }
        }
        let tiny = try GrowthFixture.load("specs/tiny.tfs")
        let message = errorMessage { _ = try GrowthPipeline([Forgetful()]).run(spec: tiny.spec, graph: tiny.graph) }
        XCTAssertTrue(message.hasPrefix("error: internal consistency error: the re-lowered spec and the IR rewrite disagree"), message)

        let map = ParameterMap(["embed.weight": [.copy(from: "embed.weight", start: 0, count: 256)]])
        XCTAssertThrowsError(try WeightPlan(map: map, old: tiny.graph.parameters, new: tiny.graph.parameters)) { error in
            XCTAssertTrue("\(error)".contains("nothing says how to make"), "\(error)")
        }
    }
}
