import Foundation
import TFIR
import TFWeights

/// What tfc does about NaN and ±Inf (README "Non-finite values"):
/// - weights are scanned at load and a NaN, ±Inf or a magnitude of 2^64 or more (whose square
///   overflows float32, as in 3e38) is an error naming the file, the tensor and the index, unless
///   `--allow-nonfinite`;
/// - logits that come out non-finite anyway (allowed weights, or a computation that overflowed
///   float32) are a one-line warning on stderr for `run`, and an error for `generate`, which
///   cannot sample from them (it stops instead of printing 0,0,0…).
enum NonFinitePolicy {
    static let flagHelp = "Load weights holding NaN, ±Inf or magnitudes of 2^64 or more instead of refusing them (non-finite logits are still reported)."
    static let hint = "; pass --allow-nonfinite to load it anyway"

    static func count<C: Collection>(_ values: C) -> Int where C.Element == Float {
        values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
    }

    /// `tfc run`: one line on stderr when any logit is NaN or ±Inf.
    static func warnIfNonFinite(_ logits: Matrix) {
        let bad = count(logits.data)
        guard bad > 0 else { return }
        let rows = (0..<logits.rows).filter { count(logits.row($0)) > 0 }
        let message = "warning: \(bad) of \(logits.data.count) logits are not finite (NaN or ±Inf), first in row \(rows[0]) of \(logits.rows): "
            + "the weights hold huge or non-finite values, or the computation overflowed float32"
        FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
    }

    /// `tfc generate`: an error (after the tokens printed so far) when the next token's logits are not finite.
    static func checkForSampling(_ logits: [Float], position: Int) throws {
        let bad = count(logits)
        guard bad > 0 else { return }
        throw UserError("error: generate: \(bad) of \(logits.count) logits at position \(position) are not finite (NaN or ±Inf), so no token can be sampled: "
                        + "the weights hold huge or non-finite values, or the computation overflowed float32")
    }
}

extension WeightFile {
    /// The load-time check, skipped with `--allow-nonfinite`.
    func checkFinite(allowed: Bool) throws {
        if !allowed { try checkFinite(hint: NonFinitePolicy.hint) }
    }
}
