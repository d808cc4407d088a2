import Foundation
import XCTest
import TFSpec
import TFPasses
@testable import TFIR
import TFTestSupport

/// A bounded random fuzzer of the whole front half (parse → lower → fusion passes → memory plan):
/// a real spec mutated at the level of its values and names — extreme integers, overflowing
/// arithmetic, huge floats, other names, duplicated, deleted and swapped lines. Every mutant must
/// either compile or fail with one diagnostic located inside the file; a trap or a stack overflow
/// would take the test process down. (The character-level parser fuzzer is in TFSpecTests.)
final class SpecFuzzTests: XCTestCase {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("specs/tiny.tfs")

    static let extremeValues = [
        "0", "1", "-1", "2", "3", "7", "64", "4096", "4097", "16777216", "2147483647", "2147483648", "4294967296",
        "1099511627776", "1152921504606846976", "4611686018427387904", "9223372036854775807", "(-9223372036854775807 - 1)",
        "(-9223372036854775807 - 1) / (-1)", "(-9223372036854775807 - 1) % (-1)", "-(-9223372036854775807 - 1)",
        "9223372036854775807 + 1", "4611686018427387904 * 2", "hidden * hidden * hidden", "1e300", "1e-300", "-0.0",
        "0.5", "2.5", "1e308 * 10", "true", "\"s\"", "layers * 1000000",
    ]
    static let names = ["x", "h", "q", "k", "v", "a", "x1", "x2", "h1", "hidden", "heads", "vocab", "layers", "context",
                        "qkv", "proj", "ffn", "layernorm", "pattention", "attention", "add", "mlp", "softmax", "affine", "zz"]
    static let appendices = [" + x", " + 1", " * 2", " * 1000000000000", " % (-1)", " / (-1)", " - 9223372036854775807", " + h"]

    struct Mutator {
        var rng: SplitMix64
        mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
        mutating func pick<T>(_ xs: [T]) -> T { xs[int(0..<xs.count)] }

        /// Ranges of every match of `pattern` in `text`.
        func matches(_ pattern: String, in text: String) -> [Range<String.Index>] {
            let regex = try! NSRegularExpression(pattern: pattern)
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range, in: text) }
        }

        mutating func mutate(_ text: String) -> String {
            var text = text
            for _ in 0..<int(1..<4) {
                switch int(0..<6) {
                case 0, 1:
                    let numbers = matches("\\b[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?\\b", in: text)
                    if !numbers.isEmpty { text.replaceSubrange(pick(numbers), with: pick(SpecFuzzTests.extremeValues)) }
                case 2:
                    let identifiers = matches("\\b[A-Za-z_][A-Za-z0-9_]*\\b", in: text)
                    if !identifiers.isEmpty { text.replaceSubrange(pick(identifiers), with: pick(SpecFuzzTests.names)) }
                case 3:
                    let ends = matches("\\b[A-Za-z0-9_)]+\\b", in: text)
                    if !ends.isEmpty { text.insert(contentsOf: pick(SpecFuzzTests.appendices), at: pick(ends).upperBound) }
                default:
                    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    let i = int(0..<lines.count), j = int(0..<lines.count)
                    switch int(0..<3) {
                    case 0: lines.insert(lines[i], at: j)
                    case 1: lines.remove(at: i)
                    default: lines.swapAt(i, j)
                    }
                    text = lines.joined(separator: "\n")
                }
            }
            return text
        }
    }

    func testMutatedSpecsLowerOrFailWithALocatedError() throws {
        let original = try String(contentsOf: Self.tiny, encoding: .utf8)
        var outcomes = (lowered: 0, refused: 0)
        for seed in 0..<400 as Range<UInt64> {
            var mutator = Mutator(rng: SplitMix64(seed: seed))
            let text = mutator.mutate(original)
            let source = SourceFile(path: "m.tfs", text: text)
            do {
                let graph = try lower(try parse(source), source: source)
                // Lowered: everything the later phases compute about it must work too.
                XCTAssertGreaterThan(graph.parameterCount, 0, "seed \(seed)")
                XCTAssertLessThanOrEqual(MemoryNeed(graph).total, Double(SizeLimits.machineMemory), "seed \(seed)")
                if graph.instructions.count < 20_000 {
                    let fused = try PassPipeline.fusion.run(graph)
                    XCTAssertFalse(MemoryPlan(fused).bufferColumns.isEmpty, "seed \(seed)")
                }
                outcomes.lowered += 1
            } catch let d as Diagnostic {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                XCTAssertEqual(d.location.file, "m.tfs", "seed \(seed): \(d)")
                XCTAssertTrue((1...lines.count).contains(d.location.line), "seed \(seed): \(d)")
                XCTAssertTrue((1...(lines[d.location.line - 1].count + 1)).contains(d.location.column), "seed \(seed): \(d)")
                XCTAssertFalse(d.headline.contains("\n"), "seed \(seed): \(d)")
                outcomes.refused += 1
            } catch {
                XCTFail("seed \(seed): not a located diagnostic: \(error)\n\(text)")
            }
        }
        // The mutations are neither all harmless nor all fatal: both paths are exercised.
        XCTAssertGreaterThan(outcomes.lowered, 20)
        XCTAssertGreaterThan(outcomes.refused, 100)
    }
}

