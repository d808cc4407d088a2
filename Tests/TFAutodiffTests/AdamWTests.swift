import XCTest
import TFTraining
import TFCodegen
import TFIR
import TFSpec
import TFAutodiff
import TFTestSupport

/// AdamW against the update written out from PyTorch's `torch.optim.AdamW` documentation, in
/// double precision, over several steps with weight decay and clipping.
final class AdamWTests: XCTestCase {
    func testMatchesTheDocumentedUpdate() {
        let options = AdamWOptions(beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, clipNorm: 0.5)
        var random = TestRandom(state: 9)
        let w0 = random.array(6)
        let w = UnsafeMutableBufferPointer<Float>.allocate(capacity: 6), m = UnsafeMutableBufferPointer<Float>.allocate(capacity: 6)
        let v = UnsafeMutableBufferPointer<Float>.allocate(capacity: 6)
        defer { w.deallocate(); m.deallocate(); v.deallocate() }
        _ = w.initialize(from: w0); m.initialize(repeating: 0); v.initialize(repeating: 0)
        var rw = w0.map(Double.init), rm = [Double](repeating: 0, count: 6), rv = rm
        for t in 1...5 {
            let g = random.array(6, scale: 2)
            let lr = 0.01 * Double(t)
            let norm = AdamW.globalNorm([g])
            let scale = AdamW.clipScale(norm: norm, options)
            AdamW.update(w, gradient: g, scale: scale, m: m, v: v, step: t, lr: lr, decay: true, options)
            // Reference: clip to norm 0.5, θ ← θ − γλθ, m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g²,
            // θ ← θ − γ m/(1−β1ᵗ) / (√(v/(1−β2ᵗ)) + ε).
            let n = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let clipped = g.map { Double($0) * (n > 0.5 ? 0.5 / n : 1) }
            for i in 0..<6 {
                rw[i] -= lr * 0.1 * rw[i]
                rm[i] = 0.9 * rm[i] + 0.1 * clipped[i]
                rv[i] = 0.95 * rv[i] + 0.05 * clipped[i] * clipped[i]
                rw[i] -= lr * (rm[i] / (1 - pow(0.9, Double(t)))) / ((rv[i] / (1 - pow(0.95, Double(t)))).squareRoot() + 1e-8)
            }
            XCTAssertGreaterThan(norm, 0.5, "the clip is exercised")
        }
        for i in 0..<6 { XCTAssertEqual(Double(w[i]), rw[i], accuracy: 1e-5) }
        XCTAssertGreaterThan(zip(w, w0).map { abs(Double($0) - Double($1)) }.max()!, 0.01, "the weights moved")
    }

    /// The global norm's interleaved partial sums against one running double sum, over tensors
    /// whose lengths are not multiples of the 8 partial sums.
    func testGlobalNormMatchesARunningSum() {
        var random = TestRandom(state: 3)
        let tensors = [1003, 7, 8, 4096, 1].map { random.array($0, scale: 3) }
        var sum = 0.0
        for t in tensors { for x in t { sum += Double(x) * Double(x) } }
        XCTAssertEqual(AdamW.globalNorm(tensors), sum.squareRoot(), accuracy: 1e-12 * sum.squareRoot())
        XCTAssertEqual(AdamW.globalNorm([[Float]]()), 0)
    }

    func testScheduleWarmsUpThenDecays() {
        let s = LearningRate(peak: 1, warmup: 4, steps: 20)
        XCTAssertEqual(s.at(1), 0.25, accuracy: 1e-12)
        XCTAssertEqual(s.at(4), 1, accuracy: 1e-12)
        XCTAssertEqual(s.at(20), 0.1, accuracy: 1e-12)
        XCTAssertEqual(s.at(12), 0.55, accuracy: 1e-12)
    }

    /// A schedule begun afresh after step 100 (a grown checkpoint): steps 101...120 follow the
    /// shape steps 1...20 had.
    func testScheduleStartedAfterAStep() {
        let s = LearningRate(peak: 1, warmup: 4, steps: 120, start: 100)
        XCTAssertEqual(s.at(101), 0.25, accuracy: 1e-12)
        XCTAssertEqual(s.at(104), 1, accuracy: 1e-12)
        XCTAssertEqual(s.at(112), 0.55, accuracy: 1e-12)
        XCTAssertEqual(s.at(120), 0.1, accuracy: 1e-12)
    }
}

