import Foundation

/// Linear warm-up to the peak rate over `warmup` steps, then cosine decay to 10% of it at the
/// last step (the GPT-NeoX recipe's shape). With `start` K the schedule begins afresh after step K
/// (a grown checkpoint continued with its own warm-up and cosine), spanning steps K+1...`steps`.
public struct LearningRate: Equatable, Sendable {
    public var peak: Double
    public var warmup: Int
    public var steps: Int
    public var start: Int

    public init(peak: Double, warmup: Int, steps: Int, start: Int = 0) {
        self.peak = peak; self.warmup = warmup; self.steps = steps; self.start = start
    }

    /// The rate of 1-based step `step`.
    public func at(_ step: Int) -> Double {
        let step = step - start, steps = self.steps - start
        if step <= warmup { return peak * Double(step) / Double(max(warmup, 1)) }
        let span = max(steps - warmup, 1)
        let progress = min(1, Double(step - warmup) / Double(span))
        return peak * (0.1 + 0.9 * 0.5 * (1 + Foundation.cos(Double.pi * progress)))
    }
}
