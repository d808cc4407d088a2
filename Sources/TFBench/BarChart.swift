import Foundation
import TFCodegen

/// A grouped bar chart written as SVG by hand: per group a naive and a fused bar with their values,
/// an optional reference line (the machine's bound), axes, ticks, labels and a legend. Panels are
/// stacked vertically, each with its own unit and scale.
public struct BarChart {
    public struct Group {
        public var label: String
        public var naive: Double?
        public var fused: Double?
        public init(label: String, naive: Double?, fused: Double?) { self.label = label; self.naive = naive; self.fused = fused }
    }

    public struct Panel {
        public var title: String
        /// Axis label, e.g. "GFLOP/s".
        public var unit: String
        public var groups: [Group]
        /// A horizontal line, e.g. the sgemm peak.
        public var reference: (value: Double, label: String)?
        public init(title: String, unit: String, groups: [Group], reference: (value: Double, label: String)?) {
            self.title = title; self.unit = unit; self.groups = groups; self.reference = reference
        }
    }

    public var title: String
    public var subtitle: String
    public var panels: [Panel]

    public init(title: String, subtitle: String, panels: [Panel]) {
        self.title = title; self.subtitle = subtitle; self.panels = panels
    }

    static let naiveColour = "#7f8fb0", fusedColour = "#e8743b", referenceColour = "#c0392b"
    static let gridColour = "#e3e3e3", axisColour = "#333333"

