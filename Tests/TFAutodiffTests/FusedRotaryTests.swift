import XCTest
@testable import TFTraining
import TFCodegen
import TFIR
import TFNaive

/// The fused trainer's rotary host loops: the forward gives the generated rotary kernel's bits
/// (its angles, cos/sin rounding and products) on every vector target this CPU runs, the backward
/// the oracle's (`NaiveBackward.rotary`), on windows stacked as rows with pass-through columns.
final class FusedRotaryTests: XCTestCase {
    let cases = [RotaryOp(heads: 6, headDim: 32, rotaryDims: 8, base: 10000), RotaryOp(heads: 2, headDim: 12, rotaryDims: 12, base: 500),
                 RotaryOp(heads: 3, headDim: 20, rotaryDims: 4, base: 10000)]

    func testForwardHasTheKernelsBits() throws {
        for vector in VectorTarget.runnable() {
            for r in cases {
                let width = r.heads * r.headDim, t = 37, windows = 3
                let module = try KernelModule(name: "rotary_test", target: .host(vector))
                let symbol = module.addRotary(RotaryEmbedding(heads: r.heads, headDim: r.headDim, rotaryDims: r.rotaryDims, base: r.base), ldx: width, ldy: width)
                let jit = try KernelJIT(target: module.target)
                try jit.addObject(try module.objectFile(), name: "rotary_test", symbols: module.kernelNames)
                let kernel = try jit.kernel(symbol)
                var random = TestRandom(state: UInt64(width))
                let x = AlignedBuffer(random.array(windows * t * width, scale: 3))
                let expected = AlignedBuffer(count: x.count), got = AlignedBuffer(count: x.count)
                for w in 0..<windows {
                    let args: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(x.pointer + w * t * width), UnsafeMutableRawPointer(expected.pointer + w * t * width)]
                    args.withUnsafeBufferPointer { kernel($0.baseAddress, Int64(t), 0) }
                }
                FusedRotary(r).forward(x.pointer, into: got.pointer, rows: windows * t, width: width, window: t)
                XCTAssertEqual(got.array.map(\.bitPattern), expected.array.map(\.bitPattern), "\(vector.name) \(r)")
            }
        }
    }

    func testBackwardIsTheOraclesAddedIn() {
        for r in cases {
            let width = r.heads * r.headDim, t = 29, windows = 2
            var random = TestRandom(state: UInt64(7 * width))
            let dy = random.array(windows * t * width), start = random.array(windows * t * width)
            let dx = AlignedBuffer(start)
            dy.withUnsafeBufferPointer { FusedRotary(r).backward($0.baseAddress!, into: dx.pointer, rows: windows * t, width: width, window: t) }
            for w in 0..<windows {
                let rows = w * t * width ..< (w + 1) * t * width
                let ref = NaiveBackward.rotary(dy: Matrix(rows: t, columns: width, data: Array(dy[rows])), r)
                for (i, g) in zip(rows, ref.data) {
                    XCTAssertEqual(dx[i], start[i] + g, "\(r): window \(w), element \(i - rows.lowerBound)")
                    if dx[i] != start[i] + g { return }
                }
            }
        }
    }
}
