import XCTest

/// A small deterministic generator, so every rule test sees the same numbers.
struct TestRandom {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Double(state >> 11) / Double(1 << 53)) * 2 - 1
    }
    mutating func array(_ count: Int, scale: Float = 1) -> [Float] { (0..<count).map { _ in next() * scale } }
}

/// Checks a backward rule alone against central finite differences of its forward kernel:
/// with `L = Σ dy ⊙ forward(inputs)` for a fixed random `dy`, every element of every input's
/// gradient from `backward(inputs, dy)` must match `(L(x + h) - L(x - h)) / 2h`.
/// Float32 forward kernels: h = 1e-2 keeps rounding (~1e-7·|L|/h) and truncation (~h²) below 1e-3.
func checkRule(_ name: String, inputs: [[Float]], outputCount: Int, seed: UInt64 = 3,
               forward: ([[Float]]) -> [Float], backward: ([[Float]], [Float]) -> [[Float]],
               h: Float = 1e-2, tolerance: Double = 2e-3, file: StaticString = #filePath, line: UInt = #line) {
    var random = TestRandom(state: seed)
    let dy = random.array(outputCount)
    func loss(_ x: [[Float]]) -> Double {
        zip(forward(x), dy).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let gradients = backward(inputs, dy)
    XCTAssertEqual(gradients.count, inputs.count, "\(name): one gradient per input", file: file, line: line)
    var largest = 0.0
    for (i, input) in inputs.enumerated() {
        XCTAssertEqual(gradients[i].count, input.count, "\(name): gradient \(i) shape", file: file, line: line)
        for j in input.indices {
            var plus = inputs, minus = inputs
            plus[i][j] += h; minus[i][j] -= h
            let numeric = (loss(plus) - loss(minus)) / (2 * Double(h))
            largest = max(largest, abs(numeric))
            XCTAssertEqual(Double(gradients[i][j]), numeric, accuracy: tolerance * max(1, abs(numeric)),
                           "\(name): input \(i) element \(j)", file: file, line: line)
        }
    }
    XCTAssertGreaterThan(largest, 1e-2, "\(name): the check is degenerate (all gradients ~0)", file: file, line: line)
}
