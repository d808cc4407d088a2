import TFBench

extension GrowthResults {
    /// Colours per run: the two scratch baselines in greys, the grown runs in colours.
    static let colours = ["scratch-A": "#7f7f7f", "scratch-B": "#222222", "grown-exact": "#1f77b4",
                          "grown-reference": "#ff7f0e", "grown-random-keys": "#2ca02c"]

    /// docs/experiments/growth.svg: held-out loss against cumulative training FLOPs (in TFLOP),
    /// with scratch-B's final loss and the point where A was grown marked.
    public var chart: LineChart {
        let tera = 1e12
        let series = runs.map { r in
            LineChart.Series(label: "\(r.run.name) (\(r.model), \(grouped(r.parameters)) parameters)",
                             colour: Self.colours[r.run.name] ?? "#9467bd",
                             points: zip(r.curve.flops, r.curve.valLoss).map { (x: $0 / tera, y: $1) },
                             // grown-exact retraces A's start and is meant to coincide with it: dashed stays visible.
                             dashed: r.run.name == "grown-exact")
        }
        var references: [LineChart.Reference] = []
        if let target { references.append(.init(axis: .y, value: target.loss, label: "scratch-B's final loss")) }
        let c = plan.config
        references.append(.init(axis: .x, value: Double(c.stepsA) * plan.flopsPerStepA / tera, label: "A grown"))
        return LineChart(title: "Growing A to B versus training B from scratch",
                         subtitle: "held-out loss (nats per byte) of every run; batch \(c.batch) × \(c.seq) bytes, \(c.stepsA) steps of A, \(c.stepsB) of scratch-B, seed \(c.seed)",
                         xUnit: "cumulative training FLOPs (TFLOP; A's training counted in the grown runs)",
                         yUnit: "held-out loss (nats/byte)", series: series, references: references)
    }
}
