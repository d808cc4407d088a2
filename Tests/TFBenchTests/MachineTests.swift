import Foundation
import XCTest
@testable import TFBench

final class MachineTests: XCTestCase {
    func testCPUNameIsNotEmpty() {
        XCTAssertFalse(Machine.cpuName.isEmpty)
        XCTAssertGreaterThanOrEqual(Machine.cores, 1)
        XCTAssertGreaterThan(Machine.lastLevelCacheBytes, 0)
    }

    func testSumIsExact() {
        let values = (0..<1000).map { Float($0 % 7) }
        let sum = values.withUnsafeBufferPointer { MachinePeak.sum($0.baseAddress!, count: $0.count) }
        XCTAssertEqual(sum, values.reduce(0, +))
    }

    func testSmallPeakMeasurementGivesPositiveFigures() {
        Machine.setThreads(1)
        let peak = MachinePeak.measure(threads: 1, sgemmSize: 64, bandwidthBytes: 1 << 20, runs: 1)
        XCTAssertGreaterThan(peak.sgemmGFlops, 0)
        XCTAssertGreaterThan(peak.bandwidthGBs, 0)
        XCTAssertEqual(peak.sgemmSize, 64)
        XCTAssertEqual(peak.bandwidthBytes, 1 << 20)
    }

    func testBLASThreadsCanBeParkedAndWoken() {
        XCTAssertTrue(BLASThreads.canPark, "OpenBLAS's pthread build exports blas_thread_shutdown_")
        Machine.setThreads(2)
        BLASThreads.wake()
        BLASThreads.park()
        BLASThreads.park()
        XCTAssertGreaterThan(MachinePeak.measureSgemm(n: 160, runs: 1), 0, "threaded sgemm works after parking")
        #if os(Linux)
        func threadCount() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0 }
        BLASThreads.park()
        let parked = threadCount()
        BLASThreads.wake()
        XCTAssertGreaterThan(threadCount(), parked, "wake starts the BLAS worker again")
        BLASThreads.park()
        XCTAssertEqual(threadCount(), parked, "park joins it")
        #endif
    }

    func testCacheFlusherTouchesItsBuffer() {
        let flusher = CacheFlusher(bytes: 4096)
        flusher.flush()
        flusher.flush()
        XCTAssertGreaterThan(flusher.sink, 0)
    }
}
