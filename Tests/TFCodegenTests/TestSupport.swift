import Foundation
import XCTest
@testable import TFCodegen
import TFIR
import TFRuntime
import TFSpec

/// Deterministic pseudo-random floats (xorshift) in [-scale, scale).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// Max |a - b| / max(1e-30, max |b|): error relative to the reference's magnitude.
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var worst = 0.0, mag = 0.0
    for (x, y) in zip(a, b) {
        if !x.isFinite { return .infinity }
        worst = max(worst, abs(Double(x) - y))
        mag = max(mag, abs(y))
    }
    return worst / max(mag, 1e-30)
}

func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
    let old = tfc_get_num_threads()
    tfc_set_num_threads(Int32(n))
    defer { tfc_set_num_threads(old) }
    return try body()
}

/// Reference LayerNorm (non-parametric) of one row, in Double.
func layerNormRow(_ x: ArraySlice<Float>, eps: Double) -> [Double] {
    let v = x.map(Double.init)
    let mean = v.reduce(0, +) / Double(v.count)
    let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)
    let r = 1 / (variance + eps).squareRoot()
    return v.map { ($0 - mean) * r }
}

/// One shared JIT per vector target for the tests' modules.
final class TestJIT {
    /// The vector targets this CPU can execute: kernel tests run each one against the reference
    /// (EmissionTests checks the emitted code of all of them, runnable or not).
    static let runnable: [VectorTarget] = VectorTarget.runnable()
    private static var jits: [VectorTarget: KernelJIT] = [:]
    static func jit(_ vector: VectorTarget) -> KernelJIT {
        if let j = jits[vector] { return j }
        let j = try! KernelJIT(target: .host(vector))
        jits[vector] = j
        return j
    }
    static var shared: KernelJIT { jit(.avx2) }
    static var counter = 0
    /// Compiles `build`'s kernels in a fresh module for `vector` and returns them by symbol.
    static func compile(for vector: VectorTarget = .avx2, _ build: (KernelModule) -> [String]) -> [String: CompiledKernel] {
        counter += 1
        let m = try! KernelModule(name: "test\(counter)", target: .host(vector))
        let names = build(m)
        try! m.verify()
        let j = jit(vector)
        try! j.add(m)
        var out: [String: CompiledKernel] = [:]
        for n in names { out[n] = CompiledKernel(name: n, entry: try! j.kernel(n)) }
        return out
    }
}

extension PattentionKernelSpec {
    /// The same kernel with the schedules `vector`'s cost model chooses.
    func withChosenSchedules(for vector: VectorTarget) -> PattentionKernelSpec {
        PattentionKernelSpec(dIn: dIn, layerNormEps: layerNormEps, sites: sites, ldx: ldx, for: vector)
    }
}

/// Feeds random q/k/v to an attention kernel in `chunks` (prefill then decode steps) on fresh
/// caches and checks each chunk's output against `attentionReference` over the keys and values
/// as the cache should hold them (`cached`: the identity, or bf16 rounding). Returns the caches
/// and the appended rows, for the caller's checks of the cache contents.
func feedAttentionChunks(_ kernel: CompiledKernel, _ spec: AttentionKernelSpec, chunks: [Int], threads: Int, rng: inout TestRandom,
                         cached: ([Float]) -> [Float] = { $0 }, what: String, file: StaticString, line: UInt)
    -> (kc: AlignedBuffer, vc: AlignedBuffer, keys: [[Float]], values: [[Float]]) {
    let D = spec.dModel
    let kc = AlignedBuffer(count: spec.cacheFloats), vc = AlignedBuffer(count: spec.cacheFloats)
    var keys: [[Float]] = [], values: [[Float]] = []
    var p0 = 0
    for T in chunks {
        let q = rng.array(T * D, scale: 2), k = rng.array(T * D, scale: 2), v = rng.array(T * D)
        for t in 0..<T {
            keys.append(Array(k[t * D ..< (t + 1) * D]))
            values.append(Array(v[t * D ..< (t + 1) * D]))
        }
        let Q = AlignedBuffer(q), K = AlignedBuffer(k), V = AlignedBuffer(v), O = AlignedBuffer(count: T * D)
        withThreads(threads) { kernel([Q.raw, K.raw, V.raw, O.raw, kc.raw, vc.raw], rows: T, position: p0) }
        let ref = attentionReference(q: q, keys: keys.map(cached), values: values.map(cached), p0: p0, T: T, spec: spec)
        XCTAssertLessThan(relativeError(O.array, ref), 1e-5, "chunk T=\(T) at p0=\(p0), threads \(threads), \(what)", file: file, line: line)
        p0 += T
    }
    return (kc, vc, keys, values)
}

/// Attention of rows at positions [p0, p0+T) against keys 0...p (Double), p the row's own
/// position (causal) or the chunk's last one (non-causal).
func attentionReference(q: [Float], keys: [[Float]], values: [[Float]], p0: Int, T: Int, spec: AttentionKernelSpec) -> [Double] {
    let D = spec.dModel, Dh = spec.headDim
    var out = [Double](repeating: 0, count: T * D)
    for t in 0..<T {
        let p = spec.causal ? p0 + t : p0 + T - 1
        for h in 0..<spec.heads {
            var s = [Double](repeating: 0, count: p + 1)
            for j in 0...p {
                var acc = 0.0
                for d in 0..<Dh { acc += Double(q[t * D + h * Dh + d]) * Double(keys[j][h * Dh + d]) }
                s[j] = acc / Double(Dh).squareRoot()
            }
            let m = s.max()!
            let e = s.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            for d in 0..<Dh {
                var o = 0.0
                for j in 0...p { o += e[j] / sum * Double(values[j][h * Dh + d]) }
                out[t * D + h * Dh + d] = o
            }
        }
    }
    return out
}


/// The repository's root (specs/ lives there).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The graph of a spec file of the repository (`specs/tiny.tfs`, ...).
func specGraph(_ file: String) throws -> Graph {
    let source = try SourceFile.load(repositoryRoot.appendingPathComponent(file).path)
    return try lower(try parse(source), source: source)
}

/// ‖a − b‖₂ / ‖b‖₂ in double precision.
func relativeRMS(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += (Double(x) - Double(y)) * (Double(x) - Double(y)); den += Double(y) * Double(y) }
    return (num / den).squareRoot()
}
