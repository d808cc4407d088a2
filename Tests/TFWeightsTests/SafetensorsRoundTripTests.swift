import Foundation
import XCTest
@testable import TFWeights

final class SafetensorsRoundTripTests: XCTestCase {
    func testWriteThenReadGivesTheSameTensorsAndMetadata() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/w.safetensors"
        var writer = SafetensorsWriter(metadata: ["format": "tfc", "note": "quote \" and \\ and é"])
        let a: [Float] = (0..<12).map { Float($0) * 0.5 - 3 }
        writer.add("z.last", shape: [3, 4], data: a)
        writer.add("a.first", shape: [5], data: [1, -2, 3.25, .infinity, -0.0])
        writer.add("scalar", shape: [], data: [42])
        writer.add("empty", shape: [0, 7], data: [])
        writer.add("generated", shape: [2, 3]) { buffer in
            for i in buffer.indices { buffer[i] = Float(i * i) }
        }
        writer.add("name with \"quotes\"\tand é", shape: [1], data: [7])
        try writer.write(to: path)

        let file = try WeightFile(path: path)
        XCTAssertEqual(file.names, ["a.first", "empty", "generated", "name with \"quotes\"\tand é", "scalar", "z.last"])
        XCTAssertEqual(file.metadata, ["format": "tfc", "note": "quote \" and \\ and é"])
        let z = try XCTUnwrap(file.tensor("z.last"))
        XCTAssertEqual(z.shape, [3, 4])
        XCTAssertEqual(z.dtype, .f32)
        XCTAssertEqual(z.values, a)
        XCTAssertEqual(file.tensor("a.first")!.values, [1, -2, 3.25, .infinity, -0.0])
        XCTAssertEqual(file.tensor("scalar")!.shape, [])
        XCTAssertEqual(file.tensor("scalar")!.values, [42])
        XCTAssertEqual(file.tensor("empty")!.shape, [0, 7])
        XCTAssertEqual(file.tensor("empty")!.count, 0)
        XCTAssertEqual(file.tensor("generated")!.values, [0, 1, 4, 9, 16, 25])
        XCTAssertEqual(file.tensor("name with \"quotes\"\tand é")!.values, [7])
        XCTAssertNil(file.tensor("missing"))
        XCTAssertEqual(file.parameterCount, 12 + 5 + 1 + 0 + 6 + 1)
    }

    func testLayoutIsSortedPaddedAndReadableByPlainPython() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/w.safetensors"
        var writer = SafetensorsWriter(metadata: ["k": "v"])
        writer.add("b", shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        writer.add("a", shape: [3], data: [0.5, 0.25, 0.125])
        try writer.write(to: path)
        // An independent reader: json + numpy, checking the format rules as it goes.
        let out = try runPython("""
        import json, struct, sys, numpy as np
        raw = open(sys.argv[1], 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        assert n % 8 == 0, n
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        assert header.pop('__metadata__') == {'k': 'v'}
        names = list(header)
        assert names == sorted(names), names
        end = 0
        for name in names:
            e = header[name]
            s, t = e['data_offsets']
            assert s == end and e['dtype'] == 'F32'
            end = t
            arr = np.frombuffer(data[s:t], dtype='<f4').reshape(e['shape'])
            print(name, arr.shape, arr.ravel().tolist())
        assert end == len(data)
        """, [path])
        XCTAssertEqual(out, "a (3,) [0.5, 0.25, 0.125]\nb (2, 3) [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n")
    }

    func testOverwritingAMappedInputKeepsItReadable() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/w.safetensors"
        var first = SafetensorsWriter()
        first.add("x", shape: [4], data: [1, 2, 3, 4])
        try first.write(to: path)
        let input = try WeightFile(path: path)
        // Rewrite the same path from the mapped input (as growth does), then check both.
        var second = SafetensorsWriter()
        second.add(input.tensor("x")!)
        second.add("y", shape: [1], data: [5])
        try second.write(to: path)
        XCTAssertEqual(input.tensor("x")!.values, [1, 2, 3, 4])
        let output = try WeightFile(path: path)
        XCTAssertEqual(output.names, ["x", "y"])
        XCTAssertEqual(output.tensor("x")!.values, [1, 2, 3, 4])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testTensorOutlivesItsFile() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/w.safetensors"
        var writer = SafetensorsWriter()
        writer.add("x", shape: [3], data: [9, 8, 7])
        try writer.write(to: path)
        let tensor = try XCTUnwrap(WeightFile(path: path).tensor("x"))
        XCTAssertEqual(tensor.values, [9, 8, 7])
        // The writer holds the tensor (and so the mapping) until it writes.
        var copy = SafetensorsWriter()
        copy.add(try XCTUnwrap(WeightFile(path: path).tensor("x")), as: "renamed")
        try copy.write(to: path)
        XCTAssertEqual(try XCTUnwrap(WeightFile(path: path).tensor("renamed")).values, [9, 8, 7])
    }

    func testWriterErrors() throws {
        let dir = try makeTemporaryDirectory(self)
        var wrongCount = SafetensorsWriter()
        wrongCount.add("w", shape: [3, 4], data: [1, 2])
        XCTAssertEqual(weightErrorText { try wrongCount.write(to: dir + "/a.safetensors") },
                       "\(dir)/a.safetensors: error: tensor 'w': 2 values for shape [3, 4] (12 expected)")
        var duplicate = SafetensorsWriter()
        duplicate.add("w", shape: [1], data: [1])
        duplicate.add("w", shape: [1], data: [2])
        XCTAssertEqual(weightErrorText { try duplicate.write(to: dir + "/b.safetensors") },
                       "\(dir)/b.safetensors: error: duplicate tensor name 'w'")
        var fine = SafetensorsWriter()
        fine.add("w", shape: [1], data: [1])
        XCTAssertEqual(weightErrorText { try fine.write(to: dir + "/no/such/dir/c.safetensors") },
                       "\(dir)/no/such/dir/c.safetensors: error: output: the directory \(dir)/no/such/dir does not exist")
        if getuid() != 0 {  // root ignores permissions
            let locked = dir + "/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o500])
            XCTAssertEqual(weightErrorText { try fine.write(to: locked + "/d.safetensors") },
                           "\(locked)/d.safetensors: error: output: cannot create a file in \(locked): Permission denied")
        }
        // The target is a directory: refused before anything is written.
        try FileManager.default.createDirectory(atPath: dir + "/isdir", withIntermediateDirectories: false)
        XCTAssertEqual(weightErrorText { try fine.write(to: dir + "/isdir") }, "\(dir)/isdir: error: output names a directory; give a file name")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }
}
