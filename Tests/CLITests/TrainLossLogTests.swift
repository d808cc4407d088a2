import Foundation
import XCTest

/// `DIR/loss.json`: the rows of loss.csv as JSON, held-out losses where evaluated, kept on --resume.
final class TrainLossLogTests: XCTestCase {
    func testLossJSONMatchesTheCSVAndTheProgressLines() throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = dir.appendingPathComponent("text.txt").path
        try Data(contentsOf: TFC.root.appendingPathComponent("README.md")).prefix(6_000).write(to: URL(fileURLWithPath: data))
        let out = dir.appendingPathComponent("run").path
        let common = ["train", TFC.root.appendingPathComponent("specs/tiny.tfs").path, "--data", data, "--steps", "6", "--batch", "2",
                      "--seq", "16", "--eval-every", "2", "--log-every", "1", "--out", out]
        XCTAssertSucceeded(try TFC.run(common + ["--stop-after", "3"]), "train")
        let r = try TFC.run(common + ["--resume"])
        XCTAssertSucceeded(r, "resume")

        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/loss.json"))) as? [String: Any]
        let steps = try XCTUnwrap(object?["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["step"] as? Int }, [1, 2, 3, 4, 5, 6])
        let csv = try String(contentsOfFile: out + "/loss.csv", encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(csv.count, 6)
        // Foundation's JSON parser on Linux may round the last bit of a double: compare to 1e-14.
        func same(_ json: Any?, _ text: String, line: UInt = #line) throws {
            let a = try XCTUnwrap(json as? Double, line: line), b = try XCTUnwrap(Double(text), line: line)
            XCTAssertEqual(a, b, accuracy: abs(b) * 1e-14, line: line)
        }
        for (row, fields) in zip(steps, csv) {
            try same(row["loss"], fields[1])
            try same(row["learning_rate"], fields[2])
            try same(row["gradient_norm"], fields[3])
            if fields[4].isEmpty { XCTAssertTrue(row["held_out_loss"] is NSNull, "\(row)") } else { try same(row["held_out_loss"], fields[4]) }
        }
        // Held out at steps 2, 3 (where the first run stopped), 4 and 6.
        XCTAssertEqual(steps.filter { $0["held_out_loss"] is Double }.map { $0["step"] as? Int }, [2, 3, 4, 6])
        // The progress line of step 5 prints the loss and rate the log holds.
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("step 5/6  loss ") }, r.stdout).split(separator: " ")
        XCTAssertEqual(try XCTUnwrap(steps[4]["loss"] as? Double), try XCTUnwrap(Double(line[3])), accuracy: 1e-4)
        XCTAssertEqual(try XCTUnwrap(steps[4]["learning_rate"] as? Double), try XCTUnwrap(Double(line[5])), accuracy: 1e-6)
    }
}
