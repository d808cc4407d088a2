import XCTest
import TFWeights
@testable import TFCheckpoint

/// The PyTorch reader on files real PyTorch wrote (Tests/fixtures/checkpoints).
final class TorchCheckpointTests: XCTestCase {
    func floats(_ checkpoint: TorchCheckpoint, _ tensor: TorchTensor, name: String = "t") throws -> [Float] {
        var out = [Float](repeating: .nan, count: tensor.count)
        try out.withUnsafeMutableBufferPointer { try checkpoint.copyFloats(tensor, name: name, from: 0, into: $0) }
        return out
    }

    func testTypedAndUntypedStorages() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("storages.pt"))
        let root = try XCTUnwrap(checkpoint.root.asDict)
        guard case .storage(let raw) = try XCTUnwrap(root["raw"]) else { return XCTFail("'raw' is not a storage: \(root["raw"]!)") }
        XCTAssertEqual(raw.dtype, .uint8)
        XCTAssertEqual(raw.count, 100 * 32 * 4, "an untyped storage counts bytes")
        guard case .tensor(let half) = try XCTUnwrap(root["half"]) else { return XCTFail("'half' is not a tensor") }
        XCTAssertEqual(half.storage.dtype, .float16)
        XCTAssertEqual(half.shape, [2, 3])
        XCTAssertEqual(try floats(checkpoint, half), [0, 1, 2, 3, 4, 5])
        // A window of a tensor: elements 2 ..< 5.
        var window = [Float](repeating: 0, count: 3)
        try window.withUnsafeMutableBufferPointer { try checkpoint.copyFloats(half, name: "half", from: 2, into: $0) }
        XCTAssertEqual(window, [2, 3, 4])
    }

    func testStridedViewsAreCopiedContiguous() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("noncontiguous.bin"))
        let root = try XCTUnwrap(checkpoint.root.asDict)
        for key in ["sequential.2.attention.query.key_param_tokens", "sequential.3.mlp.value_param_tokens"] {
            guard case .tensor(let t) = try XCTUnwrap(root[key]) else { return XCTFail(key) }
            XCTAssertFalse(t.isContiguous, key)
            let expected = try Npy.read(path: Fixtures.path("arrays/\(key).npy"))
            XCTAssertEqual(t.shape, expected.shape)
            XCTAssertEqual(try floats(checkpoint, t, name: key), expected.data, key)
            // From an element in the middle of a row, as the writer's chunks ask.
            var tail = [Float](repeating: 0, count: t.count - 37)
            try tail.withUnsafeMutableBufferPointer { try checkpoint.copyFloats(t, name: key, from: 37, into: $0) }
            XCTAssertEqual(tail, Array(expected.data[37...]), key)
        }
    }

    func testTrainerObjectsArePlaceholdersAndTensorsStillLoad() throws {
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("deepspeed/global_step3/mp_rank_00_model_states.pt"))
        let root = try XCTUnwrap(checkpoint.root.asDict)
        guard case .object(let args) = try XCTUnwrap(root["args"]) else { return XCTFail("args: \(root["args"]!)") }
        XCTAssertEqual(args.callable, "argparse.Namespace")
        XCTAssertEqual(args.state.asDict?["num_layers"]?.asInt, 2)
        XCTAssertEqual(root["iteration"]?.asInt, 3)
        guard case .tensor(let rng) = try XCTUnwrap(root["rng_state"]) else { return XCTFail("rng_state") }
        XCTAssertEqual(rng.storage.dtype, .uint8)
        XCTAssertThrowsError(try floats(checkpoint, rng, name: "rng_state")) { error in
            XCTAssertEqual("\(error)", "\(Fixtures.path("deepspeed/global_step3/mp_rank_00_model_states.pt")): error: tensor 'rng_state' is uint8; only float32, float16 and bfloat16 weights can be imported")
        }
        let module = try XCTUnwrap(root["module"]?.asDict)
        guard case .tensor(let embed) = try XCTUnwrap(module["sequential.0.word_embeddings.weight"]) else { return XCTFail("embedding") }
        XCTAssertEqual(embed.shape, [100, 32])
    }

    func testCodeRunningPickleRunsNothing() throws {
        let marker = "/tmp/tfc-import-fixture-pwned"
        unlink(marker)
        let checkpoint = try TorchCheckpoint(path: Fixtures.path("evil.pt"))
        let root = try XCTUnwrap(checkpoint.root.asDict)
        guard case .object(let evil) = try XCTUnwrap(root["evil"]) else { return XCTFail("evil: \(root["evil"]!)") }
        XCTAssertEqual(evil.callable, "posix.system")
        XCTAssertEqual(evil.arguments.first?.asString, "touch \(marker)")
        guard case .tensor(let weight) = try XCTUnwrap(root["weight"]) else { return XCTFail("weight") }
        XCTAssertEqual(try floats(checkpoint, weight), [1, 1, 1, 1])
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    func testBrokenFiles() throws {
        let cases = [
            ("truncated-zip.bin", "corrupt zip archive: no end-of-central-directory record"),
            ("truncated-legacy.bin", "truncated: storage"),
            ("short-storage.bin", "storage '0' holds 6400 bytes, its 3200 float32 elements need 12800"),
        ]
        for (name, message) in cases {
            XCTAssertThrowsError(try TorchCheckpoint(path: Fixtures.path(name))) { error in
                XCTAssertTrue("\(error)".hasPrefix("\(Fixtures.path(name)): error: \(message)"), "\(error)")
            }
        }
    }
}
