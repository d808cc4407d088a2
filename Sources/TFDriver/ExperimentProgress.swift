import Foundation
import TFExperiment
import TFTraining
#if canImport(Glibc)
import Glibc
#endif

/// Every `every` seconds, one line with the step each started, unfinished run's last checkpoint reached.
final class ExperimentProgress: @unchecked Sendable {
    let plan: GrowthPlan, directory: (String) -> String, every: Double
    private var timer: DispatchSourceTimer?

    init(plan: GrowthPlan, directory: @escaping (String) -> String, every: Double) { self.plan = plan; self.directory = directory; self.every = every }

    func start() {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + every, repeating: every)
        timer.setEventHandler { [self] in
            let parts = plan.runs.compactMap { run -> String? in
                // Runs not started have no log yet.
                guard let step = TrainingLog(resumingFrom: directory(run.name), upTo: run.steps).rows.last?.step else { return nil }
                return step < run.steps ? "\(run.name) \(step)/\(run.steps)" : nil
            }
            if !parts.isEmpty { say("progress: " + parts.joined(separator: ", ")) }
        }
        timer.resume()
        self.timer = timer
    }

    func stop() { timer?.cancel() }
}

private let sayLock = NSLock()

/// A progress line, timestamped and flushed at once (the runs report from several threads).
func say(_ line: String) {
    let formatter = DateFormatter()
    formatter.dateFormat = "HH:mm:ss"
    sayLock.lock()
    print("[\(formatter.string(from: Date()))] " + line)
    fflush(stdout)
    sayLock.unlock()
}
