import XCTest
@testable import TFBench

/// The line chart's axis range and what it draws.
final class LineChartTests: XCTestCase {
    func testRangeCoversTheValuesInRoundSteps() {
        // (3.2 − 2.18) / 5 = 0.204 → step 0.5 (1, 2, 5 × 10ᵏ ≥ 0.204), floor/ceil to it.
        let r = niceRange(2.18, 3.2)
        XCTAssertEqual(r.step, 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.low, 2.0, accuracy: 1e-12)
        XCTAssertEqual(r.high, 3.5, accuracy: 1e-12)
        let flat = niceRange(2, 2)
        XCTAssertLessThan(flat.low, flat.high)
    }

    func testDrawsOneLinePerSeriesWithEscapedLegendAndReferences() {
        let chart = LineChart(title: "t", subtitle: "s", xUnit: "x", yUnit: "y", series: [
            .init(label: "a<b", colour: "#111111", points: [(0, 3), (1, 2)]),
            .init(label: "c & d", colour: "#222222", points: [(0.5, 2.5), (2, 2.2)], dashed: true),
        ], references: [.init(axis: .y, value: 2.2, label: "target"), .init(axis: .x, value: 1, label: "grown")])
        let svg = chart.svg
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(svg.contains("a&lt;b") && svg.contains("c &amp; d"))
        XCTAssertFalse(svg.contains("a<b"))
        XCTAssertEqual(svg.components(separatedBy: "stroke-dasharray=\"7,5\"").count - 1, 2, "the dashed series: its line and its legend")
        XCTAssertTrue(svg.contains(">target<") && svg.contains(">grown<"))
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
    }
}
