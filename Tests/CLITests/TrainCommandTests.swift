import Foundation
import XCTest

/// `tfc train`: the held-out loss falls on real text, a resumed run equals a straight one bit for
/// bit, and bad inputs are refused with one line.
final class TrainCommandTests: XCTestCase {
    var tiny: String { TFC.root.appendingPathComponent("specs/tiny.tfs").path }

    /// 20 KB of English (the repository's README and docs), bytes as tokens.
    func text(in dir: URL) throws -> String {
        var data = Data()
        for name in ["README.md", "docs"] {
            let url = TFC.root.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            XCTAssertTrue(FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), url.path)
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: url.path).sorted().map { url.appendingPathComponent($0) }
                : [url]
            for f in files where f.pathExtension == "md" { data.append(try Data(contentsOf: f)) }
        }
        let path = dir.appendingPathComponent("text.txt").path
        try data.prefix(20_000).write(to: URL(fileURLWithPath: path))
        XCTAssertGreaterThan(data.count, 10_000)
        return path
    }

    func heldOut(_ stdout: String) -> (before: Double, after: Double)? {
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("held-out loss ") && $0.contains("→") }) else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count > 4, let a = Double(parts[2]), let b = Double(parts[4]) else { return nil }
        return (a, b)
    }

    func testHeldOutLossFallsOnText() throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = try text(in: dir)
        let out = dir.appendingPathComponent("run").path
        let r = try TFC.run(["train", tiny, "--data", data, "--steps", "300", "--batch", "4", "--seq", "32", "--lr", "3e-3",
                             "--warmup", "20", "--out", out, "--log-every", "100"])
        XCTAssertSucceeded(r, "tfc train")
        XCTAssertTrue(r.stdout.contains("step 300/300  loss "), r.stdout)
        let loss = try XCTUnwrap(heldOut(r.stdout), r.stdout)
        // An untrained model is near uniform over 256 bytes (ln 256 = 5.55); byte-level English
        // learnt for 300 small steps gets well under 4.
        XCTAssertEqual(loss.before, log(256), accuracy: 0.2)
        XCTAssertLessThan(loss.after, loss.before - 1.5, r.stdout)
        // The weights it wrote run, and the checkpoint's JSON names the last step.
        XCTAssertSucceeded(try TFC.run(["run", tiny, "--weights", out + "/weights.safetensors", "--tokens", "84,104,101", "--backend", "naive"]), "tfc run")
        let journal = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/checkpoint.json"))) as? [String: Any]
        XCTAssertEqual(journal?["step"] as? Int, 300)
        // The loss curve: one point per step, the held-out loss of the last step as a dot.
        let svg = try String(contentsOfFile: out + "/loss.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), svg)
        let points = svg.components(separatedBy: "points=\"").last?.split(separator: "\"").first?.split(separator: " ")
        XCTAssertEqual(points?.count, 300)
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 1)
    }

    /// N steps straight == N/2, resume, N/2: weights, both moments, step and sampler state.
    func testResumeIsBitExact() throws { try resumeIsBitExact(backend: []) }

    /// The same on the fused backend (generated gradient and AdamW kernels).
    /// For every vector target this CPU runs (a run repeats exactly at the same target).
    func testResumeIsBitExactFused() throws {
        for target in TFC.runnableTargets { try resumeIsBitExact(backend: ["--backend", "fused", "--target-cpu", target]) }
    }

    func resumeIsBitExact(backend: [String]) throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = try text(in: dir)
        let common = ["train", tiny, "--data", data, "--steps", "16", "--batch", "2", "--seq", "16", "--lr", "2e-3", "--warmup", "4",
                      "--weight-decay", "0.1", "--seed", "5"] + backend
        let straight = dir.appendingPathComponent("straight").path, split = dir.appendingPathComponent("split").path
        XCTAssertSucceeded(try TFC.run(common + ["--out", straight]), "straight")
        XCTAssertSucceeded(try TFC.run(common + ["--out", split, "--stop-after", "8"]), "first half")
        let half = try Data(contentsOf: URL(fileURLWithPath: split + "/checkpoint.safetensors"))
        let resumed = try TFC.run(common + ["--out", split, "--resume"])
        XCTAssertSucceeded(resumed, "resume")
        XCTAssertTrue(resumed.stdout.contains("steps 9...16 of 16"), resumed.stdout)
        for name in ["checkpoint.safetensors", "weights.safetensors"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: straight + "/" + name)), b = try Data(contentsOf: URL(fileURLWithPath: split + "/" + name))
            XCTAssertEqual(a, b, name)
        }
        XCTAssertNotEqual(half, try Data(contentsOf: URL(fileURLWithPath: straight + "/checkpoint.safetensors")), "training moved the state")
        // The loss log: one row per step, the same losses either way (the split run also has the
        // held-out loss of step 8, where it stopped).
        func rows(_ dir: String) throws -> [[String]] {
            try String(contentsOfFile: dir + "/loss.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        let a = try rows(straight), b = try rows(split)
        XCTAssertEqual(a.count, 17)
        XCTAssertEqual(a.map { $0.prefix(4) }, b.map { $0.prefix(4) })
        XCTAssertEqual(b[8][4].isEmpty, false, "held-out loss where the first half stopped")
        XCTAssertEqual(a[16][4].isEmpty, false, "held-out loss at the end")
    }

    /// --eval-data: all of --data trains, the held-out loss is measured on the other file.
    func testSeparateEvaluationData() throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = try text(in: dir)
        let eval = dir.appendingPathComponent("eval.txt").path
        try String(repeating: "the model reads text and predicts the next byte. ", count: 4).write(toFile: eval, atomically: true, encoding: .utf8)
        let r = try TFC.run(["train", tiny, "--data", data, "--eval-data", eval, "--steps", "2", "--batch", "1", "--seq", "16",
                             "--out", dir.appendingPathComponent("run").path])
        XCTAssertSucceeded(r, "tfc train --eval-data")
        XCTAssertTrue(r.stdout.contains(", 20000 training tokens, 196 held out;"), r.stdout)
        let short = dir.appendingPathComponent("short.txt").path
        try "abc".write(toFile: short, atomically: true, encoding: .utf8)
        let bad = try TFC.run(["train", tiny, "--data", data, "--eval-data", short, "--steps", "2", "--seq", "16",
                               "--out", dir.appendingPathComponent("run2").path])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "\(short): error: 3 tokens are fewer than one window of 16\n")
    }

    func testRefusals() throws {
        let dir = try TFC.temporaryDirectory(self)
        let data = try text(in: dir)
        let file = dir.appendingPathComponent("plain.txt").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let short = dir.appendingPathComponent("short.txt").path
        try "hello".write(toFile: short, atomically: true, encoding: .utf8)
        let missing = dir.appendingPathComponent("none").path
        let done = dir.appendingPathComponent("done").path
        XCTAssertSucceeded(try TFC.run(["train", tiny, "--data", data, "--steps", "1", "--batch", "1", "--seq", "8", "--out", done]), "one step")
        let badIDs = dir.appendingPathComponent("ids.txt").path
        try "1, 2, 300".write(toFile: badIDs, atomically: true, encoding: .utf8)
        let loose = dir.appendingPathComponent("loose").path
        try FileManager.default.createDirectory(atPath: loose, withIntermediateDirectories: true)
        XCTAssertSucceeded(try TFC.run(["init", tiny, "-o", loose + "/weights.safetensors"]), "tfc init")
        // tfc's output policy on the files training writes, checked before the first step.
        let readOnly = dir.appendingPathComponent("readonly").path
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: readOnly + "/weights.safetensors", contents: Data()))
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: readOnly + "/weights.safetensors")
        let clash = dir.appendingPathComponent("clash").path
        try FileManager.default.createDirectory(atPath: clash + "/loss.svg", withIntermediateDirectories: true)
        let cases: [([String], String)] = [
            (["--data", data, "--steps", "2", "--out", readOnly],
             "\(readOnly)/weights.safetensors: error: --out is read-only; not overwritten (write to another file, or make it writable)"),
            (["--data", data, "--steps", "2", "--out", clash], "\(clash)/loss.svg: error: --out names a directory; give a file name"),
            (["--data", data, "--weights", loose + "/weights.safetensors", "--steps", "2", "--out", loose],
             "error: --weights \(loose)/weights.safetensors is \(loose)/weights.safetensors, which training writes; move it or choose another --out"),
            (["--data", data, "--steps", "2", "--out", file], "error: --out \(file) is a file; give a directory for the checkpoints"),
            (["--data", data, "--steps", "2", "--out", done], "error: --out \(done) already holds a checkpoint; pass --resume to continue it or choose another directory"),
            (["--data", data, "--steps", "2", "--out", missing, "--resume"], "error: --out \(missing) does not exist; there is no checkpoint to resume"),
            (["--data", data, "--steps", "1", "--out", done, "--resume"], "error: \(done): the checkpoint is at step 1, nothing to do up to step 1"),
            (["--data", short, "--steps", "2", "--seq", "8", "--out", missing], "\(short): error: 5 tokens are too few for windows of 8 (need at least 17)"),
            (["--data", badIDs, "--format", "ids", "--steps", "2", "--out", missing], "\(badIDs): error: item 3 '300' is not a token id in 0..<256"),
            (["--data", data, "--steps", "2", "--seq", "500", "--out", missing], "error: --seq 500 exceeds the model's context of 128"),
        ]
        for (arguments, message) in cases {
            let r = try TFC.run(["train", tiny] + arguments)
            XCTAssertEqual(r.status, 1, arguments.joined(separator: " "))
            XCTAssertEqual(r.stderr, message + "\n", arguments.joined(separator: " "))
        }
        let usage = try TFC.run(["train", tiny, "--data", data, "--steps", "4", "--out", missing, "--seq", "1"])
        XCTAssertEqual(usage.status, 1, "usage errors exit 1 like every error")
        XCTAssertTrue(usage.stderr.contains("--seq must be at least 2"), usage.stderr)
    }
}
