import Foundation

/// The runs of the growth experiment and what each trains: A and B from scratch, and A grown to B
/// with each initialisation of the new tokens, continued until its compute (A's training
/// included) reaches scratch-B's, with a fresh warm-up and cosine after growth.
public struct GrowthPlan: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case scratchA, scratchB
        /// `tfc grow --init` of the new tokens.
        case grown(initialisation: String)
    }

    public struct Run: Equatable, Sendable {
        public var name: String
        public var kind: Kind
        /// Optimiser steps in all (A's included for a grown run).
        public var steps: Int
        /// The step A grew at (nil: trained from scratch); the schedule begins afresh after it.
        public var grownAt: Int?
    }

    /// The three initialisations of the paper's question (docs/growth.md): zero keys with τ
    /// pinned, zero keys with τ following sqrt(n), random keys with zero values.
    public static let initialisations = ["exact", "reference", "random-keys"]

    public var config: GrowthConfig
    /// Training FLOPs of one optimiser step of A and of B (see `TrainingFlops`).
    public var flopsPerStepA: Double
    public var flopsPerStepB: Double
    public var runs: [Run]

    public init(config: GrowthConfig, flopsPerStepA: Double, flopsPerStepB: Double) throws {
        self.config = config; self.flopsPerStepA = flopsPerStepA; self.flopsPerStepB = flopsPerStepB
        let budget = Double(config.stepsB) * flopsPerStepB, spentA = Double(config.stepsA) * flopsPerStepA
        if spentA >= budget {
            throw ExperimentError("error: model A's \(config.stepsA) steps cost as much as scratch-B's \(config.stepsB) (\(spentA) ≥ \(budget) FLOPs); give more steps_b or fewer steps_a")
        }
        // The first step at which the grown run's compute is at least scratch-B's.
        let after = Int(((budget - spentA) / flopsPerStepB).rounded(.up))
        runs = [Run(name: "scratch-A", kind: .scratchA, steps: config.stepsA, grownAt: nil),
                Run(name: "scratch-B", kind: .scratchB, steps: config.stepsB, grownAt: nil)]
            + Self.initialisations.map { Run(name: "grown-" + $0, kind: .grown(initialisation: $0), steps: config.stepsA + after, grownAt: config.stepsA) }
    }

    public func run(_ name: String) -> Run? { runs.first { $0.name == name } }

    /// Cumulative training FLOPs of `run` after `step` steps: A's per-step cost up to the growth,
    /// B's after it.
    public func flops(_ run: Run, atStep step: Int) -> Double {
        switch run.kind {
        case .scratchA: return Double(step) * flopsPerStepA
        case .scratchB: return Double(step) * flopsPerStepB
        case .grown:
            let grownAt = run.grownAt ?? 0
            return Double(min(step, grownAt)) * flopsPerStepA + Double(max(step - grownAt, 0)) * flopsPerStepB
        }
    }
}