    public var svg: String {
        let barWidth = 24.0, groupGap = 28.0, groupStep = 2 * barWidth + groupGap
        // X labels are rotated 40° and end under their group, so they reach down about sin 40° and
        // left about cos 40° of their length (~6.2 px a character at 11 px): leave room for both.
        func reach(_ label: String) -> Double { Double(label.count) * 6.2 * 0.766 }
        var left = 80.0
        for panel in panels {
            for (g, group) in panel.groups.enumerated() {
                left = Swift.max(left, reach(group.label) - groupGap - barWidth - Double(g) * groupStep + 10)
            }
        }
        let right = 40.0, plotHeight = 260.0
        let maxGroups = Swift.max(panels.map(\.groups.count).max() ?? 1, 1)
        let width = Swift.max(720, left + right + Double(maxGroups) * groupStep + groupGap)
        let longest = Double(panels.flatMap(\.groups).map(\.label.count).max() ?? 10)
        let labelDrop = Swift.min(260, 20 + longest * 6.2 * 0.643)
        let panelHeight = 40 + plotHeight + labelDrop + 20
        let top = 90.0
        let height = top + Double(panels.count) * panelHeight + 10

        var out: [String] = []
        out.append(#"<svg xmlns="http://www.w3.org/2000/svg" width="\#(fmt(width))" height="\#(fmt(height))" viewBox="0 0 \#(fmt(width)) \#(fmt(height))" font-family="Helvetica, Arial, sans-serif">"#)
        out.append(#"<rect x="0" y="0" width="\#(fmt(width))" height="\#(fmt(height))" fill="white"/>"#)
        out.append(text(title, x: 20, y: 28, size: 18, weight: "bold"))
        out.append(text(subtitle, x: 20, y: 48, size: 12, fill: "#444"))
        // Legend, on its own line under the subtitle.
        let lx = 20.0, ly = 62.0
        out.append(#"<rect x="\#(fmt(lx))" y="\#(fmt(ly))" width="14" height="14" fill="\#(Self.naiveColour)"/>"#)
        out.append(text("naive (OpenBLAS sgemm + separate passes)", x: lx + 20, y: ly + 12, size: 12))
        out.append(#"<rect x="\#(fmt(lx + 310))" y="\#(fmt(ly))" width="14" height="14" fill="\#(Self.fusedColour)"/>"#)
        out.append(text("fused", x: lx + 330, y: ly + 12, size: 12))
        out.append(#"<line x1="\#(fmt(lx + 380))" y1="\#(fmt(ly + 7))" x2="\#(fmt(lx + 410))" y2="\#(fmt(ly + 7))" stroke="\#(Self.referenceColour)" stroke-width="2" stroke-dasharray="6,4"/>"#)
        out.append(text("machine bound (measured this run)", x: lx + 416, y: ly + 12, size: 12))

        for (index, panel) in panels.enumerated() {
            let y0 = top + Double(index) * panelHeight
            let plotTop = y0 + 40, baseline = plotTop + plotHeight
            let plotRight = width - right
            out.append(text(panel.title, x: 20, y: y0 + 22, size: 14, weight: "bold"))
            let values = panel.groups.flatMap { [$0.naive, $0.fused] }.compactMap { $0 } + [panel.reference?.value].compactMap { $0 }
            let (top, step) = niceScale(values.max() ?? 1)
            func yOf(_ v: Double) -> Double { baseline - plotHeight * Swift.min(v, top) / top }
            // Grid and y ticks.
            var tick = 0.0
            while tick <= top + step / 2 {
                let y = yOf(tick)
                out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(y))" x2="\#(fmt(plotRight))" y2="\#(fmt(y))" stroke="\#(Self.gridColour)" stroke-width="1"/>"#)
                out.append(#"<line x1="\#(fmt(left - 5))" y1="\#(fmt(y))" x2="\#(fmt(left))" y2="\#(fmt(y))" stroke="\#(Self.axisColour)"/>"#)
                out.append(text(tickLabel(tick, step: step), x: left - 8, y: y + 4, size: 11, anchor: "end"))
                tick += step
            }
            // Axes.
            out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(plotTop))" x2="\#(fmt(left))" y2="\#(fmt(baseline))" stroke="\#(Self.axisColour)" stroke-width="1.2"/>"#)
            out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(baseline))" x2="\#(fmt(plotRight))" y2="\#(fmt(baseline))" stroke="\#(Self.axisColour)" stroke-width="1.2"/>"#)
            let cy = plotTop + plotHeight / 2
            out.append(#"<text x="\#(fmt(left - 58))" y="\#(fmt(cy))" font-size="12" text-anchor="middle" transform="rotate(-90 \#(fmt(left - 58)) \#(fmt(cy)))">\#(escape(panel.unit))</text>"#)
            // Bars.
            for (g, group) in panel.groups.enumerated() {
                let gx = left + groupGap + Double(g) * groupStep
                for (offset, value, colour) in [(0.0, group.naive, Self.naiveColour), (barWidth, group.fused, Self.fusedColour)] {
                    let x = gx + offset
                    guard let value, value.isFinite else {
                        out.append(text("n/a", x: x + barWidth / 2, y: baseline - 4, size: 9, anchor: "middle", fill: "#888"))
                        continue
                    }
                    let y = yOf(value)
                    out.append(#"<rect x="\#(fmt(x + 1))" y="\#(fmt(y))" width="\#(fmt(barWidth - 2))" height="\#(fmt(baseline - y))" fill="\#(colour)"><title>\#(escape(group.label)): \#(formatRate(value)) \#(escape(panel.unit))</title></rect>"#)
                    // The value, vertical, just above the bar.
                    let vx = x + barWidth / 2 + 3, vy = y - 4
                    out.append(#"<text x="\#(fmt(vx))" y="\#(fmt(vy))" font-size="10" transform="rotate(-90 \#(fmt(vx)) \#(fmt(vy)))">\#(formatRate(value))</text>"#)
                }
                let lx = gx + barWidth, ly = baseline + 14
                out.append(#"<text x="\#(fmt(lx))" y="\#(fmt(ly))" font-size="11" text-anchor="end" transform="rotate(-40 \#(fmt(lx)) \#(fmt(ly)))">\#(escape(group.label))</text>"#)
            }
            if let reference = panel.reference, reference.value.isFinite {
                let y = yOf(reference.value)
                out.append(#"<line x1="\#(fmt(left))" y1="\#(fmt(y))" x2="\#(fmt(plotRight))" y2="\#(fmt(y))" stroke="\#(Self.referenceColour)" stroke-width="2" stroke-dasharray="6,4"/>"#)
                out.append(text(reference.label, x: plotRight - 4, y: y - 6, size: 11, anchor: "end", fill: Self.referenceColour))
            }
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    func text(_ s: String, x: Double, y: Double, size: Int, anchor: String = "start", weight: String = "normal", fill: String = "#222") -> String {
        svgText(s, x: x, y: y, size: size, anchor: anchor, weight: weight, fill: fill)
    }
}

/// One SVG text element (shared by the charts).
func svgText(_ s: String, x: Double, y: Double, size: Int, anchor: String = "start", weight: String = "normal", fill: String = "#222") -> String {
    #"<text x="\#(fmt(x))" y="\#(fmt(y))" font-size="\#(size)" font-weight="\#(weight)" text-anchor="\#(anchor)" fill="\#(fill)">\#(escape(s))</text>"#
}

/// An axis top at or above `maximum` and a tick step of 1, 2 or 5 × 10ᵏ giving 4–10 ticks.
func niceScale(_ maximum: Double) -> (top: Double, step: Double) {
    let m = maximum > 0 && maximum.isFinite ? maximum * 1.08 : 1
    let raw = m / 5
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    return (ceil(m / step) * step, step)
}

func tickLabel(_ value: Double, step: Double) -> String {
    step >= 1 ? String(format: "%.0f", value) : String(format: "%g", (value / step).rounded() * step)
}

func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

extension KernelReport {
    /// Compute-bound cases in GFLOP/s against the sgemm peak; bandwidth-bound cases in GB/s
    /// against the memory bandwidth.
    public var chart: BarChart {
        func groups(_ bound: Bound, _ metric: (KernelResult, Summary?) -> Double?) -> [BarChart.Group] {
            results.filter { $0.kernel.bound == bound }.map {
                BarChart.Group(label: "\($0.kernel.name)  \($0.kernel.shape)" + ($0.kernel.weightFormat == .f32 ? "" : "  \($0.kernel.weightFormat)"), naive: metric($0, $0.naive), fused: metric($0, $0.fused))
            }
        }
        var panels: [BarChart.Panel] = []
        let compute = groups(.compute) { $0.gflops($1) }
        if !compute.isEmpty {
            panels.append(.init(title: "Compute-bound kernels (prefill): GFLOP/s", unit: "GFLOP/s", groups: compute,
                                reference: (peak.sgemmGFlops, "sgemm peak \(formatRate(peak.sgemmGFlops)) GFLOP/s")))
        }
        let bandwidth = groups(.bandwidth) { $0.gbs($1) }
        if !bandwidth.isEmpty {
            panels.append(.init(title: "Bandwidth-bound kernels (decode, LayerNorm): GB/s of minimum traffic", unit: "GB/s", groups: bandwidth,
                                reference: (peak.bandwidthGBs, "memory bandwidth \(formatRate(peak.bandwidthGBs)) GB/s")))
        }
        return BarChart(title: "tfc bench kernels — \(run.model): fused vs naive",
                        subtitle: "\(run.cpu), \(run.threads) threads, median of \(run.repeats), \(run.date)\(run.fusedAvailable ? "" : "; fused backend not available (n/a)")",
                        panels: panels)
    }
}

extension ModelReport {
    /// Prefill GFLOP/s against the sgemm peak; decode tokens/s against the bandwidth bound.
    public var chart: BarChart {
        let r = result
        return BarChart(
            title: "tfc bench model — \(run.model): fused vs naive",
            subtitle: "\(run.cpu), \(run.threads) threads, median of \(run.repeats), weights \(weights), \(run.date)",
            panels: [
                .init(title: "Prefill of \(r.seq) tokens: GFLOP/s", unit: "GFLOP/s",
                      groups: [.init(label: "prefill T=\(r.seq)", naive: r.prefillGFlops(r.prefillNaive), fused: r.prefillGFlops(r.prefillFused))],
                      reference: (r.boundSgemmGFlops(peak), "sgemm peak \(formatRate(r.boundSgemmGFlops(peak))) GFLOP/s")),
                .init(title: "Decode of \(r.decodeTokens) tokens after \(r.seq): tokens/s", unit: "tokens/s",
                      groups: [.init(label: "decode", naive: r.decodeTokensPerSecond(r.decodeNaive), fused: r.decodeTokensPerSecond(r.decodeFused))],
                      reference: (r.decodeBound(peak), "bandwidth bound \(formatRate(r.decodeBound(peak))) tokens/s")),
            ])
    }
}
