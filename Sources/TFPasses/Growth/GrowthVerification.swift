import TFIR

/// Runs an original and a grown model on the same tokens and measures how far the logits moved.
/// Written against `ModelExecutor`, so any backend can be checked.
public struct GrowthComparison: Equatable, Sendable {
    /// max |logits_new − logits_old| over every position and vocabulary entry (NaN if either is).
    public var maxAbsDifference: Float
    /// max |logits_old|, for scale.
    public var maxAbsLogit: Float
    /// Positions whose top-1 token is the same in both.
    public var top1Agreement: Int
    public var positions: Int

    /// Resets both executors, runs `tokens` (one prefill) and compares.
    public static func compare(_ old: any ModelExecutor, _ new: any ModelExecutor, tokens: [Int32]) -> GrowthComparison {
        old.reset()
        new.reset()
        let a = old.forward(tokens), b = new.forward(tokens)
        precondition(a.rows == b.rows && a.columns == b.columns, "the models' logits have different shapes")
        var difference: Float = 0, largest: Float = 0
        var agree = 0
        var notANumber = false
        for row in 0..<a.rows {
            var bestA = 0, bestB = 0
            for j in 0..<a.columns {
                let x = a.data[row * a.columns + j], y = b.data[row * b.columns + j]
                let d = abs(x - y)
                if d.isNaN { notANumber = true } else if d > difference { difference = d }
                largest = max(largest, abs(x))
                if x > a.data[row * a.columns + bestA] { bestA = j }
                if y > b.data[row * b.columns + bestB] { bestB = j }
            }
            if bestA == bestB { agree += 1 }
        }
        return GrowthComparison(maxAbsDifference: notANumber ? .nan : difference, maxAbsLogit: largest, top1Agreement: agree, positions: a.rows)
    }

    /// `count` token ids in `0..<vocab` from a fixed generator (splitmix64 of `seed`).
    public static func sampleTokens(count: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var state = seed &+ 0x9e37_79b9_7f4a_7c15
        return (0..<count).map { _ in
            state = state &+ 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            return Int32(z % UInt64(vocab))
        }
    }
}
