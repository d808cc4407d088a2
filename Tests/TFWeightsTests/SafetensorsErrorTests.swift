import Foundation
import XCTest
import TFRuntime
@testable import TFWeights

/// Each way a weight file can be bad has its own one-line message.
final class SafetensorsErrorTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
    }

    /// Opens a raw file built from the arguments and returns the error line.
    func openError(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil,
                   file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = dir + "/bad.safetensors"
        try writeRawSafetensors(path, header: header, data: data, declaredLength: declaredLength)
        return weightErrorText(file: file, line: line) { _ = try WeightFile(path: path) }
    }

    var prefix: String { dir + "/bad.safetensors: error: " }

    func testMissingFile() {
        XCTAssertEqual(weightErrorText { _ = try WeightFile(path: dir + "/nope.safetensors") },
                       "\(dir)/nope.safetensors: error: no such file")
    }

    func testDirectoryInsteadOfFile() {
        XCTAssertEqual(weightErrorText { _ = try WeightFile(path: dir) }, "\(dir): error: is a directory")
    }

    func testShorterThanTheLengthPrefix() throws {
        let path = dir + "/short.safetensors"
        try Data([1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(weightErrorText { _ = try WeightFile(path: path) },
                       "\(path): error: truncated file: 5 bytes, too short for the 8-byte header length")
        try Data().write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(weightErrorText { _ = try WeightFile(path: path) },
                       "\(path): error: truncated file: 0 bytes, too short for the 8-byte header length")
    }

    func testHeaderLongerThanTheFile() throws {
        let header = "{}" + String(repeating: " ", count: 90)  // 8 + 92 = 100 bytes
        XCTAssertEqual(try openError(header: header, declaredLength: 4096),
                       prefix + "truncated file: header declares 4096 bytes but the file has 100 bytes")
    }

    func testMalformedJSONSaysWhere() throws {
        let header = #"{"a":{"dtype":"F32" "shape":[1],"data_offsets":[0,4]}}"#
        let at = header.utf8.firstIndex(of: UInt8(ascii: " "))!  // the missing comma
        XCTAssertEqual(try openError(header: header, data: [0, 0, 0, 0]),
                       prefix + "malformed header JSON at byte \(header.utf8.distance(from: header.utf8.startIndex, to: at) + 1): expected ',' or '}' in a tensor entry")
        XCTAssertEqual(try openError(header: "[]"), prefix + "malformed header JSON at byte 0: expected '{' to start the header")
        XCTAssertEqual(try openError(header: #"{"a":"#), prefix + "malformed header JSON at byte 5: expected '{' to start a tensor entry, found the end of the header")
        XCTAssertEqual(try openError(header: #"{"a\q":{}}"#), prefix + "malformed header JSON at byte 3: invalid escape in string")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#),
                       prefix + "malformed header JSON at byte 30: expected an integer, found a fractional number")
        XCTAssertEqual(try openError(header: "{} x"), prefix + "malformed header JSON at byte 3: unexpected data after the header object")
        XCTAssertEqual(try openError(header: "{\"a\u{1}\":{}}"), prefix + "malformed header JSON at byte 3: control character in string (must be escaped)")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#),
                       prefix + "malformed header JSON at byte 29: integer too large")
    }

    func testMissingKeys() throws {
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[1]}}"#),
                       prefix + "tensor 'a': missing key 'data_offsets'")
        XCTAssertEqual(try openError(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       prefix + "tensor 'a': missing key 'dtype'")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       prefix + "tensor 'a': missing key 'shape'")
    }

    func testWrongKeysAndTypes() throws {
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#),
                       prefix + "tensor 'a': unknown key 'extra' (expected dtype, shape, data_offsets)")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","dtype":"F32"}}"#), prefix + "tensor 'a': duplicate key 'dtype'")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":32}}"#), prefix + "tensor 'a': 'dtype' must be a string")
        XCTAssertEqual(try openError(header: #"{"a":{"shape":"1"}}"#), prefix + "tensor 'a': 'shape' must be an array of integers")
        XCTAssertEqual(try openError(header: #"{"__metadata__":{"k":1}}"#), prefix + "'__metadata__': value of 'k' must be a string")
        XCTAssertEqual(try openError(header: #"{"__metadata__":[]}"#), prefix + "'__metadata__' must be an object of strings")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#),
                       prefix + "tensor 'a': negative dimension -1 in shape")
        XCTAssertEqual(try openError(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#),
                       prefix + "tensor 'a': data_offsets must have 2 entries, found 1")
    }

    func testNonFloatDtype() throws {
        XCTAssertEqual(try openError(header: #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
                       prefix + "tensor 'ids': non-float dtype 'I64' (tfc reads F32, F16, BF16)")
    }

    func testOffsetsOutsideTheDataSection() throws {
        let header = #"{"mlp.key_param_tokens":{"dtype":"F32","shape":[2250],"data_offsets":[0,9000]}}"#
        XCTAssertEqual(try openError(header: header, data: Array(repeating: 0, count: 800)),
                       prefix + "tensor 'mlp.key_param_tokens': data_offsets [0, 9000] exceed the data section (800 bytes)")
    }

    func testOffsetsEndingBeforeTheyStart() throws {
        XCTAssertEqual(try openError(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: Array(repeating: 0, count: 8)),
                       prefix + "tensor 'w': data_offsets [8, 4] end before they start")
    }

    func testByteSizeNotMatchingTheShape() throws {
        XCTAssertEqual(try openError(header: #"{"w":{"dtype":"F32","shape":[3,4],"data_offsets":[0,40]}}"#, data: Array(repeating: 0, count: 48)),
                       prefix + "tensor 'w': shape [3, 4] of F32 needs 48 bytes but data_offsets [0, 40] hold 40")
        XCTAssertEqual(try openError(header: #"{"h":{"dtype":"BF16","shape":[3],"data_offsets":[0,12]}}"#, data: Array(repeating: 0, count: 12)),
                       prefix + "tensor 'h': shape [3] of BF16 needs 6 bytes but data_offsets [0, 12] hold 12")
    }

    func testDuplicateNames() throws {
        let entry = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        XCTAssertEqual(try openError(header: "{\"b\":\(entry),\"a\":\(entry),\"b\":\(entry)}", data: [0, 0, 0, 0]),
                       prefix + "duplicate tensor name 'b'")
        XCTAssertEqual(try openError(header: #"{"__metadata__":{},"__metadata__":{}}"#), prefix + "duplicate '__metadata__'")
    }

    func testEscapesInNamesAreDecoded() throws {
        // \u00e9 (é), a surrogate pair (U+1F600), \" and \/ all decode to UTF-8.
        let header = #"{"caf\u00e9 \ud83d\ude00 \"q\" a\/b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#
        let path = dir + "/ok.safetensors"
        try writeRawSafetensors(path, header: header, data: [0, 0, 0x80, 0x3F])
        let file = try WeightFile(path: path)
        XCTAssertEqual(file.names, ["café 😀 \"q\" a/b"])
        XCTAssertEqual(file.tensor("café 😀 \"q\" a/b")!.values, [1])
        XCTAssertEqual(try openError(header: #"{"\ud83d":{}}"#), prefix + "malformed header JSON at byte 8: high surrogate not followed by a low surrogate")
    }

    func testHeaderPaddingAndUnalignedData() throws {
        // A header whose length is not a multiple of 4 leaves F32 data misaligned: still readable (copied).
        let header = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        var padded = header + "\n\t"
        while padded.utf8.count % 4 != 1 { padded += " " }
        let path = dir + "/unaligned.safetensors"
        let one: [UInt8] = [0, 0, 0x80, 0x3F], two: [UInt8] = [0, 0, 0, 0x40]
        try writeRawSafetensors(path, header: padded, data: one + two)
        let w = try XCTUnwrap(WeightFile(path: path).tensor("w"))
        XCTAssertEqual(w.values, [1, 2])
        XCTAssertEqual(Int(bitPattern: w.floats.baseAddress) % 4, 0)
    }

    func testRandomCorruptionNeverCrashes() throws {
        // Flip random bytes of a valid file and cut it at random lengths: every variant either
        // opens (and all its tensors read) or fails with one line. Never a crash.
        let header = #"{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"# +
            #""b":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},"c":{"dtype":"F32","shape":[1],"data_offsets":[14,18]}}"#
        let length = UInt64(header.utf8.count)
        let valid = (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + Array(header.utf8) + [UInt8](repeating: 0x3C, count: 18)
        var rng: UInt64 = 99
        var opened = 0
        for _ in 0..<3000 {
            var bytes = valid
            for _ in 0...(tfc_rng_next(&rng) % 3) {
                bytes[Int(tfc_rng_next(&rng) % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: tfc_rng_next(&rng))
            }
            if tfc_rng_next(&rng) % 8 == 0 { bytes = Array(bytes.prefix(Int(tfc_rng_next(&rng) % UInt64(bytes.count)))) }
            // The handle reads the caller's buffer, so all use happens inside withUnsafeBytes.
            try bytes.withUnsafeBytes { raw in
                let (handle, message) = withErrorBuffer { tfc_st_open_memory(raw.baseAddress, raw.count, $0, $1) }
                guard let handle else {
                    XCTAssertFalse(message.isEmpty || message.contains("\n"), message)
                    return
                }
                defer { tfc_st_close(handle) }
                opened += 1
                for i in 0..<tfc_st_count(handle) {
                    let t = tfc_st_tensor(handle, i)!.pointee
                    let f = try XCTUnwrap(tfc_st_f32(handle, i, nil, 0))
                    var sum: Float = 0
                    for j in 0..<Int(t.numel) { sum += f[j] }
                    _ = sum
                }
            }
        }
        XCTAssertGreaterThan(opened, 0)
    }
}
