import XCTest
@testable import TFCodegen

/// `PanelLayout.packTransposed` (8 × 8 register transposes plus a scalar rest) against the panel
/// layout written out element by element: `B[kk, j] = src[j·k + kk]` at panel `j / nr`, depth
/// `kk`, lane `j % nr`, and zeros in the last panel's padding.
final class PanelPackingTests: XCTestCase {
    func testPackTransposedMatchesTheLayoutElementByElement() {
        // Depths with and without whole blocks of 8, panels full and partial, widths not a multiple of 8.
        for (k, n, nr) in [(192, 96, 32), (64, 384, 48), (8, 8, 8), (12, 20, 16), (40, 37, 16), (96, 320, 64), (7, 9, 8), (16, 100, 32)] {
            let layout = PanelLayout(k: k, n: n, nr: nr)
            let src = (0..<(n * k)).map { Float($0 % 1009) - 0.5 * Float($0 % 7) }
            let packed = AlignedBuffer(count: layout.count, zeroed: false)
            packed.pointer.update(repeating: .nan, count: layout.count)  // every element must be written
            src.withUnsafeBufferPointer { layout.packTransposed($0.baseAddress!, into: packed.pointer) }
            for p in 0..<layout.panels {
                for kk in 0..<k {
                    for lane in 0..<nr {
                        let j = p * nr + lane
                        let expected: Float = j < n ? src[j * k + kk] : 0
                        let got = packed[p * nr * k + kk * nr + lane]
                        if got != expected && !(got.isNaN && expected.isNaN) {
                            XCTFail("k=\(k) n=\(n) nr=\(nr): B[\(kk), \(j)] = \(got), expected \(expected)"); return
                        }
                    }
                }
            }
        }
    }
}
