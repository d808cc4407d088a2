import TFIR
import TFSpec

/// A problem with a growth request (or, with the `internal:` prefix, a bug: the spec rewrite and the
/// IR rewrite disagree). One line.
public struct GrowthError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String

    public init(_ message: String) { self.message = message }
    public init(internal message: String) { self.message = "internal consistency error: " + message }

    public var description: String { "error: " + message }
}

/// What τ does at a grown site.
public enum ScaleMode: String, CaseIterable, Sendable {
    /// τ stays at its old value (written into the spec as `scale:`): zero tokens leave the output
    /// exactly as it was.
    case pinned
    /// τ follows sqrt(n) as in the reference training code (any `scale:` is dropped): the output drifts.
    case reference
}

/// How the key rows of new parameter tokens start. Value rows always start at zero.
public enum NewTokenInit: Equatable, Sendable {
    case zero
    /// normal(0, std): the new tokens then change every old token's activation through the row norm.
    case normal(std: Double)
}

/// One growth step as an IR rewrite. Besides the graph rewrite (`run`, so it runs in a
/// `PassPipeline` with the verifier after it), it reports how the parameters of the rewritten graph
/// are made from the old ones, and makes the same change to the spec's AST.
public protocol GrowthRewrite: Pass {
    /// How every parameter of `new` (= `run(old)`) is made from the parameters of `old`.
    func parameterMap(from old: Graph, to new: Graph) throws -> ParameterMap
    /// The spec `spec` (which lowers to `old`) changed so that it lowers to `run(old)`.
    func rewrite(_ spec: Spec, lowering old: Graph) throws -> Spec
    /// Why the rewritten model may compute something other than `old` does (empty: it computes
    /// exactly the same function, up to float rounding).
    func drift(in old: Graph) -> [String]
}

/// The result of a growth: the new spec, its graph, and how to build its weights.
public struct GrowthResult {
    /// The rewritten spec (print it with `Printer`).
    public var spec: Spec
    /// `spec` lowered: checked equal to the IR rewrites' result.
    public var graph: Graph
    public var plan: WeightPlan
    /// Reasons the grown model may not compute the old function; empty means exact.
    public var drift: [String]
    /// The graph after each rewrite, starting with the original (for tests and dumps).
    public var steps: [Graph]
}

/// Growth rewrites composed by `PassPipeline`; then the matching spec rewrites, a re-lowering of
/// the new spec checked against the IR result, and the composed weight plan.
public struct GrowthPipeline {
    public var rewrites: [any GrowthRewrite]

    public init(_ rewrites: [any GrowthRewrite]) { self.rewrites = rewrites }

    /// `spec` must lower to `graph` (an unfused graph, as `lower` produces it).
    public func run(spec: Spec, graph: Graph, file: String? = nil) throws -> GrowthResult {
        var steps = [graph]
        let rewritten = try PassPipeline(rewrites).run(graph) { _, g in steps.append(g) }

        var newSpec = spec
        var map = ParameterMap.identity(of: graph)
        var drift: [String] = []
        for (i, rewrite) in rewrites.enumerated() {
            newSpec = try rewrite.rewrite(newSpec, lowering: steps[i])
            map = try rewrite.parameterMap(from: steps[i], to: steps[i + 1]).composed(after: map)
            drift += rewrite.drift(in: steps[i])
        }
        if let file { newSpec.file = file }

        // The printed spec must read back as itself, and lower to exactly what the IR rewrites made.
        let text = Printer.print(newSpec)
        let reparsed: Spec
        do { reparsed = try parse(text, path: newSpec.file) } catch {
            throw GrowthError(internal: "the grown spec does not parse: \(error)")
        }
        if reparsed != newSpec { throw GrowthError(internal: "the grown spec does not print and parse back as itself") }
        let lowered: Graph
        do { lowered = try lower(reparsed) } catch {
            throw GrowthError(internal: "the grown spec does not lower: \(error)")
        }
        if let difference = lowered.structuralDifference(from: rewritten) {
            throw GrowthError(internal: "the re-lowered spec and the IR rewrite disagree: \(difference)")
        }
        if lowered.parameters != rewritten.parameters {
            throw GrowthError(internal: "the re-lowered spec and the IR rewrite have different parameters")
        }
        let plan = try WeightPlan(map: map, old: graph.parameters, new: lowered.parameters)
        return GrowthResult(spec: newSpec, graph: lowered, plan: plan, drift: drift, steps: steps)
    }
}

extension Graph {
    /// nil if `self` and `other` are the same program up to value ids and source locations;
    /// otherwise the first difference, for an error message.
    public func structuralDifference(from other: Graph) -> String? {
        if config != other.config { return "model configurations differ (\(config.layers) vs \(other.config.layers) layers)" }
        if instructions.count != other.instructions.count {
            return "\(instructions.count) instructions vs \(other.instructions.count)"
        }
        var position: [ValueID: Int] = [:], otherPosition: [ValueID: Int] = [:]
        for (i, (a, b)) in zip(instructions, other.instructions).enumerated() {
            if a.op != b.op { return "instruction \(i): \(a.op.name) {\(a.op)} vs \(b.op.name) {\(b.op)}" }
            if a.type != b.type { return "instruction \(i) (\(a.op.name)): type \(a.type) vs \(b.type)" }
            if a.operands.map({ position[$0] }) != b.operands.map({ otherPosition[$0] }) {
                return "instruction \(i) (\(a.op.name)) reads different operands"
            }
            position[a.result] = i
            otherPosition[b.result] = i
        }
        if position[output] != otherPosition[other.output] { return "the outputs differ" }
        return nil
    }
}

/// The sites of a graph, by name, as layer 0 has them (every layer has the same sites).
public extension Graph {
    var siteTemplates: [PattentionOp] {
        pattentionSites.filter { $0.layer == 0 }
    }
}