/// The generated AdamW kernel (the fused trainer's) gives the host update's bits, for every
/// vector target this CPU runs.
final class AdamWKernelTests: XCTestCase {
    func testSameBitsAsTheHostUpdate() throws {
        let runnable = VectorTarget.runnable()
        XCTAssertTrue(runnable.contains(.avx2))
        for vector in runnable { try sameBitsAsTheHostUpdate(vector) }
        // Three chunks of the parallel kernel, the last partial, on two threads.
        try sameBitsAsTheHostUpdate(.avx2, count: 40_003, threads: 2)
    }

    func sameBitsAsTheHostUpdate(_ vector: VectorTarget, count: Int = 1003, threads: Int = 1) throws {
        let source = try SourceFile.load(DifferentiateTests.root.appendingPathComponent("specs/tiny.tfs").path)
        let graph = try lower(try parse(source), source: source)
        let weights = RandomWeights(graph, seed: 3)
        let fused = try FusedGradient(grad: try differentiate(graph), weights: weights.lookup, threads: threads, vector: vector)
        let options = AdamWOptions(weightDecay: 0.1, clipNorm: 1)
        var random = TestRandom(state: 5)
        let w0 = random.array(count)
        var states: [[UnsafeMutableBufferPointer<Float>]] = []
        for _ in 0..<2 {
            let s = (0..<3).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: count) }
            _ = s[0].initialize(from: w0); s[1].initialize(repeating: 0); s[2].initialize(repeating: 0)
            states.append(s)
        }
        defer { states.joined().forEach { $0.deallocate() } }
        for step in 1...4 {
            let g = random.array(count, scale: 3)
            for decay in [true, false] {
                AdamW.update(states[0][0], gradient: g, scale: 0.7, m: states[0][1], v: states[0][2], step: step, lr: 0.01, decay: decay, options)
                fused.adamW(states[1][0], gradient: g, scale: 0.7, m: states[1][1], v: states[1][2], step: step, lr: 0.01, decay: decay, options)
            }
        }
        for k in 0..<3 { XCTAssertEqual(Array(states[0][k]).map(\.bitPattern), Array(states[1][k]).map(\.bitPattern), "\(vector.name): tensor \(k)") }
        XCTAssertGreaterThan(zip(states[1][0], w0).map { abs($0 - $1) }.max()!, 0.01, "\(vector.name): the weights moved")
    }

    /// The fused update leaves the backend's kept gradients 0 (the zeroing kernel variant), and the
    /// next step's gradients, which the kernels add into those buffers without zeroing them again,
    /// have the bits of a fresh backend's on the same updated weights.
    func testUpdateZeroesTheKeptGradientsForTheNextStep() throws {
        for vector in VectorTarget.runnable() { try updateZeroesTheKeptGradients(vector) }
    }

    func updateZeroesTheKeptGradients(_ vector: VectorTarget) throws {
        let source = try SourceFile.load(DifferentiateTests.root.appendingPathComponent("specs/tiny.tfs").path)
        let graph = try lower(try parse(source), source: source)
        let grad = try differentiate(graph)
        let weights = RandomWeights(graph, seed: 4)
        let trained = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, vector: vector)
        var random = SplitMix64(seed: 11)
        let windows = (0..<2).map { _ in (0..<3).map { _ in (0..<20).map { _ in Int32(random.next() % UInt64(graph.config.vocab)) } } }
        let (_, first) = trained.runForUpdate(batch: windows[0])
        var moments: [UnsafeMutableBufferPointer<Float>] = []
        defer { moments.forEach { $0.deallocate() } }
        for p in grad.parameters {
            let m = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.elementCount), v = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.elementCount)
            m.initialize(repeating: 0); v.initialize(repeating: 0); moments += [m, v]
            XCTAssertTrue(first.with(p.name) { g in g.contains { $0 != 0 } }, "\(vector.name): \(p.name) has a gradient")
            first.with(p.name) { g in
                trained.adamW(weights[p.name], gradient: g, scale: 0.5, m: m, v: v, step: 1, lr: 0.01, decay: p.shape.count > 1, AdamWOptions(weightDecay: 0.1))
            }
            XCTAssertTrue(first.with(p.name) { g in g.allSatisfy { $0 == 0 } }, "\(vector.name): \(p.name)'s kept gradient is 0 after the update")
        }
        let (_, second) = trained.runForUpdate(batch: windows[1])
        let fresh = try FusedGradient(grad: grad, weights: weights.lookup, threads: 1, vector: vector).run(batch: windows[1])
        for p in grad.parameters {
            XCTAssertEqual(second.with(p.name) { Array($0) }.map(\.bitPattern), fresh.gradients[p.name]!.map(\.bitPattern), "\(vector.name): \(p.name)")
        }
    }
}
