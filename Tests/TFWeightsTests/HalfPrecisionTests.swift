import Foundation
import XCTest
import TFRuntime
@testable import TFWeights

/// F16 and BF16 files written by hand in Python read back as the F32 values NumPy computes.
final class HalfPrecisionTests: XCTestCase {
    /// Writes `out.safetensors` with F16 "h" [2, 4], BF16 "b" [2, 4] and F32 "f" [3], every
    /// F16 bit pattern as "all" [65536], and `expected.npy` files with NumPy's F32 values.
    static let fixture = """
    import json, struct, sys, numpy as np
    d = sys.argv[1]
    vals = np.array([0.0, -0.0, 1.5, -2.25, 65504.0, 5.960464477539063e-08, 1e-05, -np.inf], dtype=np.float32)
    h = vals.astype(np.float16)
    b = (vals.view(np.uint32) >> 16).astype(np.uint16)
    f = np.array([3.0, -1.0, 0.1], dtype=np.float32)
    every = np.arange(65536, dtype=np.uint16).view(np.float16)
    tensors = [('h', 'F16', [2, 4], h.tobytes()), ('b', 'BF16', [2, 4], b.tobytes()),
               ('f', 'F32', [3], f.tobytes()), ('all', 'F16', [65536], every.tobytes())]
    header, blob = {'__metadata__': {'source': 'numpy'}}, b''
    for name, dtype, shape, raw in tensors:
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    open(d + '/out.safetensors', 'wb').write(struct.pack('<Q', len(text)) + text + blob)
    np.save(d + '/h.npy', h.astype(np.float32).reshape(2, 4))
    np.save(d + '/b.npy', (b.astype(np.uint32) << 16).view(np.float32).reshape(2, 4))
    np.save(d + '/all.npy', every.astype(np.float32))
    """

    func testF16AndBF16MatchNumPy() throws {
        let dir = try makeTemporaryDirectory(self)
        try runPython(Self.fixture, [dir])
        let file = try WeightFile(path: dir + "/out.safetensors")
        XCTAssertEqual(file.metadata, ["source": "numpy"])
        XCTAssertEqual(file.names, ["all", "b", "f", "h"])
        let h = try XCTUnwrap(file.tensor("h")), b = try XCTUnwrap(file.tensor("b"))
        XCTAssertEqual(h.dtype, .f16)
        XCTAssertEqual(b.dtype, .bf16)
        XCTAssertEqual(h.shape, [2, 4])
        XCTAssertEqual(b.shape, [2, 4])
        // Converted copies are 64-byte aligned; F32 data is used in place.
        XCTAssertEqual(Int(bitPattern: h.floats.baseAddress) % 64, 0)
        XCTAssertEqual(file.tensor("f")!.values, [3, -1, 0.1])

        let hExpected = try Npy.read(path: dir + "/h.npy"), bExpected = try Npy.read(path: dir + "/b.npy")
        XCTAssertEqual(hExpected.shape, [2, 4])
        XCTAssertEqual(h.values.map(\.bitPattern), hExpected.data.map(\.bitPattern))
        XCTAssertEqual(b.values.map(\.bitPattern), bExpected.data.map(\.bitPattern))
        XCTAssertEqual(h.values[0..<5], [0, -0.0, 1.5, -2.25, 65504])

        // Every F16 bit pattern (normals, subnormals, zeros, infinities) converts exactly;
        // for NaNs only NaN-ness is compared (hardware conversions may quiet the payload).
        let all = file.tensor("all")!.values, expected = try Npy.read(path: dir + "/all.npy").data
        XCTAssertEqual(all.count, 65536)
        var mismatches = 0
        for i in 0..<65536 {
            if expected[i].isNaN { if !all[i].isNaN { mismatches += 1 } }
            else if all[i].bitPattern != expected[i].bitPattern { mismatches += 1 }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testScalarConversionHelpers() {
        XCTAssertEqual(tfc_f16_to_f32(0x3C00), 1)
        XCTAssertEqual(tfc_f16_to_f32(0xC000), -2)
        XCTAssertEqual(tfc_f16_to_f32(0x0001), 5.9604645e-08)  // smallest subnormal
        XCTAssertEqual(tfc_f16_to_f32(0x7C00), .infinity)
        XCTAssertTrue(tfc_f16_to_f32(0x7E00).isNaN)
        XCTAssertEqual(tfc_bf16_to_f32(0x3F80), 1)
        XCTAssertEqual(tfc_bf16_to_f32(0xC0A0), -5)
    }
}
