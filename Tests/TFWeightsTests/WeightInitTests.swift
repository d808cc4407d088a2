import Foundation
import XCTest
@testable import TFWeights

final class WeightInitTests: XCTestCase {
    let specs = [
        TensorSpec(name: "embed.weight", shape: [1000, 300], initStd: 0.02),
        TensorSpec(name: "layers.0.mlp.value_param_tokens", shape: [1001, 301], initStd: 0.0025),  // odd count
        TensorSpec(name: "zeros", shape: [7], initStd: 0),
    ]

    func testDeterministicPerSeedAndDifferentAcrossSeeds() {
        let a = WeightInit.values(for: specs[0], seed: 42)
        XCTAssertEqual(a, WeightInit.values(for: specs[0], seed: 42))
        let b = WeightInit.values(for: specs[0], seed: 43)
        XCTAssertNotEqual(a, b)
        XCTAssertLessThan(zip(a, b).filter { $0 == $1 }.count, 10)
        // Another tensor name under the same seed is another stream.
        let renamed = TensorSpec(name: "other", shape: specs[0].shape, initStd: 0.02)
        XCTAssertNotEqual(a, WeightInit.values(for: renamed, seed: 42))
    }

    func testSampleStatisticsMatchTheSpec() {
        for spec in specs.prefix(2) {
            let v = WeightInit.values(for: spec, seed: 7).map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
            XCTAssertEqual(std, Double(spec.initStd), accuracy: 0.02 * Double(spec.initStd), spec.name)
            XCTAssertEqual(mean, 0, accuracy: 0.01 * Double(spec.initStd), spec.name)
            XCTAssertTrue(v.allSatisfy(\.isFinite))
        }
        XCTAssertEqual(WeightInit.values(for: specs[2], seed: 7), Array(repeating: 0, count: 7))
    }

    func testFileEqualsInMemoryValuesAndIsStreamedInChunks() throws {
        let dir = try makeTemporaryDirectory(self)
        // Larger than one chunk, with an odd size, so chunk boundaries are exercised.
        let big = TensorSpec(name: "big", shape: [WeightInit.chunk * 2 + 3], initStd: 1)
        try WeightInit.write(specs + [big], seed: 5, to: dir + "/init.safetensors", metadata: ["model": "tiny"])
        let file = try WeightFile(path: dir + "/init.safetensors")
        XCTAssertEqual(file.metadata, ["model": "tiny", "tfc.init.seed": "5"])
        try file.validate(against: specs + [big])
        for spec in specs + [big] {
            XCTAssertEqual(file.tensor(spec.name)!.values, WeightInit.values(for: spec, seed: 5), spec.name)
        }
    }

    func testKnownValuesPinTheStream() {
        // Pins the generator: a change to splitmix64, Box–Muller or the per-name seeding shows up here.
        let v = WeightInit.values(for: TensorSpec(name: "x", shape: [4], initStd: 1), seed: 0)
        XCTAssertEqual(v.map(\.bitPattern), [1067687577, 3206908520, 1067251019, 1057673036])
    }

    func testMatchesTheDocumentedAlgorithmInPython() throws {
        // An independent implementation of the documented stream (FNV-1a name hash, splitmix64,
        // Box–Muller with libm's log/cos/sin) agrees to within one float ulp.
        let spec = TensorSpec(name: "layers.3.attention.query.key_param_tokens", shape: [1001], initStd: 0.02)
        let swift = WeightInit.values(for: spec, seed: 1234)
        let out = try runPython("""
        import math, sys, numpy as np
        M = (1 << 64) - 1
        def mix(z):
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            return z ^ (z >> 31)
        name, seed, n, std = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        h = 0xcbf29ce484222325
        for b in name.encode():
            h = ((h ^ b) * 0x100000001b3) & M
        state = mix(seed ^ h)
        def nxt():
            global state
            state = (state + 0x9E3779B97F4A7C15) & M
            return mix(state)
        out = []
        while len(out) < n:
            u1 = ((nxt() >> 11) + 1) * 2.0 ** -53
            u2 = (nxt() >> 11) * 2.0 ** -53
            r = math.sqrt(-2 * math.log(u1)) * std
            out += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
        print(' '.join(str(int(x)) for x in np.array(out[:n], dtype=np.float32).view(np.int32)))
        """, [spec.name, "1234", "\(spec.count)", "\(Double(spec.initStd))"])
        let python = out.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Int32($0)! }
        XCTAssertEqual(python.count, swift.count)
        let farApart = zip(swift, python).filter { abs(Int64(Int32(bitPattern: $0.bitPattern)) - Int64($1)) > 1 }
        XCTAssertEqual(farApart.count, 0)
    }
}
