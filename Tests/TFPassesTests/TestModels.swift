import Foundation
import TFIR
import TFSpec
import TFWeights

/// Spec files and in-memory random weights for pass tests.
enum TestModels {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func graph(_ relativePath: String) throws -> Graph {
        let source = try SourceFile.load(root.appendingPathComponent(relativePath).path)
        return try lower(try parse(source), source: source)
    }

    static func graph(text: String) throws -> Graph {
        let source = SourceFile(path: "test.tfs", text: text)
        return try lower(try parse(source), source: source)
    }
}

/// Parameters of a graph drawn like `tfc init` does, held in memory for the test's lifetime.
final class RandomWeights {
    private var storage: [String: UnsafeMutableBufferPointer<Float>] = [:]

    init(_ graph: Graph, seed: UInt64 = 1) {
        for p in graph.parameters {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.elementCount)
            switch p.initialization {
            case .normal(let std):
                WeightInit.fill(buffer, for: TensorSpec(name: p.name, shape: p.shape, initStd: Float(std)), seed: seed)
            case .constant(let v):
                buffer.initialize(repeating: Float(v))
            }
            storage[p.name] = buffer
        }
    }

    deinit { storage.values.forEach { $0.deallocate() } }

    func lookup(_ name: String) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(storage[name]!) }

    /// Mutable access, for tests that zero a tensor.
    subscript(name: String) -> UnsafeMutableBufferPointer<Float> { storage[name]! }
}

func maxAbsDifference(_ a: Matrix, _ b: Matrix) -> Float {
    precondition(a.rows == b.rows && a.columns == b.columns)
    return zip(a.data, b.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
