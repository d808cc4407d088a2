import Foundation

/// Runs jobs with dependencies on up to `width` threads at once, in list order among the ready
/// ones. After a failure no new job starts; the running ones finish and the first error is thrown.
final class JobQueue: @unchecked Sendable {
    struct Job {
        var name: String
        var after: [String]
        var body: () throws -> Void
    }

    private let jobs: [Job]
    private let width: Int
    private let condition = NSCondition()
    private var started: Set<String> = []
    private var finished: Set<String> = []
    private var failure: Error?

    init(_ jobs: [Job], width: Int) { self.jobs = jobs; self.width = width }

    func run() throws {
        let group = DispatchGroup()
        for _ in 0..<max(1, min(width, jobs.count)) {
            group.enter()
            Thread.detachNewThread { [self] in worker(); group.leave() }
        }
        group.wait()
        if let failure { throw failure }
    }

    private func worker() {
        while let job = next() {
            do { try job.body() } catch {
                condition.lock(); if failure == nil { failure = error }; condition.unlock()
            }
            condition.lock(); finished.insert(job.name); condition.broadcast(); condition.unlock()
        }
    }

    /// The first job not started whose dependencies are done, waiting while others run; nil when
    /// all are started or a job failed.
    private func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if failure != nil || started.count == jobs.count { return nil }
            if let job = jobs.first(where: { !started.contains($0.name) && $0.after.allSatisfy(finished.contains) }) {
                started.insert(job.name)
                return job
            }
            condition.wait()
        }
    }
}
