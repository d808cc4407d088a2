import Foundation
import XCTest
@testable import TFSpec
import TFTestSupport

/// The repository root, found from this file's path (Tests/TFSpecTests/Support.swift).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Every `specs/*.tfs` present right now, sorted.
func specFiles() throws -> [String] {
    let dir = repoRoot.appendingPathComponent("specs")
    return try FileManager.default.contentsOfDirectory(atPath: dir.path)
        .filter { $0.hasSuffix(".tfs") }
        .sorted()
        .map { dir.appendingPathComponent($0).path }
}

/// The diagnostic that parsing `text` (as file `t.tfs`) throws; fails the test if it parses.
func diagnostic(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> Diagnostic? {
    do {
        let spec = try parse(text, path: "t.tfs")
        XCTFail("expected a syntax error, but it parsed:\n\(spec.printed)", file: file, line: line)
        return nil
    } catch let d as Diagnostic {
        return d
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
        return nil
    }
}

let nowhere = SourceLocation(file: "<generated>", line: 1, column: 1)

/// Random well-formed specs: everything the parser can produce, with the awkward cases weighted up.
struct SpecGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func pick<T>(_ xs: [T]) -> T { xs.randomElement(using: &rng)! }

    static let keywords = Set(Keyword.allCases.map(\.rawValue))
    static let awkwardNames = ["x", "h", "e", "E", "e5", "E1", "inf", "nan", "_", "_0", "model_", "lets", "True",
                               "FALSE", "returns", "blocks", "site", "tokens", "attention", "mlp", "a1b2"]

    mutating func identifier() -> String {
        if chance(0.4) { return pick(Self.awkwardNames) }
        let first = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
        let rest = first + Array("0123456789")
        while true {
            var s = String(pick(first))
            for _ in 0..<int(0...8) { s.append(pick(rest)) }
            if !Self.keywords.contains(s) { return s }
        }
    }

    mutating func uniqueIdentifiers(_ n: Int, avoiding: Set<String> = []) -> [String] {
        var seen = avoiding
        var out: [String] = []
        while out.count < n {
            let s = identifier()
            if seen.insert(s).inserted { out.append(s) }
        }
        return out
    }

    mutating func string() -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "\\\\", "\"\"", "é", "e\u{301}", "\u{301}", "🙂", "\t", "#",
                      "{", "}", "'", "model", "1e5", "\r", "\u{0}"]
        var s = ""
        for _ in 0..<int(0...8) { s += pick(pieces) }
        return s
    }

    mutating func float() -> Double {
        switch int(0...9) {
        case 0: return pick([0.0, Double.leastNonzeroMagnitude, 2.2250738585072014e-308, Double.greatestFiniteMagnitude, 1e-5, 0.1,
                             0.25, 10000.0, 1e16, 1e22, 1e23, 123456789.125, 9007199254740993.0, 1.0])
        case 1, 2:
            while true {
                let d = Double(bitPattern: rng.next() & ~(UInt64(1) << 63))
                if d.isFinite { return d }
            }
        case 3, 4: return Double.random(in: 0..<1, using: &rng)
        case 5, 6: return Double(int(0...1_000_000))
        default:
            let mantissa = Double.random(in: 1..<10, using: &rng)
            let value = mantissa * pow(10, Double(int(-320...307)))
            return value.isFinite ? value : 1.0
        }
    }

    mutating func leaf() -> Expr {
        switch int(0...6) {
        case 0: return Expr(.integer(pick([0, 1, 7, 4096, Int.max, int(0...Int.max)])), at: nowhere)
        case 1: return Expr(.float(float()), at: nowhere)
        case 2: return Expr(.boolean(chance(0.5)), at: nowhere)
        case 3: return Expr(.string(string()), at: nowhere)
        default: return Expr(.name((0..<int(1...3)).map { _ in identifier() }), at: nowhere)
        }
    }

    mutating func expr(depth: Int) -> Expr {
        if depth <= 0 || chance(0.25) { return leaf() }
        switch int(0...9) {
        case 0, 1:
            return Expr(.negate(expr(depth: depth - 1)), at: nowhere)
        case 2, 3, 4, 5, 6:
            let op = pick(BinaryOperator.allCases)
            return Expr(.binary(op, expr(depth: depth - 1), expr(depth: depth - 1)), at: nowhere)
        default:
            let args = (0..<int(0...4)).map { _ in
                Argument(label: chance(0.5) ? identifier() : nil, value: expr(depth: depth - 1), at: nowhere)
            }
            return Expr(.call(identifier(), args), at: nowhere)
        }
    }

    mutating func bindings(_ names: [String]) -> [Binding] {
        names.map { Binding(name: $0, value: expr(depth: int(0...5)), at: nowhere) }
    }

    mutating func spec() -> Spec {
        let model = ModelDecl(name: string(), fields: bindings(uniqueIdentifiers(int(0...8))), at: nowhere)
        let parameter = identifier()
        let block = BlockDecl(parameter: parameter,
                              statements: bindings(uniqueIdentifiers(int(0...6), avoiding: [parameter])),
                              result: expr(depth: int(0...4)), at: nowhere)
        var items: [Item] = [.model(model), .block(block)]
        items += bindings(uniqueIdentifiers(int(0...5))).map { Item.constant($0) }
        items.shuffle(using: &rng)
        return Spec(items: items, file: "<generated>")
    }
}
