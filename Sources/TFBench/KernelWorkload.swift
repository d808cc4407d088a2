import TFWeights

/// The data one kernel case runs on, shared by both sides: random inputs, random weights under
/// their checkpoint names, an output buffer and (attention) KV caches. Both sides read the same
/// inputs and write the same output buffer, so their results can be compared after timing.
/// Values do not affect speed; everything is normal(0, 1) except weights, which use their
/// `TensorSpec.initStd`.
public final class KernelWorkload {
    public let kernel: KernelCase
    /// One buffer per operand, `[kernel.rows, kernel.inputWidths[i]]` row-major.
    public let inputs: [UnsafeMutableBufferPointer<Float>]
    /// `[kernel.rows, kernel.outputWidth]` row-major.
    public let output: UnsafeMutableBufferPointer<Float>
    /// Attention only: keys and values `[kernel.position + kernel.rows, width]`, row-major, the
    /// layout of the naive backend's cache. Rows before `kernel.position` hold earlier tokens; a
    /// run writes the new k, v rows (operands 1 and 2) at `kernel.position ..<` and attends to all.
    public let keyCache: UnsafeMutableBufferPointer<Float>?
    public let valueCache: UnsafeMutableBufferPointer<Float>?
    private let weightData: [String: UnsafeMutableBufferPointer<Float>]

    public init(_ kernel: KernelCase, seed: UInt64 = 0) {
        self.kernel = kernel
        inputs = kernel.inputWidths.enumerated().map { index, width in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: kernel.rows * width)
            fillRandom(buffer, seed: seed &+ 101 &+ UInt64(index))
            return buffer
        }
        output = .allocate(capacity: kernel.rows * kernel.outputWidth)
        output.initialize(repeating: 0)
        if let width = kernel.cacheWidth {
            let count = (kernel.position + kernel.rows) * width
            let keys = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            fillRandom(keys, seed: seed &+ 201)
            fillRandom(values, seed: seed &+ 202)
            keyCache = keys
            valueCache = values
        } else {
            keyCache = nil
            valueCache = nil
        }
        var data: [String: UnsafeMutableBufferPointer<Float>] = [:]
        for spec in kernel.weights where data[spec.name] == nil {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: spec.count)
            WeightInit.fill(buffer, for: spec, seed: seed)
            data[spec.name] = buffer
        }
        weightData = data
    }

    deinit {
        inputs.forEach { $0.deallocate() }
        output.deallocate()
        keyCache?.deallocate()
        valueCache?.deallocate()
        weightData.values.forEach { $0.deallocate() }
    }

    /// The weight tensor `name` (one of `kernel.weights`), row-major in its checkpoint shape.
    public func weight(_ name: String) -> UnsafeBufferPointer<Float> {
        guard let buffer = weightData[name] else { preconditionFailure("\(kernel.name) has no weight \(name)") }
        return UnsafeBufferPointer(buffer)
    }
}
