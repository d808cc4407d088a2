import Foundation

/// How close one backend's logits are to a reference's (`tfc bench accuracy`): the relative RMS
/// error over all logits, ‖a − b‖₂ / ‖b‖₂ (b the reference), and the share of rows whose argmax
/// agrees (what greedy decoding would pick). Sums in double precision.
public struct LogitAccuracy: Sendable {
    public var relativeRMS: Double
    public var maxAbsError: Double
    /// Rows whose argmax agrees, out of `rows`.
    public var top1Agreeing: Int
    public var rows: Int
    public var top1Percent: Double { 100 * Double(top1Agreeing) / Double(max(rows, 1)) }

    /// `logits` and `reference` are `[rows, columns]` row-major, the same size.
    public init(_ logits: [Float], reference: [Float], columns: Int) {
        precondition(logits.count == reference.count && columns > 0 && reference.count % columns == 0)
        var difference = 0.0, norm = 0.0, maxAbs = 0.0
        for (a, b) in zip(logits, reference) {
            let d = Double(a) - Double(b)
            difference += d * d
            norm += Double(b) * Double(b)
            maxAbs = max(maxAbs, abs(d))
        }
        relativeRMS = norm > 0 ? (difference / norm).squareRoot() : (difference > 0 ? .infinity : 0)
        maxAbsError = maxAbs
        rows = reference.count / columns
        var agreeing = 0
        for r in 0..<rows {
            let range = r * columns ..< (r + 1) * columns
            if Self.argmax(logits[range]) == Self.argmax(reference[range]) { agreeing += 1 }
        }
        top1Agreeing = agreeing
    }

    /// First index of the largest value (NaN never wins).
    static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for i in row.indices where row[i] > row[best] { best = i }
        return best - row.startIndex
    }
}

/// `tfc bench accuracy`: one row per weight format against the reference.
public struct AccuracyReport: Sendable {
    public struct Row: Sendable {
        public var format: String
        /// Relative RMS the format should stay within (a goal, printed beside the figure), if any.
        public var goal: Double?
        public var accuracy: LogitAccuracy?
        public var error: String?
        /// Perplexity of the held-out text (`--text`), when scored.
        public var perplexity: Double?
        public init(format: String, goal: Double?, accuracy: LogitAccuracy?, error: String? = nil, perplexity: Double? = nil) {
            self.format = format; self.goal = goal; self.accuracy = accuracy; self.error = error; self.perplexity = perplexity
        }
    }

    /// `--text`: how the held-out text was scored, and the reference's perplexity on it.
    public struct HeldOut: Sendable {
        public var file: String
        /// "bytes" or the tokenizer's path.
        public var tokenization: String
        public var tokens: Int
        public var scored: Int
        public var windows: Int
        public var context: Int
        public var referencePerplexity: Double
        public init(file: String, tokenization: String, tokens: Int, scored: Int, windows: Int, context: Int, referencePerplexity: Double) {
            self.file = file; self.tokenization = tokenization; self.tokens = tokens; self.scored = scored; self.windows = windows
            self.context = context; self.referencePerplexity = referencePerplexity
        }

        /// Relative change of `perplexity` against the reference's, in percent.
        public func changePercent(_ perplexity: Double?) -> Double? { perplexity.map { 100 * ($0 / referencePerplexity - 1) } }
    }
    public var spec: String
    public var model: String
    public var weights: String
    public var tokens: Int
    public var reference: String
    public var rows: [Row]
    public var heldOut: HeldOut?

    public init(spec: String, model: String, weights: String, tokens: Int, reference: String, rows: [Row], heldOut: HeldOut? = nil) {
        self.spec = spec; self.model = model; self.weights = weights; self.tokens = tokens; self.reference = reference; self.rows = rows
        self.heldOut = heldOut
    }

    public var text: String {
        var lines = ["tfc bench accuracy: \(model) (\(spec)), weights \(weights), \(tokens) tokens",
                     "reference: \(reference)", ""]
        var table = TextTable([("weights", .left), ("rel RMS", .right), ("goal", .right), ("max |err|", .right), ("top-1 agree", .right)])
        for row in rows {
            guard let a = row.accuracy else {
                table.add([row.format, "error (below)"])
                continue
            }
            let goal = row.goal.map { String(format: "≤ %.1f%%", 100 * $0) + (a.relativeRMS <= $0 ? " ok" : " MISSED") } ?? ""
            table.add([row.format, String(format: "%.3g%%", 100 * a.relativeRMS), goal, String(format: "%.3g", a.maxAbsError),
                       String(format: "%.1f%% (%d/%d)", a.top1Percent, a.top1Agreeing, a.rows)])
        }
        lines.append(table.text)
        lines.append("")
        lines.append("rel RMS = ‖fused − reference‖₂ / ‖reference‖₂ over all logits; top-1 agree: rows whose argmax is the reference's.")
        if let h = heldOut {
            lines.append("")
            lines.append("held-out text \(h.file) (\(h.tokenization)): \(h.tokens) tokens, \(h.scored) scored in \(h.windows) windows of \(h.context)")
            var scores = TextTable([("weights", .left), ("perplexity", .right), ("change", .right), ("nats/token", .right)])
            scores.add(["naive f32", String(format: "%.4f", h.referencePerplexity), "reference", String(format: "%.4f", log(h.referencePerplexity))])
            for row in rows {
                guard let p = row.perplexity else { continue }
                scores.add([row.format, String(format: "%.4f", p), String(format: "%+.3f%%", h.changePercent(p)!), String(format: "%.4f", log(p))])
            }
            lines.append(scores.text)
        }
        for row in rows { if let error = row.error { lines.append("\(row.format): \(error)") } }
        return lines.joined(separator: "\n")
    }

    public var json: [String: Any] {
        ["schema": benchSchema, "kind": "accuracy", "spec": spec, "model": model, "weights": weights, "tokens": tokens, "reference": reference,
         "formats": rows.map { row -> [String: Any] in
             ["format": row.format, "goal_relative_rms": number(row.goal), "relative_rms": number(row.accuracy?.relativeRMS),
              "max_abs_error": number(row.accuracy?.maxAbsError), "top1_agreement_percent": number(row.accuracy?.top1Percent),
              "error": string(row.error), "perplexity": number(row.perplexity),
              "perplexity_change_percent": number(heldOut?.changePercent(row.perplexity))]
         },
         "held_out": heldOut.map { h -> Any in
             ["file": h.file, "tokenization": h.tokenization, "tokens": h.tokens, "scored_tokens": h.scored, "windows": h.windows,
              "context": h.context, "reference_perplexity": number(h.referencePerplexity)] as [String: Any]
         } ?? NSNull()]
    }
}
