import Foundation
import TFPasses

/// Zeroed memory the kernel hands out page by page as it is first touched (an anonymous
/// mapping): an arena laid out for the whole context costs only the pages of the rows and
/// positions actually run. A reservation the system refuses is an error, not a crash.
final class ZeroPages {
    let raw: UnsafeMutableRawPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// - Parameters:
    ///   - bytes: how much to reserve.
    ///   - hugePages: start on a 2 MiB boundary and ask for transparent huge pages (streamed
    ///     weights take far fewer TLB misses); without, memory is taken 4 KiB at a time.
    ///   - what: names the memory in the error ("the weights").
    init(bytes: Int, hugePages: Bool = false, what: String) throws {
        let huge = HugePages.size
        let bytes = max(4096, bytes)
        mappedBytes = hugePages ? bytes + huge : bytes
        // Address space only (no commit charge): what is never touched is never taken.
        let m = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let m, m != MAP_FAILED else {
            throw ReservationError(description: "error: cannot reserve \(formatBytes(bytes)) for \(what): \(String(cString: strerror(errno)))")
        }
        mapping = m
        if hugePages {
            raw = m + (huge - Int(bitPattern: m) % huge) % huge
            HugePages.advise(raw, bytes: bytes)
        } else {
            raw = m
        }
    }

    deinit { munmap(mapping, mappedBytes) }
}

/// Memory the system would not give (the message is one line, ready for the user).
public struct ReservationError: Error, CustomStringConvertible {
    public var description: String
}
