import Foundation

/// The files Tests/fixtures/make_checkpoints.py wrote with real PyTorch.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures/checkpoints")
    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }
}
