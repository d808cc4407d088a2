import XCTest
@testable import TFCheckpoint

/// Random byte mutations and truncations of real checkpoints: every one opens (and its tensors
/// copy) or fails with a one-line error; none may crash. Seeded, and bounded in count and time.
final class ReaderFuzzTests: XCTestCase {
    struct Generator {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(n, 1)))
        }
    }

    func testMutatedCheckpointsNeverCrash() throws {
        let sources = ["hf/pytorch_model.bin", "legacy.bin", "noncontiguous.bin", "zip64.bin", "storages.pt",
                       "deepspeed/global_step3/mp_rank_00_model_states.pt"]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // TFC_FUZZ_ROUNDS and TFC_FUZZ_SEED run a longer campaign by hand.
        let environment = ProcessInfo.processInfo.environment
        let rounds = environment["TFC_FUZZ_ROUNDS"].flatMap { Int($0) } ?? 600
        var random = Generator(state: environment["TFC_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261201)
        let deadline = Date().addingTimeInterval(rounds > 600 ? 3600 : 20)
        var opened = 0, refused = 0
        for round in 0..<rounds where Date() < deadline {
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(sources[round % sources.count]))))
            var bytes = original
            switch random.next(4) {
            case 0: bytes = Array(bytes.prefix(random.next(bytes.count)))
            case 1:
                for _ in 0...random.next(8) { bytes[random.next(bytes.count)] = UInt8(random.next(256)) }
            case 2:
                // Hit the pickle or the zip directory (the ends of the file) harder.
                let window = min(600, bytes.count)
                for _ in 0...random.next(4) {
                    let i = random.next(2) == 0 ? random.next(window) : bytes.count - 1 - random.next(window)
                    bytes[i] = UInt8(random.next(256))
                }
            default:
                let at = random.next(bytes.count)
                bytes.insert(contentsOf: (0..<random.next(16)).map { _ in UInt8(random.next(256)) }, at: at)
            }
            let path = dir.appendingPathComponent("case.bin").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let checkpoint = try TorchCheckpoint(path: path)
                opened += 1
                try copyEveryTensor(checkpoint.root, checkpoint)
            } catch let error as CheckpointError {
                refused += 1
                XCTAssertFalse(error.description.contains("\n"), error.description)
                XCTAssertTrue(error.description.hasPrefix(path + ": error: ") || error.description.hasPrefix(path + " ("), error.description)
            }
        }
        XCTAssertGreaterThan(opened + refused, 100)
        XCTAssertGreaterThan(refused, 10)
    }

    func copyEveryTensor(_ value: PickleValue, _ checkpoint: TorchCheckpoint, depth: Int = 0) throws {
        guard depth < 8 else { return }
        switch value {
        case .tensor(let t):
            guard t.count < 1 << 20 else { return }
            var out = [Float](repeating: 0, count: t.count)
            do {
                try out.withUnsafeMutableBufferPointer { try checkpoint.copyFloats(t, name: "t", from: 0, into: $0) }
            } catch let error as CheckpointError { XCTAssertFalse(error.description.contains("\n")) }
        case .dict(let d): for (_, v) in d.entries { try copyEveryTensor(v, checkpoint, depth: depth + 1) }
        case .list(let l): for v in l.items { try copyEveryTensor(v, checkpoint, depth: depth + 1) }
        case .tuple(let t): for v in t { try copyEveryTensor(v, checkpoint, depth: depth + 1) }
        default: break
        }
    }
}
