import XCTest
@testable import TFBench

final class StatisticsTests: XCTestCase {
    func testMedianOfOddCountIsTheMiddleSample() {
        let s = Summary([5, 1, 3])
        XCTAssertEqual(s.median, 3)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 5)
        XCTAssertEqual(s.count, 3)
        XCTAssertEqual(s.samples, [5, 1, 3], "samples keep the order they were taken in")
    }

    func testMedianOfEvenCountIsTheMeanOfTheMiddleTwo() {
        XCTAssertEqual(Summary([4, 1, 2, 10]).median, 3)
        XCTAssertEqual(Summary([2, 2]).median, 2)
    }

    func testSingleSample() {
        let s = Summary([0.25])
        XCTAssertEqual(s.median, 0.25)
        XCTAssertEqual(s.min, 0.25)
        XCTAssertEqual(s.max, 0.25)
    }

    func testMedianIgnoresOneSpoiledRun() {
        XCTAssertEqual(Summary([1.0, 1.1, 0.9, 50, 1.0]).median, 1.0)
    }

    func testRate() {
        XCTAssertEqual(Summary([0.5, 2, 1]).rate(10), 10)
    }

    func testSpeedupIsNaiveMedianOverFusedMedian() {
        let naive = Summary([4, 4, 100]), fused = Summary([1, 2, 2])
        XCTAssertEqual(speedup(naive: naive, fused: fused), 2)
        XCTAssertNil(speedup(naive: naive, fused: nil))
        XCTAssertNil(speedup(naive: nil, fused: fused))
    }

    func testAlternationRunsSidesInTurnAndDropsWarmup() {
        var order: [String] = []
        var flushes = 0
        var steps: [(Int, Int)] = []
        var clock = 0.0
        func side(_ name: String) -> () -> Double {
            { order.append(name); clock += 1; return clock }
        }
        let result = Alternation(warmup: 2, repeats: 3).run([side("A"), side("B")], beforeEach: { flushes += 1 }) { steps.append(($0, $1)) }
        XCTAssertEqual(order, ["A", "B", "A", "B", "A", "B", "A", "B", "A", "B"])
        XCTAssertEqual(flushes, 10, "every call, warm-up included, is preceded by beforeEach")
        XCTAssertEqual(steps.map(\.0), Array(1...10))
        XCTAssertTrue(steps.allSatisfy { $0.1 == 10 })
        // Calls 5…10 are timed: A gets 5, 7, 9 and B 6, 8, 10.
        XCTAssertEqual(result.count, 2)
        XCTAssertEqual(result[0].samples, [5, 7, 9])
        XCTAssertEqual(result[1].samples, [6, 8, 10])
    }

    func testAlternationWithOneSide() {
        var calls = 0
        let result = Alternation(warmup: 0, repeats: 4).run([{ calls += 1; return 0.5 }])
        XCTAssertEqual(calls, 4)
        XCTAssertEqual(result.count, 1)
        XCTAssertEqual(result[0].median, 0.5)
    }

    func testTimedMeasuresTheBody() {
        let side = timed { usleep(2000) }
        let seconds = side()
        XCTAssertGreaterThanOrEqual(seconds, 0.0019)
        XCTAssertLessThan(seconds, 5)
    }

    func testRelativeDifference() {
        XCTAssertEqual(relativeDifference([1, -2, 4], [1, -2, 4]), 0)
        XCTAssertEqual(relativeDifference([1, -2, 4], [1, -2, 5]), 0.25)
        XCTAssertEqual(relativeDifference([1, 2], [1, .nan]), .infinity)
    }

    func testNiceScale() {
        let (top, step) = niceScale(143)
        XCTAssertEqual(step, 50)
        XCTAssertEqual(top, 200)
        XCTAssertGreaterThanOrEqual(niceScale(0.7).top, 0.7)
        XCTAssertEqual(niceScale(0).top, 1, accuracy: 1e-12)
    }

    func testFormatting() {
        XCTAssertEqual(formatSeconds(0.0000123), "12.3 µs")
        XCTAssertEqual(formatSeconds(0.01234), "12.340 ms")
        XCTAssertEqual(formatSeconds(2.5), "2.500 s")
        XCTAssertEqual(formatRate(153.24), "153.2")
        XCTAssertEqual(formatRate(0.5123), "0.512")
        XCTAssertEqual(formatRate(nil), "")
        XCTAssertEqual(formatSpeedup(2), "2.00×")
        XCTAssertEqual(formatSpeedup(nil), "n/a")
        XCTAssertEqual(formatPercent(61.4), "61%")
        XCTAssertEqual(formatPercent(5.25), "5.2%")
    }
}
