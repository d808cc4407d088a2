import TFIR
import TFWeights

/// Test support: a graph's parameters drawn as `tfc init` draws them (optionally scaled), held in
/// stable memory for the executors' lookups, and mutable for tests that zero a tensor.
public final class RandomWeights {
    public private(set) var storage: [String: UnsafeMutableBufferPointer<Float>] = [:]

    public init(_ graph: Graph, seed: UInt64 = 1, scale: Float = 1) {
        for p in graph.parameters {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: p.elementCount)
            switch p.initialization {
            case .normal(let std):
                WeightInit.fill(buffer, for: TensorSpec(name: p.name, shape: p.shape, initStd: Float(std) * scale), seed: seed)
            case .constant(let v):
                buffer.initialize(repeating: Float(v))
            }
            storage[p.name] = buffer
        }
    }

    deinit { storage.values.forEach { $0.deallocate() } }

    public func lookup(_ name: String) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(storage[name]!) }

    public subscript(name: String) -> UnsafeMutableBufferPointer<Float> { storage[name]! }
}

/// The largest elementwise difference of two equally shaped matrices.
public func maxAbsDifference(_ a: Matrix, _ b: Matrix) -> Float {
    precondition(a.rows == b.rows && a.columns == b.columns)
    return zip(a.data, b.data).reduce(0) { max($0, abs($1.0 - $1.1)) }
}
