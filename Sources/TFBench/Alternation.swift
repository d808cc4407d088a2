import Foundation

/// Monotonic wall-clock time in seconds.
public func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// Wraps `body` as a side that times one whole call of itself.
public func timed(_ body: @escaping () -> Void) -> () -> Double {
    {
        let start = monotonicSeconds()
        body()
        return monotonicSeconds() - start
    }
}

/// Runs the sides of a comparison alternately, so drift on a shared machine (other jobs, clock
/// changes, thermal state) hits every side equally: `warmup` untimed rounds, then `repeats` timed
/// rounds, each round running side 0, side 1, … once (A B A B …).
///
/// A side is a closure that runs once and returns the seconds it took (see `timed`), so a side
/// can leave set-up work, such as a decode's prompt, out of its figure. `beforeEach` runs before
/// every call, untimed (the kernel bench evicts the caches there).
public struct Alternation {
    public var warmup: Int
    public var repeats: Int

    public init(warmup: Int, repeats: Int) {
        precondition(warmup >= 0 && repeats >= 1)
        self.warmup = warmup
        self.repeats = repeats
    }

    /// The timings of each side, in `sides` order, `repeats` each. `step` is told (done, total)
    /// after every call, for progress output.
    public func run(_ sides: [() -> Double], beforeEach: () -> Void = {}, step: (Int, Int) -> Void = { _, _ in }) -> [Summary] {
        var timings = [[Double]](repeating: [], count: sides.count)
        let total = (warmup + repeats) * sides.count
        var done = 0
        for round in 0..<(warmup + repeats) {
            for (index, side) in sides.enumerated() {
                beforeEach()
                let seconds = side()
                if round >= warmup { timings[index].append(seconds) }
                done += 1
                step(done, total)
            }
        }
        return timings.map(Summary.init)
    }
}
