import Foundation

/// `DIR/loss.svg`, written at the end of a run: the training loss per step as a line and the
/// held-out losses as dots, on shared axes (step, nats).
public enum LossCurve {
    public static let fileName = "loss.svg"

    public static func svg(_ log: TrainingLog, title: String) -> String {
        let width = 640.0, height = 360.0, left = 56.0, right = 16.0, top = 32.0, bottom = 40.0
        let rows = log.rows
        let losses = rows.map(\.loss) + rows.compactMap(\.heldOutLoss)
        let lowest = (losses.min() ?? 0).rounded(.down), highest = max((losses.max() ?? 1).rounded(.up), lowest + 1)
        let firstStep = Double(rows.first?.step ?? 0), lastStep = Double(max(rows.last?.step ?? 1, (rows.first?.step ?? 0) + 1))
        func x(_ step: Int) -> Double { left + (Double(step) - firstStep) / (lastStep - firstStep) * (width - left - right) }
        func y(_ loss: Double) -> Double { top + (highest - loss) / (highest - lowest) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func escaped(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(f(left))\" y=\"20\">\(escaped(title)): training loss (line), held-out loss (dots), nats per token</text>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(height - bottom))\" x2=\"\(f(width - right))\" y2=\"\(f(height - bottom))\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(height - bottom))\" stroke=\"black\"/>\n"
        for loss in stride(from: lowest, through: highest, by: max(1, ((highest - lowest) / 5).rounded(.up))) {
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(y(loss) + 4))\" text-anchor=\"end\">\(Int(loss))</text>\n"
        }
        out += "<text x=\"\(f(left))\" y=\"\(f(height - bottom + 16))\">\(Int(firstStep))</text>\n"
        out += "<text x=\"\(f(width - right))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"end\">step \(Int(lastStep))</text>\n"
        let points = rows.map { "\(f(x($0.step))),\(f(y($0.loss)))" }.joined(separator: " ")
        out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
        for r in rows { if let h = r.heldOutLoss { out += "<circle cx=\"\(f(x(r.step)))\" cy=\"\(f(y(h)))\" r=\"4\" fill=\"#d62728\"/>\n" } }
        out += "</svg>\n"
        return out
    }

    public static func write(_ log: TrainingLog, title: String, to directory: String) throws {
        let path = directory + "/" + fileName
        try TrainingFile.write(svg(log, title: title), to: path)
    }
}
