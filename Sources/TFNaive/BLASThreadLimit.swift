import COpenBLAS
import Foundation

/// How many threads OpenBLAS can be given. It cannot use more than its build's `MAX_THREADS`
/// (named in `openblas_get_config()`), and its workers busy-wait between calls, so more threads
/// than cores make every call crawl at full CPU (60 threads on 2 cores looked like a hang). Every
/// setter of OpenBLAS's thread count goes through `clamp`.
public enum BLASThreadLimit {
    /// `MAX_THREADS=N` from the build's configuration string; nil when it does not say.
    public static let buildMaximum: Int? = {
        guard let config = openblas_get_config().map({ String(cString: $0) }),
              let range = config.range(of: "MAX_THREADS=") else { return nil }
        return Int(config[range.upperBound...].prefix { $0.isNumber })
    }()

    /// The most threads OpenBLAS is given: the build's maximum and the online cores, whichever is fewer.
    public static var maximum: Int {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return min(cores, buildMaximum ?? cores)
    }

    /// `requested` clamped to `maximum`, with a one-line note for stderr when it was lowered.
    public static func clamp(_ requested: Int) -> (threads: Int, note: String?) {
        let limit = maximum
        guard requested > limit else { return (max(1, requested), nil) }
        let why = buildMaximum.map { "OpenBLAS here is built for at most \($0) threads and this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores" }
            ?? "this machine has \(limit) cores"
        return (limit, "note: \(requested) threads requested; the naive backend (OpenBLAS) uses \(limit): \(why)")
    }

    /// Sets OpenBLAS's thread count to `clamp(requested)`; returns the note, if any.
    @discardableResult
    public static func set(_ requested: Int) -> String? {
        let (threads, note) = clamp(requested)
        openblas_set_num_threads(Int32(threads))
        return note
    }
}
