import XCTest
@testable import TFWeights

/// The vectorised scan finds exactly the first out-of-range value, wherever it sits: in the
/// vector body or the tail of a block, at block boundaries, at unaligned addresses.
final class NonFiniteScanTests: XCTestCase {
    /// The plain loop the scan must agree with.
    func reference(_ values: [Float], limit: Float) -> Int? {
        values.firstIndex { !$0.isFinite || $0.magnitude >= limit }
    }

    func scan(_ values: [Float], limit: Float, offset: Int) -> Int? {
        // Copy behind `offset` bytes of padding so the floats start at any address.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: values.count * 4 + offset + 4, alignment: 64)
        defer { raw.deallocate() }
        let start = raw + offset
        for (i, v) in values.enumerated() { start.storeBytes(of: v, toByteOffset: i * 4, as: Float.self) }
        return NonFiniteScan.firstBeyond(limit, in: UnsafeBufferPointer(start: start.assumingMemoryBound(to: Float.self), count: values.count))
    }

    func testFindsTheFirstBadValueAnywhere() {
        let n = NonFiniteScan.block * 2 + 37  // two full blocks and a short third one
        let positions = [0, 1, 15, 16, 17, NonFiniteScan.block - 1, NonFiniteScan.block, NonFiniteScan.block + 5, n - 37, n - 1]
        let bad: [Float] = [.nan, -.nan, .infinity, -.infinity, 3e38, -0x1p64, .signalingNaN]
        var values = (0..<n).map { Float(sin(Double($0))) * 1e6 }
        values[12345] = Float(0x1p64).nextDown  // the largest magnitude allowed
        for offset in [0, 1, 2, 3] {
            XCTAssertNil(scan(values, limit: NonFiniteScan.largestSafe, offset: offset))
        }
        for p in positions {
            for v in bad {
                var copy = values
                copy[p] = v
                if p + 100 < n { copy[p + 100] = .nan }  // a later one must not be reported
                for offset in [0, 3] {
                    XCTAssertEqual(scan(copy, limit: NonFiniteScan.largestSafe, offset: offset), p, "\(v) at \(p), offset \(offset)")
                }
                XCTAssertEqual(scan(copy, limit: NonFiniteScan.largestSafe, offset: 0), reference(copy, limit: NonFiniteScan.largestSafe))
            }
        }
        // Finite limits apart from NaN/Inf: 3e38 passes a non-finite-only scan.
        var finite = values
        finite[7] = 3e38
        XCTAssertNil(finite.withUnsafeBufferPointer { NonFiniteScan.firstNonFinite($0) })
        finite[9] = .infinity
        XCTAssertEqual(finite.withUnsafeBufferPointer { NonFiniteScan.firstNonFinite($0) }, 9)
        XCTAssertNil([Float]().withUnsafeBufferPointer { NonFiniteScan.firstNonFinite($0) })
    }
}
