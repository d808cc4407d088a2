import XCTest
@testable import TFWeights

final class ValidateTests: XCTestCase {
    func testListsMissingUnexpectedAndMisShapedInOneMessage() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/W.safetensors"
        var writer = SafetensorsWriter()
        writer.add("layers.0.mlp.key_param_tokens", shape: [256, 64], data: .init(repeating: 0, count: 256 * 64))
        writer.add("layers.0.mlp.value_param_tokens", shape: [100, 64], data: .init(repeating: 0, count: 100 * 64))
        writer.add("foo", shape: [1], data: [0])
        writer.add("bar", shape: [2], data: [0, 0])
        try writer.write(to: path)
        let file = try WeightFile(path: path)
        let specs = [
            TensorSpec(name: "layers.0.mlp.key_param_tokens", shape: [256, 64], initStd: 0.02),
            TensorSpec(name: "layers.0.mlp.value_param_tokens", shape: [256, 64], initStd: 0.02),
            TensorSpec(name: "layers.1.mlp.key_param_tokens", shape: [256, 64], initStd: 0.02),
            TensorSpec(name: "layers.1.mlp.value_param_tokens", shape: [256, 64], initStd: 0.02),
        ]
        XCTAssertEqual(weightErrorText { try file.validate(against: specs) },
                       "\(path): error: weights do not match the spec: "
                       + "missing layers.1.mlp.key_param_tokens, layers.1.mlp.value_param_tokens; "
                       + "unexpected bar, foo; "
                       + "layers.0.mlp.value_param_tokens has shape [100, 64], spec expects [256, 64]")
    }

    func testMatchingFilePasses() throws {
        let dir = try makeTemporaryDirectory(self)
        let specs = [TensorSpec(name: "a", shape: [2, 3], initStd: 0.02), TensorSpec(name: "b", shape: [4], initStd: 0)]
        try WeightInit.write(specs, seed: 1, to: dir + "/w.safetensors")
        let file = try WeightFile(path: dir + "/w.safetensors")
        XCTAssertNoThrow(try file.validate(against: specs))
        XCTAssertEqual(file.mismatches(against: specs), [])
        // The single-item forms read naturally too.
        XCTAssertEqual(file.mismatches(against: [specs[0], TensorSpec(name: "c", shape: [1], initStd: 0)]),
                       ["missing c", "unexpected b"])
    }
}
