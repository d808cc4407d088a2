import Foundation
import TFIR
import TFNaive
import TFWeights

/// The weights a model bench runs on: a checkpoint, or random values in memory (speed does not
/// depend on the values, so `tfc bench model` needs no weight file).
public final class BenchWeights {
    /// Float32 data by checkpoint name, for the executors.
    public let lookup: WeightLookup
    /// The checkpoint, when the weights came from one (e.g. for a backend that maps it itself).
    public let file: WeightFile?
    /// "random (seed N)" or the file's path.
    public let origin: String
    private let owned: [UnsafeMutableBufferPointer<Float>]

    /// A validated checkpoint.
    public init(file: WeightFile) {
        self.file = file
        lookup = { file.tensor($0)!.floats }
        origin = file.path
        owned = []
    }

    /// Every parameter of `graph` initialised in memory exactly as `tfc init --seed seed` would
    /// (each tensor's stream keyed by its name), tensors filled in parallel.
    public init(randomFor graph: Graph, seed: UInt64 = 0) {
        let parameters = graph.parameters
        let buffers = parameters.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.elementCount) }
        // Largest first, so the big embedding does not start last.
        let order = parameters.indices.sorted { parameters[$0].elementCount > parameters[$1].elementCount }
        DispatchQueue.concurrentPerform(iterations: order.count) { i in
            let index = order[i]
            let p = parameters[index]
            switch p.initialization {
            case .normal(let std):
                WeightInit.fill(buffers[index], for: TensorSpec(name: p.name, shape: p.shape, initStd: Float(std)), seed: seed)
            case .constant(let value):
                buffers[index].initialize(repeating: Float(value))
            }
        }
        var byName: [String: UnsafeBufferPointer<Float>] = [:]
        for (p, b) in zip(parameters, buffers) { byName[p.name] = UnsafeBufferPointer(b) }
        lookup = { byName[$0]! }
        file = nil
        origin = "random (seed \(seed))"
        owned = buffers
    }

    deinit { owned.forEach { $0.deallocate() } }
}
