import Foundation
import XCTest

/// HF `tokenizers` (the Python package) run through Tests/reference/hf_tokenizer.py: the independent
/// reference every expected id in these tests comes from.
enum HFReference {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let neox = root.appendingPathComponent("tokenizers/gpt-neox-20b.tokenizer.json").path

    struct Answer { var encode: [[Int32]]; var encodeFiles: [[Int32]]; var decode: [String]; var normalize: [String] }

    static func run(tokenizer: String = neox, encode: [String] = [], encodeFiles: [String] = [], decode: [[Int32]] = [], normalize: [String] = []) throws -> Answer {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let request = dir.appendingPathComponent("request.json"), response = dir.appendingPathComponent("response.json")
        let body: [String: Any] = ["encode": encode, "encode_files": encodeFiles, "decode": decode.map { $0.map(Int.init) }, "normalize": normalize]
        try JSONSerialization.data(withJSONObject: body).write(to: request)
        try python([root.appendingPathComponent("Tests/reference/hf_tokenizer.py").path, tokenizer, request.path, response.path])
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: response)) as! [String: Any]
        func ids(_ key: String) -> [[Int32]] { (object[key] as! [[NSNumber]]).map { $0.map(\.int32Value) } }
        return Answer(encode: ids("encode"), encodeFiles: ids("encode_files"), decode: object["decode"] as! [String],
                      normalize: object["normalize"] as! [String])
    }

    /// Runs python3; a missing `tokenizers` package is a failure with the fix in the message.
    static func python(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let err = Pipe()
        process.standardError = err
        try process.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = String(decoding: data, as: UTF8.self)
        if process.terminationStatus != 0 {
            XCTFail("the HF reference failed (install it with `python3 -m pip install tokenizers`, or run scripts/setup.sh): \(stderr)")
            throw ReferenceFailure()
        }
    }

    struct ReferenceFailure: Error {}

    /// Python's standard library directory (its sources are real text nobody here wrote).
    static func pythonStdlib() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
