import Foundation
import TFIR
import TFSpec
import TFWeights
@_exported import TFTestSupport

/// Spec files and in-memory random weights for pass tests.
enum TestModels {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func graph(_ relativePath: String) throws -> Graph {
        let source = try SourceFile.load(root.appendingPathComponent(relativePath).path)
        return try lower(try parse(source), source: source)
    }

    static func graph(text: String) throws -> Graph {
        let source = SourceFile(path: "test.tfs", text: text)
        return try lower(try parse(source), source: source)
    }
}
