import XCTest
import TFRuntime
import Foundation

private final class Counter {
    var hits: [Int32]
    let lock = NSLock()
    init(_ n: Int) { hits = [Int32](repeating: 0, count: n) }
    func hit(_ i: Int) { lock.lock(); hits[i] += 1; lock.unlock() }
}

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsOnce() {
        for threads in [1, 2, 3] {
            tfc_set_num_threads(Int32(threads))
            for count in [0, 1, 2, 7, 1000] {
                let c = Counter(count)
                let ctx = Unmanaged.passUnretained(c).toOpaque()
                for _ in 0..<20 {
                    tfc_parallel_for({ ctx, i in
                        let c = Unmanaged<Counter>.fromOpaque(ctx!).takeUnretainedValue()
                        c.hit(Int(i))
                    }, ctx, Int64(count))
                }
                XCTAssertEqual(c.hits, [Int32](repeating: 20, count: count), "threads=\(threads) count=\(count)")
            }
        }
        tfc_set_num_threads(0)
        XCTAssertEqual(Int(tfc_get_num_threads()), ProcessInfo.processInfo.activeProcessorCount)
    }

    func testNestedCallsRunSerially() {
        tfc_set_num_threads(2)
        let c = Counter(64)
        let ctx = Unmanaged.passUnretained(c).toOpaque()
        tfc_parallel_for({ ctx, outer in
            tfc_parallel_for({ ctx, inner in
                let c = Unmanaged<Counter>.fromOpaque(ctx!).takeUnretainedValue()
                c.hit(Int(inner))
            }, ctx, 64)
        }, ctx, 8)
        XCTAssertEqual(c.hits, [Int32](repeating: 8, count: 64))
    }

    func testConcurrentCallersAndScratch() {
        tfc_set_num_threads(2)
        let group = DispatchGroup()
        let results = Counter(4)
        for caller in 0..<4 {
            DispatchQueue.global().async(group: group) {
                let c = Counter(100)
                let ctx = Unmanaged.passUnretained(c).toOpaque()
                for _ in 0..<50 {
                    tfc_parallel_for({ ctx, i in
                        let c = Unmanaged<Counter>.fromOpaque(ctx!).takeUnretainedValue()
                        let p = tfc_thread_scratch(4096)!.assumingMemoryBound(to: UInt8.self)
                        p[Int(i) % 4096] = 1
                        c.hit(Int(i))
                    }, ctx, 100)
                }
                if c.hits.allSatisfy({ $0 == 50 }) {
                    results.hit(caller)
                }
            }
        }
        group.wait()
        XCTAssertEqual(results.hits, [1, 1, 1, 1])
        let a = tfc_thread_scratch(100)!, b = tfc_thread_scratch(10)!
        XCTAssertEqual(a, b)
        XCTAssertEqual(Int(bitPattern: a) % 64, 0)
    }
}

