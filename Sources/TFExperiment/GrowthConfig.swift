import Foundation

/// The growth experiment's settings, read from a JSON file (specs/experiments/growth.json):
/// the two models, how A grows, and the training schedule shared by every run.
public struct GrowthConfig: Codable, Equatable, Sendable {
    /// Model A's spec and model B's (A with more parameter tokens), relative to the config file.
    public var specA: String
    public var specB: String
    /// `tfc grow --tokens` clauses that turn A into B, e.g. ["all=x4"].
    public var grow: [String]
    /// Seed of the initial weights, the window sampler and the random new keys.
    public var seed: UInt64
    public var batch: Int
    public var seq: Int
    public var lr: Double
    public var warmup: Int
    /// Optimiser steps of model A, and of model B from scratch; the grown runs train until their
    /// compute (A's included) reaches scratch-B's.
    public var stepsA: Int
    public var stepsB: Int
    /// Held-out loss (and a checkpoint, for resuming) every this many steps.
    public var evalEvery: Int
    /// Held-out windows of `seq` tokens per evaluation.
    public var evalWindows: Int

    enum CodingKeys: String, CodingKey {
        case specA = "spec_a", specB = "spec_b", grow, seed, batch, seq, lr, warmup
        case stepsA = "steps_a", stepsB = "steps_b", evalEvery = "eval_every", evalWindows = "eval_windows"
    }

    public init(specA: String, specB: String, grow: [String], seed: UInt64, batch: Int, seq: Int, lr: Double, warmup: Int,
                stepsA: Int, stepsB: Int, evalEvery: Int, evalWindows: Int) {
        self.specA = specA; self.specB = specB; self.grow = grow; self.seed = seed; self.batch = batch; self.seq = seq
        self.lr = lr; self.warmup = warmup; self.stepsA = stepsA; self.stepsB = stepsB; self.evalEvery = evalEvery; self.evalWindows = evalWindows
    }

    /// Reads and checks `path`; the spec paths come back relative to the working directory.
    public static func load(_ path: String) throws -> GrowthConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentError("\(path): error: cannot read the experiment config")
        }
        var config: GrowthConfig
        do { config = try JSONDecoder().decode(GrowthConfig.self, from: data) } catch let DecodingError.keyNotFound(key, _) {
            throw ExperimentError("\(path): error: the config lacks \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ExperimentError("\(path): error: \"\(key)\" has the wrong type (\(context.debugDescription))")
        } catch {
            throw ExperimentError("\(path): error: not a JSON experiment config: \(error.localizedDescription)")
        }
        try config.check(path)
        let directory = (path as NSString).deletingLastPathComponent
        func resolved(_ p: String) -> String { p.hasPrefix("/") || directory.isEmpty ? p : directory + "/" + p }
        config.specA = resolved(config.specA)
        config.specB = resolved(config.specB)
        return config
    }

    func check(_ path: String) throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw ExperimentError("\(path): error: \(what)") } }
        try require(!grow.isEmpty, "\"grow\" must list at least one --tokens clause, e.g. \"all=x4\"")
        try require(batch >= 1, "\"batch\" must be at least 1, got \(batch)")
        try require(seq >= 2, "\"seq\" must be at least 2, got \(seq)")
        try require(lr > 0 && lr.isFinite, "\"lr\" must be a positive number, got \(lr)")
        try require(warmup >= 0, "\"warmup\" must not be negative, got \(warmup)")
        try require(stepsA >= 1 && stepsB >= 1, "\"steps_a\" and \"steps_b\" must be at least 1, got \(stepsA) and \(stepsB)")
        try require(evalEvery >= 1, "\"eval_every\" must be at least 1, got \(evalEvery)")
        try require(evalWindows >= 1, "\"eval_windows\" must be at least 1, got \(evalWindows)")
    }
}

/// An experiment input the user must fix, or a run that failed; the message says where and what.
public struct ExperimentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
