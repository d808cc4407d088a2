import Foundation

/// What `tfc bench train` times steps and kernels with: the wall clock (the default), or the
/// process's CPU time (`--cpu-time`), which on a shared, oversubscribed machine leaves out the
/// time other jobs hold the cores (it still counts every thread of this process).
public enum StepClock: String, Sendable {
    case wall
    case processCPU = "process CPU time"

    /// Seconds from an arbitrary start.
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(self == .wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
