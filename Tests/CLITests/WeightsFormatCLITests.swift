import Foundation
import XCTest

/// `--weights-format` on run, generate, eval, bench model and bench accuracy: bad values and a
/// non-f32 format on the naive backend are one-line errors (exit 1), checked before anything loads.
final class WeightsFormatCLITests: XCTestCase {
    func testUnknownFormatOnEveryCommand() throws {
        let unknown = "error: --weights-format: unknown format 'fp16'; use f32, bf16, int8"
        for command in modelRunningCommands("--weights-format", "fp16") + [benchModelCommand("--weights-format", "f32,fp16")] { try assertUsageError(command, unknown) }
        try assertUsageError(["bench", "accuracy", "specs/tiny.tfs", "--weights-format", "fp16"], unknown)
    }

    func testBadLists() throws {
        try assertUsageError(benchModelCommand("--weights-format", "f32,,bf16"),
                             "error: --weights-format: empty format in 'f32,,bf16'; use a comma-separated list of f32, bf16, int8 or all")
        try assertUsageError(benchModelCommand("--weights-format", "bf16,bf16"),
                             "error: --weights-format: a format is listed twice in 'bf16,bf16'")
        try assertUsageError(["bench", "accuracy", "specs/tiny.tfs", "--weights-format", "int8,f32,int8"],
                             "error: --weights-format: a format is listed twice in 'int8,f32,int8'")
    }

    /// The naive backend computes in f32 only: bf16 and int8 are refused, never computed in f32.
    func testNaiveBackendRefusesNarrowFormats() throws {
        for format in ["bf16", "int8"] {
            let message = "error: --weights-format \(format): the naive backend computes in f32 only; use --backend fused or --weights-format f32"
            for command in modelRunningCommands("--backend", "naive", "--weights-format", format) { try assertUsageError(command, message) }
        }
    }

    func testAccuracyRowsAgainstNaive() throws {
        let r = try TFC.run(["bench", "accuracy", "specs/tiny.tfs", "--tokens", "12", "--threads", "2", "--weights-format", "f32,bf16"])
        XCTAssertSucceeded(r, "bench accuracy")
        let rows = r.stdout.split(separator: "\n").map(String.init)
        let f32 = try XCTUnwrap(rows.first { $0.hasPrefix("f32 ") }, r.stdout)
        let bf16 = try XCTUnwrap(rows.first { $0.hasPrefix("bf16 ") }, r.stdout)
        XCTAssertFalse(rows.contains { $0.hasPrefix("int8 ") }, r.stdout)
        // The relative RMS is the first figure of a row; f32 is the fused backend's fp32 rounding only.
        func rms(_ row: String) -> Double? { Double(row.split(separator: " ")[1].dropLast()) }
        XCTAssertLessThan(try XCTUnwrap(rms(f32)), 1e-3, r.stdout)   // percent
        XCTAssertLessThan(try XCTUnwrap(rms(bf16)), 1.3, r.stdout)
        XCTAssertGreaterThan(try XCTUnwrap(rms(bf16)), try XCTUnwrap(rms(f32)), r.stdout)
        XCTAssertTrue(bf16.contains("ok"), r.stdout)
        XCTAssertTrue(rows.contains { $0.hasPrefix("f32 ") && $0.hasSuffix("(12/12)") }, r.stdout)
    }

    /// One fused row per format, each named by its format, and the bounds of 2-byte (bf16) and
    /// 1.0625-byte (int8: a 2-byte scale per 32 codes) weights printed.
    func testBenchModelRowPerFormat() throws {
        let r = try TFC.run(["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "4", "--repeat", "1", "--warmup", "0",
                             "--threads", "2", "--weights-format", "f32,bf16,int8"])
        XCTAssertSucceeded(r, "bench model --weights-format f32,bf16,int8")
        let rows = r.stdout.split(separator: "\n").map(String.init)
        for format in ["f32", "bf16", "int8"] {
            let named = rows.filter { $0.contains("fused ") && $0.contains(" \(format) ") && ($0.contains("% cpu") || $0.contains("% mem")) }
            XCTAssertEqual(named.count, 2, "a prefill and a decode row for \(format):\n" + r.stdout)
        }
        XCTAssertTrue(r.stdout.contains("decode with 2-byte weights: each step reads"), r.stdout)
        XCTAssertTrue(r.stdout.contains("decode with 1.0625-byte weights: each step reads"), r.stdout)
        XCTAssertFalse(r.stdout.contains("failed"), r.stdout)
    }

    func testAccuracyTokensBeyondContext() throws {
        let r = try TFC.run(["bench", "accuracy", "specs/tiny.tfs", "--tokens", "100000"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: --tokens 100000 exceeds the context of "), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }
}
