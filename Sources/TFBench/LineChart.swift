import Foundation

/// Lines of (x, y) points written as SVG by hand, with BarChart's scale, number format and
/// escaping: axes, ticks, grid, a legend, optional dashed reference lines (a horizontal target,
/// a vertical event). Used for the growth experiment's held-out loss against training FLOPs.
public struct LineChart {
    public struct Series {
        public var label: String
        public var colour: String
        public var points: [(x: Double, y: Double)]
        /// Dashed, for a series that is meant to coincide with another (it stays visible on top).
        public var dashed: Bool
        public init(label: String, colour: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.label = label; self.colour = colour; self.points = points; self.dashed = dashed
        }
    }

    public struct Reference {
        public enum Axis { case x, y }
        public var axis: Axis
        public var value: Double
        public var label: String
        public init(axis: Axis, value: Double, label: String) { self.axis = axis; self.value = value; self.label = label }
    }

    public var title: String
    public var subtitle: String
    public var xUnit: String
    public var yUnit: String
    public var series: [Series]
    public var references: [Reference]

    public init(title: String, subtitle: String, xUnit: String, yUnit: String, series: [Series], references: [Reference] = []) {
        self.title = title; self.subtitle = subtitle; self.xUnit = xUnit; self.yUnit = yUnit; self.series = series; self.references = references
    }

    func dash(_ s: Series) -> String { s.dashed ? #" stroke-dasharray="7,5""# : "" }

    static let referenceColour = "#888888", gridColour = "#e3e3e3", axisColour = "#333333"

    public var svg: String {
        let width = 760.0, left = 70.0, right = 20.0, top = 70.0, plotHeight = 360.0
        let legendTop = top + plotHeight + 50, height = legendTop + 20 * Double(series.count) + 10
        let plotRight = width - right, baseline = top + plotHeight
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = points.map(\.x) + references.filter { $0.axis == .x }.map(\.value)
        let ys = points.map(\.y) + references.filter { $0.axis == .y }.map(\.value)
        let (xTop, xStep) = niceScale(xs.max() ?? 1)
        let (yLow, yHigh, yStep) = niceRange(ys.min() ?? 0, ys.max() ?? 1)
        func px(_ x: Double) -> Double { left + (plotRight - left) * x / xTop }
        func py(_ y: Double) -> Double { baseline - plotHeight * (y - yLow) / (yHigh - yLow) }

        var out: [String] = []
        out.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="Helvetica, Arial, sans-serif">"#)
        out.append(#"<rect x="0" y="0" width="\#(fmt(width))" height="\#(fmt(height))" fill="white"/>"#)
        out.append(svgText(title, x: 20, y: 28, size: 18, weight: "bold"))
        out.append(svgText(subtitle, x: 20, y: 48, size: 12, fill: "#444"))
        var tick = yLow
        while tick <= yHigh + yStep / 2 {
            let y = py(tick)
            out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(y))" x2="\#(fmt(plotRight))" y2="\#(fmt(y))" stroke="\#(Self.gridColour)"/>"#)
            out.append(svgText(tickLabel(tick, step: yStep), x: left - 8, y: y + 4, size: 11, anchor: "end"))
            tick += yStep
        }
        tick = 0
        while tick <= xTop + xStep / 2 {
            let x = px(tick)
            out.append(#"<line x1="\#(fmt(x))" y1="\#(fmt(top))" x2="\#(fmt(x))" y2="\#(fmt(baseline))" stroke="\#(Self.gridColour)"/>"#)
            out.append(svgText(tickLabel(tick, step: xStep), x: x, y: baseline + 16, size: 11, anchor: "middle"))
            tick += xStep
        }
        out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(top))" x2="\#(fmt(left))" y2="\#(fmt(baseline))" stroke="\#(Self.axisColour)" stroke-width="1.2"/>"#)
        out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(baseline))" x2="\#(fmt(plotRight))" y2="\#(fmt(baseline))" stroke="\#(Self.axisColour)" stroke-width="1.2"/>"#)
        out.append(svgText(xUnit, x: (left + plotRight) / 2, y: baseline + 36, size: 12, anchor: "middle"))
        let cy = top + plotHeight / 2
        out.append(#"<text x="\#(fmt(left - 48))" y="\#(fmt(cy))" font-size="12" text-anchor="middle" transform="rotate(-90 \#(fmt(left - 48)) \#(fmt(cy)))">\#(escape(yUnit))</text>"#)
        for r in references {
            let (x1, y1, x2, y2, lx, ly, anchor) = r.axis == .y
                ? (left, py(r.value), plotRight, py(r.value), plotRight - 4, py(r.value) - 5, "end")
                : (px(r.value), top, px(r.value), baseline, px(r.value) + 4, top + 12, "start")
            out.append(#"<line x1="\#(fmt(x1))" y1="\#(fmt(y1))" x2="\#(fmt(x2))" y2="\#(fmt(y2))" stroke="\#(Self.referenceColour)" stroke-width="1.2" stroke-dasharray="5,4"/>"#)
            out.append(svgText(r.label, x: lx, y: ly, size: 11, anchor: anchor, fill: "#555"))
        }
        // The first series is drawn last, on top (the baselines over the grown runs' shared start).
        for s in series.reversed() {
            let path = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }.joined(separator: " ")
            out.append(#"<polyline fill="none" stroke="\#(s.colour)" stroke-width="2"\#(dash(s)) points="\#(path)"><title>\#(escape(s.label))</title></polyline>"#)
        }
        for (index, s) in series.enumerated() {
            let ly = legendTop + 20 * Double(index)
            out.append(#"<line x1="20" y1="\#(fmt(ly - 4))" x2="50" y2="\#(fmt(ly - 4))" stroke="\#(s.colour)" stroke-width="2"\#(dash(s))/>"#)
            out.append(svgText(s.label, x: 58, y: ly, size: 12))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}

/// An axis from at most `low` to at least `high` in steps of 1, 2 or 5 × 10ᵏ (about 5 ticks).
func niceRange(_ low: Double, _ high: Double) -> (low: Double, high: Double, step: Double) {
    guard low.isFinite, high.isFinite, high > low else { return (low.isFinite ? low - 1 : 0, low.isFinite ? low + 1 : 1, 0.5) }
    let raw = (high - low) / 5
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    return (floor(low / step) * step, ceil(high / step) * step, step)
}
