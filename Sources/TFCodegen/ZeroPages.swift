import Foundation
import TFPasses

/// Zeroed float memory the kernel hands out page by page as it is first touched (an anonymous
/// mapping): a KV cache sized for the whole context costs only the pages of the positions
/// actually run. A reservation the system refuses is an error, not a crash.
final class ZeroPages {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>
    private let bytes: Int

    /// - Parameter what: names the memory in the error ("the KV cache of attention 3").
    init(count: Int, what: String) throws {
        self.count = count
        bytes = max(4096, count * MemoryLayout<Float>.size)
        let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let raw, raw != MAP_FAILED else {
            throw ReservationError(description: "error: cannot reserve \(formatBytes(bytes)) for \(what): \(String(cString: strerror(errno)))")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: count)
    }

    deinit { munmap(pointer, bytes) }

    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }
}

/// Memory the system would not give (the message is one line, ready for the user).
public struct ReservationError: Error, CustomStringConvertible {
    public var description: String
}
