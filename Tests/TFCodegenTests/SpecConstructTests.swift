import Foundation
import XCTest
import TFIR
import TFNaive
import TFPasses
import TFSpec
import TFTestSupport
@testable import TFCodegen

/// Every construct of the spec language on both backends: each op, each attribute value, each
/// Pattention variant (model default and per site), pinned scale, `out:`, parallel and sequential
/// blocks, affine and plain final norm, tied and untied embeddings, rotary on and off, causal and
/// non-causal attention. For each, the fused backend either agrees with the naive one (the
/// tolerance of FusedBackendTests) or refuses with the capability table's reason; never a third
/// outcome. The constructs together reach every kernel in the table.
final class SpecConstructTests: XCTestCase {
    static let cache = CompiledCodeCache(directory: FileManager.default.temporaryDirectory.appendingPathComponent("tfc-construct-cache-\(getpid())").path)

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: cache.directory)
        super.tearDown()
    }

    static let context = 20

    /// A spec: the header's extra fields and the block body (hidden 48, 3 heads of 16).
    static func spec(_ name: String, header: String = "", rotaryFraction: String = "0.5", _ body: String) -> String {
        """
        model "\(name)" {
            vocab = 67
            hidden = 48
            heads = 3
            layers = 2
            context = \(context)
            rotary_fraction = \(rotaryFraction)
        \(header)
        }
        block(x) {
        \(body)
        }
        """
    }

    static func sequential(norms: (String, String, String) = ("", "", ""), attention: String = "heads: heads") -> String {
        """
            h = layernorm(x)
            q = pattention(h, site: attention.query, tokens: 24\(norms.0))
            k = pattention(h, site: attention.key, tokens: 24\(norms.1))
            v = pattention(h, site: attention.value, tokens: 28)
            a = attention(q, k, v, \(attention))
            x1 = x + pattention(a, site: attention.proj, tokens: 20)
            h1 = layernorm(x1)
            x2 = x1 + pattention(h1, site: mlp, tokens: 40\(norms.2))
            return x2
        """
    }

    /// (what, spec text): every construct at least once.
    static var constructs: [(String, String)] {
        var all: [(String, String)] = []
        for variant in PattentionNorm.allCases {
            all.append(("model default pattention = \(variant.rawValue)", spec("d", header: "pattention = \(variant.rawValue)", sequential())))
        }
        all.append(("per-site norm: softmax, gelu_l2_norm, l2_norm_gelu",
                    spec("n", header: "pattention = gelu_l2_norm", sequential(norms: (", norm: softmax", ", norm: gelu_l2_norm", ", norm: l2_norm_gelu")))))
        all.append(("pinned scale on l2_norm_gelu and gelu_l2_norm sites",
                    spec("s", sequential(norms: (", scale: 2.5", ", norm: gelu_l2_norm, scale: 0.75", ", scale: 9")))))
        for causal in [true, false] {
            for rotary in [true, false] {
                all.append(("attention causal: \(causal), rotary: \(rotary)",
                            spec("a", sequential(attention: "heads: heads, causal: \(causal), rotary: \(rotary)"))))
            }
        }
        all.append(("attention with the defaults spelled out and heads: 1",
                    spec("h", sequential(attention: "heads: 1, causal: true, rotary: true"))))
        all.append(("rotary_fraction = 0 (no rotary op at all)", spec("r0", rotaryFraction: "0.0", sequential())))
        all.append(("final_norm = affine", spec("fa", header: "final_norm = affine", sequential())))
        all.append(("final_norm = plain, tie_embeddings = false", spec("u", header: "final_norm = plain\n    tie_embeddings = false", sequential())))
        all.append(("final_norm = affine, tie_embeddings = false, norm_eps = 1e-3",
                    spec("au", header: "final_norm = affine\n    tie_embeddings = false\n    norm_eps = 1e-3", sequential())))
        all.append(("parallel attention + MLP block", spec("p", """
                h = layernorm(x)
                a = attention(pattention(h, site: attention.query, tokens: 24), pattention(h, site: attention.key, tokens: 24),
                              pattention(h, site: attention.value, tokens: 24), heads: heads)
                return x + pattention(a, site: attention.proj, tokens: 16) + pattention(h, site: mlp, tokens: 56)
            """)))
        all.append(("parallel, non-causal, no rotary, add(...) spelling", spec("pn", header: "final_norm = affine", """
                h = layernorm(x)
                a = attention(pattention(h, site: attention.query, tokens: 24), pattention(h, site: attention.key, tokens: 24),
                              pattention(h, site: attention.value, tokens: 24), heads: heads, causal: false, rotary: false)
                return add(add(x, pattention(a, site: attention.proj, tokens: 16)), pattention(h, site: mlp, tokens: 56))
            """)))
        all.append(("two Pattentions in a row with out:, statements out of order", spec("two", """
                x2 = x1 + pattention(up, site: mlp.down, tokens: 32)
                up = pattention(h1, site: mlp.up, tokens: 32, out: 2 * hidden)
                h1 = layernorm(x1)
                x1 = x + pattention(a, site: attention.proj, tokens: 20)
                a = attention(q, k, v, heads: heads)
                q = pattention(h, site: attention.query, tokens: 24, out: 24)
                k = pattention(h, site: attention.key, tokens: 24, out: 24)
                v = pattention(h, site: attention.value, tokens: 24, out: 24)
                h = layernorm(x)
                return x2
            """)))
        // Unfusable shapes: attention straight on the normalised stream (standalone rotary on a
        // LayerNorm output), and an attention output added without a projection (standalone add).
        all.append(("attention over layernorm(x) itself, added directly", spec("raw", """
                h = layernorm(x)
                x1 = x + attention(h, h, h, heads: heads)
                return x1 + pattention(layernorm(x1), site: mlp, tokens: 40)
            """)))
        all.append(("the same, non-causal", spec("rawn", """
                h = layernorm(x)
                x1 = x + attention(h, h, h, heads: heads, causal: false)
                return x1 + pattention(layernorm(x1), site: mlp, tokens: 40)
            """)))
        return all
    }

    func graph(_ text: String) throws -> Graph {
        let source = SourceFile(path: "construct.tfs", text: text)
        return try lower(try parse(source), source: source)
    }

    /// Random weights, with the affine final norm's constant init (1, 0) replaced by random values
    /// so that ignoring it could not pass.
    func weights(_ g: Graph) -> RandomWeights {
        let w = RandomWeights(g, seed: 11)
        for (name, buffer) in w.storage where name.hasPrefix("final_norm") {
            for i in buffer.indices { buffer[i] = name.hasSuffix("weight") ? 1 + 0.3 * Float(sin(Double(i))) : 0.2 * Float(cos(Double(i))) }
        }
        return w
    }

    func tokens(_ count: Int, offset: Int = 0) -> [Int32] { (0..<count).map { Int32(($0 + offset) * 37 % 67) } }

    func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(b.map(abs).max() ?? 1, 1e-3)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    func testEveryConstructAgreesOrIsRefused() throws {
        var reached = Set<FusedKernel>()
        for (what, text) in Self.constructs {
            let g = try graph(text)
            let fused = try PassPipeline.fusion.run(g)
            let decisions = fused.instructions.map { FusedCapabilities.decide($0.op) }
            reached.formUnion(decisions.compactMap(\.kernel))
            let w = weights(g)
            if let refusal = decisions.first(where: { $0.kernel == nil }), case .refused(let reason) = refusal {
                XCTAssertThrowsError(try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache), what) { error in
                    XCTAssertEqual((error as? FusedCapabilityError)?.reason, reason, "\(what): \(error)")
                }
                continue
            }
            // Fresh sequences of 1, 7 and context tokens, then one continued over the KV cache.
            for (chunks, label) in [([1], "T=1"), ([7], "T=7"), ([Self.context], "T=context"), ([5, 1, 3], "5+1+3 over the cache")] {
                let naive = NaiveExecutor(graph: g, weights: w.lookup, threads: 2)
                let fusedRun = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache)
                var offset = 0
                for count in chunks {
                    let ids = tokens(count, offset: offset)
                    offset += count
                    let n = naive.forward(ids), f = fusedRun.forward(ids)
                    XCTAssertTrue(n.data.allSatisfy(\.isFinite), "\(what) \(label): naive logits are finite")
                    let d = relativeDifference(f.data, n.data)
                    XCTAssertLessThanOrEqual(d, 1e-4, "\(what) \(label): fused vs naive")
                }
            }
        }
        XCTAssertEqual(reached, Set(FusedKernel.allCases), "the constructs reach every kernel of the capability table")
    }

    /// Non-causal attention really is non-causal on the fused backend: a later token changes an
    /// earlier row's logits (and does not when causal).
    func testNonCausalRowsSeeLaterTokens() throws {
        for causal in [true, false] {
            let g = try graph(Self.spec("c", Self.sequential(attention: "heads: heads, causal: \(causal)")))
            let w = weights(g)
            var ids = tokens(6)
            let first = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache).forward(ids)
            ids[5] = (ids[5] + 1) % 67
            let second = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache).forward(ids)
            let row0Changed = zip(first.row(0), second.row(0)).contains { $0 != $1 }
            XCTAssertEqual(row0Changed, !causal, "causal: \(causal): row 0 depends on token 5 only when non-causal")
        }
    }

    /// A pass never forms what the table refuses: an affine LayerNorm before a Pattention (IR only;
    /// the spec language's block LayerNorm is plain) stays a separate kernel, and both backends agree.
    func testPassesAskTheTable() throws {
        var g = try graph(Self.spec("af", header: "final_norm = affine", Self.sequential()))
        let affine = LayerNormOp(eps: 1e-5, affine: (weight: "final_norm.weight", bias: "final_norm.bias"))
        let first = g.instructions.firstIndex { if case .layerNorm = $0.op { return true } else { return false } }!
        g.instructions[first].op = .layerNorm(affine)
        try g.verify()
        let fused = try PassPipeline.fusion.run(g)
        XCTAssertTrue(fused.instructions.contains { $0.op == .layerNorm(affine) }, "the affine LayerNorm is not folded into a prologue")
        for inst in fused.instructions {
            if case .fusedPattention(let f) = inst.op { XCTAssertNil(f.prologue?.affine) }
            XCTAssertNotNil(FusedCapabilities.decide(inst.op).kernel, "\(inst.op.name) is lowered")
        }
        let w = weights(g)
        let ids = tokens(9)
        let n = NaiveExecutor(graph: g, weights: w.lookup, threads: 2).forward(ids)
        let f = try FusedExecutor(graph: g, weights: w.lookup, threads: 2, cache: Self.cache).forward(ids)
        XCTAssertLessThanOrEqual(relativeDifference(f.data, n.data), 1e-4)
    }

    /// The table's refusals reach the user as a located error from `ModelProgram` (used by the
    /// JIT, `tfc compile` and the bench alike): an affine LayerNorm prologue, which the
    /// LayerNorm-prologue pass never forms because it asks the same table.
    func testRefusedOpsStopTheProgramWithTheTablesReason() throws {
        var g = try PassPipeline.fusion.run(try graph(Self.spec("f", header: "final_norm = affine", Self.sequential())))
        let i = g.instructions.firstIndex { if case .fusedPattention = $0.op { return true } else { return false } }!
        guard case .fusedPattention(var f) = g.instructions[i].op else { return XCTFail() }
        f.prologue = LayerNormOp(eps: 1e-5, affine: (weight: "final_norm.weight", bias: "final_norm.bias"))
        g.instructions[i].op = .fusedPattention(f)
        let location = try XCTUnwrap(g.instructions[i].location)
        guard case .refused(let reason) = FusedCapabilities.decide(g.instructions[i].op) else { return XCTFail("the table must refuse it") }
        XCTAssertEqual(reason, "an affine LayerNorm is not a Pattention prologue (the kernel's prologue is the non-parametric LayerNorm)")
        XCTAssertThrowsError(try ModelProgram(fused: g, into: try KernelModule(name: "refused"))) { error in
            XCTAssertEqual("\(error)", "\(location): error: the fused backend cannot run fused_pattention: \(reason); use --backend naive")
        }
        // Residual and rotary on one site; a rotary epilogue narrower than its site.
        let rotary = RotaryOp(heads: 3, headDim: 16, rotaryDims: 8, base: 10000)
        let site = PattentionOp(site: "mlp", layer: 0, tokens: 4, inFeatures: 48, outFeatures: 48, norm: .l2NormGelu, scale: nil)
        XCTAssertEqual(FusedCapabilities.decide(.fusedPattention(FusedPattentionOp(prologue: nil, sites: [site], rotary: [rotary], residual: true))),
                       .refused("site layers.0.mlp has both a rotary and a residual epilogue"))
        let narrow = RotaryOp(heads: 2, headDim: 16, rotaryDims: 8, base: 10000)
        XCTAssertEqual(FusedCapabilities.decide(.fusedPattention(FusedPattentionOp(prologue: nil, sites: [site], rotary: [narrow], residual: false))),
                       .refused("the rotary epilogue of layers.0.mlp covers 32 columns of 48"))
        var huge = site
        huge.scale = 1e39
        XCTAssertEqual(FusedCapabilities.decide(.pattention(huge)), .refused("scale 1e+39 of layers.0.mlp does not fit in float32"))
    }

    /// Generation is refused for a non-causal model on both backends' behalf (the KV cache would
    /// be stale), and allowed for a causal one.
    func testIncrementalDecodingRefusal() throws {
        let causal = try graph(Self.spec("c", Self.sequential()))
        XCTAssertNil(causal.incrementalDecodingRefusal)
        let text = Self.spec("n", Self.sequential(attention: "heads: heads, causal: false"))
        let refusal = try XCTUnwrap(try graph(text).incrementalDecodingRefusal)
        XCTAssertEqual(refusal.location?.description, "construct.tfs:15:9")
        XCTAssertTrue(refusal.message.hasPrefix("attention %"), refusal.message)
        XCTAssertTrue(refusal.message.contains("is non-causal (causal: false): decoding with a KV cache would not compute this model"), refusal.message)
    }
}
