import Foundation

/// The loss log, `DIR/loss.csv` and the same rows as `DIR/loss.json`: one row per step (held-out
/// loss where it was evaluated), rewritten whole and atomically with each checkpoint; a resumed run
/// keeps the rows up to its step.
public struct TrainingLog {
    public struct Row: Equatable {
        public var step: Int
        public var loss: Double
        public var learningRate: Double
        public var gradientNorm: Double
        public var heldOutLoss: Double?

        public init(step: Int, loss: Double, learningRate: Double, gradientNorm: Double, heldOutLoss: Double? = nil) {
            self.step = step; self.loss = loss; self.learningRate = learningRate; self.gradientNorm = gradientNorm; self.heldOutLoss = heldOutLoss
        }
    }

    public static let fileName = "loss.csv"
    public static let jsonName = "loss.json"
    static let header = "step,loss,learning_rate,gradient_norm,held_out_loss"
    public var rows: [Row] = []

    public init() {}

    /// The rows of `directory`'s log up to `step` (none if there is no log).
    public init(resumingFrom directory: String, upTo step: Int) {
        guard let text = try? String(contentsOfFile: directory + "/" + Self.fileName, encoding: .utf8) else { return }
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5, let s = Int(f[0]), s <= step, let l = Double(f[1]), let r = Double(f[2]), let g = Double(f[3]) else { continue }
            rows.append(Row(step: s, loss: l, learningRate: r, gradientNorm: g, heldOutLoss: Double(f[4])))
        }
    }

    public var text: String {
        ([Self.header] + rows.map { r in
            "\(r.step),\(r.loss),\(r.learningRate),\(r.gradientNorm),\(r.heldOutLoss.map { "\($0)" } ?? "")"
        }).joined(separator: "\n") + "\n"
    }

    /// `{"steps": [{"step": 1, "loss": …, "learning_rate": …, "gradient_norm": …, "held_out_loss": … or null}, …]}`;
    /// a non-finite number (a diverged run) is null, as JSON has no NaN.
    public var json: String {
        func number(_ x: Double?) -> String { x.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        let rows = rows.map { r in
            "    {\"step\": \(r.step), \"loss\": \(number(r.loss)), \"learning_rate\": \(number(r.learningRate)), \"gradient_norm\": \(number(r.gradientNorm)), \"held_out_loss\": \(number(r.heldOutLoss))}"
        }
        return "{\"steps\": [\n" + rows.joined(separator: ",\n") + (rows.isEmpty ? "" : "\n") + "]}\n"
    }

    public func write(to directory: String) throws {
        try TrainingFile.write(text, to: directory + "/" + Self.fileName)
        try TrainingFile.write(json, to: directory + "/" + Self.jsonName)
    }
}
