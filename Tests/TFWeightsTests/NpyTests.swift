import Foundation
import XCTest
@testable import TFWeights

final class NpyTests: XCTestCase {
    func testSwiftWrittenNpyReadsInNumPy() throws {
        let dir = try makeTemporaryDirectory(self)
        try Npy.write(path: dir + "/a.npy", shape: [2, 3], data: [1, -2, 3.5, 0, 1e-7, 6])
        try Npy.write(path: dir + "/v.npy", shape: [4], data: [1, 2, 3, 4])
        try Npy.write(path: dir + "/s.npy", shape: [], data: [9])
        let out = try runPython("""
        import sys, numpy as np
        for name in ['a', 'v', 's']:
            x = np.load(sys.argv[1] + '/' + name + '.npy')
            print(name, x.dtype, x.shape, x.flags['C_CONTIGUOUS'], x.ravel().tolist())
        raw = open(sys.argv[1] + '/a.npy', 'rb').read()
        print(raw[6:8] == bytes([1, 0]), (10 + raw[8] + 256 * raw[9]) % 64)
        """, [dir])
        XCTAssertEqual(out, """
        a float32 (2, 3) True [1.0, -2.0, 3.5, 0.0, 1.0000000116860974e-07, 6.0]
        v float32 (4,) True [1.0, 2.0, 3.0, 4.0]
        s float32 () True [9.0]
        True 0

        """)
    }

    func testNumPyWrittenNpyReadsInSwift() throws {
        let dir = try makeTemporaryDirectory(self)
        try runPython("""
        import sys, numpy as np
        d = sys.argv[1]
        np.save(d + '/f4.npy', np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
        np.save(d + '/f8.npy', np.array([[0.5, -1.25]], dtype=np.float64))
        np.save(d + '/i8.npy', np.array([3, 1, 4, 1, 5], dtype=np.int64))
        np.save(d + '/f2.npy', np.array([1.5, -0.25], dtype=np.float16))
        np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))
        np.save(d + '/u1.npy', np.zeros(3, dtype=np.uint8))
        """, [dir])
        let f4 = try Npy.read(path: dir + "/f4.npy")
        XCTAssertEqual(f4.shape, [2, 3, 4])
        XCTAssertEqual(f4.data, (0..<24).map { Float($0) / 8 })
        XCTAssertEqual(try Npy.read(path: dir + "/f8.npy"), Npy.Array(shape: [1, 2], data: [0.5, -1.25]))
        XCTAssertEqual(try Npy.read(path: dir + "/i8.npy"), Npy.Array(shape: [5], data: [3, 1, 4, 1, 5]))
        XCTAssertEqual(try Npy.read(path: dir + "/f2.npy"), Npy.Array(shape: [2], data: [1.5, -0.25]))
        XCTAssertEqual(weightErrorText { _ = try Npy.read(path: dir + "/fortran.npy") },
                       "\(dir)/fortran.npy: error: Fortran-order arrays are not supported")
        XCTAssertEqual(weightErrorText { _ = try Npy.read(path: dir + "/u1.npy") },
                       "\(dir)/u1.npy: error: unsupported dtype '|u1' (tfc reads <f4, <f8, <f2, <i4, <i8)")
        XCTAssertEqual(weightErrorText { _ = try Npy.read(path: dir + "/none.npy") }, "\(dir)/none.npy: error: no such file")
    }

    func testRoundTripAndErrors() throws {
        let dir = try makeTemporaryDirectory(self)
        let data: [Float] = (0..<60).map { sin(Float($0)) }
        try Npy.write(path: dir + "/x.npy", shape: [3, 4, 5], data: data)
        XCTAssertEqual(try Npy.read(path: dir + "/x.npy"), Npy.Array(shape: [3, 4, 5], data: data))
        XCTAssertEqual(weightErrorText { try Npy.write(path: dir + "/y.npy", shape: [2, 2], data: [1]) },
                       "\(dir)/y.npy: error: 1 values for shape [2, 2] (4 expected)")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/junk.npy"))
        XCTAssertEqual(weightErrorText { _ = try Npy.read(path: dir + "/junk.npy") }, "\(dir)/junk.npy: error: not a .npy file (bad magic)")
        // Truncated data: header for [3, 4, 5] but only part of the values.
        let full = try Data(contentsOf: URL(fileURLWithPath: dir + "/x.npy"))
        try full.prefix(full.count - 8).write(to: URL(fileURLWithPath: dir + "/cut.npy"))
        XCTAssertEqual(weightErrorText { _ = try Npy.read(path: dir + "/cut.npy") },
                       "\(dir)/cut.npy: error: truncated data: shape [3, 4, 5] of <f4 needs 240 bytes, the file has 232")
    }
}
