import Foundation
import XCTest

/// `tfc grow` end to end: grown specs and weights that compute what the originals did, dry runs,
/// drift reports, and bad input that leaves every file as it was.
final class GrowCommandTests: XCTestCase {
    struct Model {
        var dir: URL
        var spec: String
        var weights: String
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    }

    /// A copy of a repository spec and `tfc init` weights for it in a fresh directory.
    func model(_ relativeSpec: String = "specs/tiny.tfs", seed: Int = 1) throws -> Model {
        let dir = try TFC.temporaryDirectory(self)
        let spec = dir.appendingPathComponent("model.tfs").path
        try FileManager.default.copyItem(atPath: TFC.root.appendingPathComponent(relativeSpec).path, toPath: spec)
        let weights = dir.appendingPathComponent("model.safetensors").path
        XCTAssertSucceeded(try TFC.run(["init", spec, "-o", weights, "--seed", String(seed)]), "init")
        return Model(dir: dir, spec: spec, weights: weights)
    }

    /// The `max |Δlogit| = X` figure of a grow report.
    func maxDifference(_ stdout: String) -> Double? {
        guard let range = stdout.range(of: "max |Δlogit| = ") else { return nil }
        let rest = stdout[range.upperBound...]
        return Double(rest.prefix { !$0.isWhitespace })
    }

    func grow(_ m: Model, _ arguments: [String], spec: String? = nil, weights: String? = nil, out: String = "grown") throws -> TFCResult {
        try TFC.run(["grow", spec ?? m.spec, "--weights", weights ?? m.weights, "-o", m.path("\(out).tfs"),
                     "--out-weights", m.path("\(out).safetensors")] + arguments)
    }

    func testGrowTinyExactlyThenGrowAgain() throws {
        let m = try model()
        var r = try grow(m, ["--tokens", "all=x2", "--layers", "+1", "--at", "1"])
        XCTAssertSucceeded(r, "grow")
        XCTAssertTrue(r.stdout.contains(": exact"), r.stdout)
        let first = try XCTUnwrap(maxDifference(r.stdout), r.stdout)
        print("tfc grow tiny all=x2 +1 layer at 1: max |Δlogit| = \(first)")
        XCTAssertLessThanOrEqual(first, 1e-5)
        XCTAssertTrue(r.stdout.contains("256 → 512"), r.stdout)

        // The new spec checks, shows the pinned scales, and is the printer's output under a comment.
        let text = try String(contentsOfFile: m.path("grown.tfs"), encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("# Grown by `tfc grow` from \(m.spec)"), text)
        XCTAssertTrue(text.contains("let qkv = 128\n"), text)
        XCTAssertTrue(text.contains("    layers = 3\n"), text)
        XCTAssertTrue(text.contains("site: mlp, tokens: ffn, scale: 16.0)"), text)
        let ast = try TFC.run(["compile", m.path("grown.tfs"), "--emit", "ast"])
        XCTAssertSucceeded(ast, "compile")
        XCTAssertEqual(ast.stdout, text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("#") }.joined(separator: "\n"))
        let check = try TFC.run(["check", m.path("grown.tfs"), "--json"])
        XCTAssertSucceeded(check, "check")
        let object = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as! [String: Any]
        let sites = object["sites"] as! [String: [String: Any]]
        XCTAssertEqual(sites["attention.key"]?["tokens"] as? Int, 128)
        XCTAssertEqual(sites["attention.key"]?["scale"] as? Double, 8)
        XCTAssertEqual(object["layers"] as? Int, 3)

        // tfc run agrees on the next token.
        let before = try TFC.run(["run", m.spec, "--weights", m.weights, "--tokens", "5,6,7,8"])
        let after = try TFC.run(["run", m.path("grown.tfs"), "--weights", m.path("grown.safetensors"), "--tokens", "5,6,7,8"])
        func top1(_ r: TFCResult) -> String { String(r.stdout.split(separator: "\n")[1].split(separator: "logit")[0]) }
        XCTAssertSucceeded(after, "run grown")
        XCTAssertEqual(top1(before), top1(after))

        // Growing the grown model again.
        r = try grow(m, ["--tokens", "mlp=+100", "--tokens", "attention.query=200", "--layers", "+2", "--at", "0"],
                     spec: m.path("grown.tfs"), weights: m.path("grown.safetensors"), out: "again")
        XCTAssertSucceeded(r, "grow again")
        let second = try XCTUnwrap(maxDifference(r.stdout), r.stdout)
        print("tfc grow tiny, grown again: max |Δlogit| = \(second)")
        XCTAssertLessThanOrEqual(second, 1e-5)
        let again = try String(contentsOfFile: m.path("again.tfs"), encoding: .utf8)
        XCTAssertTrue(again.contains("let ffn = 612\n"), again)
        XCTAssertTrue(again.contains("site: mlp, tokens: ffn, scale: 16.0)"), again)
        XCTAssertTrue(again.contains("site: attention.query, tokens: 200, scale: 8.0)"), again)
        XCTAssertTrue(again.contains("site: attention.key, tokens: qkv, scale: 8.0)"), again)
        XCTAssertTrue(again.contains("    layers = 5\n"), again)
    }

    func testGrowMidEachWay() throws {
        let m = try model("specs/examples/mid.tfs")
        for (i, arguments) in [["--tokens", "attention.proj=+30"], ["--tokens", "attention=x1.5", "--tokens", "mlp=x2"],
                               ["--layers", "+1", "--at", "0"], ["--layers", "5"]].enumerated() {
            let r = try grow(m, arguments, out: "g\(i)")
            XCTAssertSucceeded(r, "grow \(arguments)")
            let d = try XCTUnwrap(maxDifference(r.stdout), r.stdout)
            print("tfc grow mid \(arguments.joined(separator: " ")): max |Δlogit| = \(d)")
            XCTAssertLessThanOrEqual(d, 1e-5)
        }
    }

    /// The same exactness, verified on each backend: every site alone, all sites, and layers
    /// inserted at the start, the middle and the end.
    func testGrowthIsExactOnBothBackends() throws {
        let m = try model()
        let cases: [[String]] = [["--tokens", "attention.query=+37"], ["--tokens", "attention.key=+37"], ["--tokens", "attention.value=+37"],
                                 ["--tokens", "attention.proj=+37"], ["--tokens", "mlp=+37"], ["--tokens", "all=x2"],
                                 ["--layers", "+1", "--at", "0"], ["--layers", "+2", "--at", "1"], ["--layers", "+1"]]
        for backend in ["naive", "fused"] {
            for (i, arguments) in cases.enumerated() {
                let r = try TFC.run(["grow", m.spec, "--weights", m.weights, "-o", m.path("b\(i).tfs"), "--out-weights", m.path("b\(i).safetensors"),
                                     "--backend", backend] + arguments, environment: ["TFC_CACHE_DIR": m.path("cache")])
                XCTAssertSucceeded(r, "grow \(arguments) on \(backend)")
                XCTAssertTrue(r.stdout.contains("verify (\(backend) backend"), r.stdout)
                let d = try XCTUnwrap(maxDifference(r.stdout), r.stdout)
                XCTAssertLessThanOrEqual(d, 1e-5, "\(arguments) on \(backend)")
            }
        }
    }

    func testReferenceScalingAndSmallInitReportDrift() throws {
        let m = try model()
        var r = try grow(m, ["--tokens", "all=x2", "--scale", "reference"])
        XCTAssertSucceeded(r, "grow reference")
        XCTAssertTrue(r.stdout.contains(": drift expected"), r.stdout)
        XCTAssertTrue(r.stdout.contains("drift: mlp: τ follows n, 16 → sqrt(512) = 22.63"), r.stdout)
        let drift = try XCTUnwrap(maxDifference(r.stdout))
        print("tfc grow tiny all=x2 --scale reference: max |Δlogit| = \(drift)")
        XCTAssertGreaterThan(drift, 1e-4)
        XCTAssertFalse(try String(contentsOfFile: m.path("grown.tfs"), encoding: .utf8).contains("scale:"))

        r = try grow(m, ["--tokens", "mlp=x2", "--init", "small", "--seed", "3"], out: "small")
        XCTAssertSucceeded(r, "grow small")
        XCTAssertTrue(r.stdout.contains(": drift expected"), r.stdout)
        XCTAssertTrue(r.stdout.contains("the new key tokens are random"), r.stdout)
        let small = try XCTUnwrap(maxDifference(r.stdout))
        print("tfc grow tiny mlp=x2 --init small: max |Δlogit| = \(small)")
        XCTAssertGreaterThan(small, 0)

        r = try grow(m, ["--tokens", "mlp=x2", "--no-verify"], out: "noverify")
        XCTAssertSucceeded(r, "grow --no-verify")
        XCTAssertTrue(r.stdout.contains("verify: skipped"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: m.path("noverify.safetensors")))
    }

    func testVariants() throws {
        let m = try model("specs/examples/two-mlp.tfs")
        var r = try grow(m, ["--tokens", "attention.query=+8"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: site 'attention.query' uses softmax, which zero-initialised tokens do not preserve (each new token gets weight exp(0) = 1"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: m.path("grown.tfs")))
        r = try grow(m, ["--tokens", "attention.query=+8", "--scale", "reference"])
        XCTAssertSucceeded(r, "softmax reference")
        XCTAssertTrue(r.stdout.contains("drift: attention.query (softmax)"), r.stdout)
        print("tfc grow two-mlp softmax query --scale reference: max |Δlogit| = \(maxDifference(r.stdout) ?? -1)")
        // gelu_l2_norm sites (and an explicitly scaled l2_norm_gelu one) grow exactly with τ pinned.
        r = try grow(m, ["--tokens", "attention.key=+8", "--tokens", "attention.value=+8", "--tokens", "mlp=x2", "--layers", "+1"], out: "gelu")
        XCTAssertSucceeded(r, "gelu_l2_norm pinned")
        XCTAssertTrue(r.stdout.contains(": exact"), r.stdout)
        print("tfc grow two-mlp gelu_l2_norm sites + 1 layer: max |Δlogit| = \(maxDifference(r.stdout) ?? -1)")
    }

    func testDryRunTouchesNoWeights() throws {
        let dir = try TFC.temporaryDirectory(self)
        let spec = TFC.root.appendingPathComponent("specs/tokenformer-354m-base.tfs").path
        let r = try TFC.run(["grow", spec, "--dry-run", "--tokens", "attention=1792", "--tokens", "mlp=7168"], cwd: dir)
        XCTAssertSucceeded(r, "dry run")
        XCTAssertTrue(r.stdout.contains("768 → 1792"), r.stdout)
        XCTAssertTrue(r.stdout.contains("3072 → 7168"), r.stdout)
        XCTAssertTrue(r.stdout.contains("353,503,232 → 756,156,416 (+113.9%)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("27.71 (pinned)"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    // MARK: bad input

    /// Runs a bad `tfc grow`, expects exit 1 and a one-line message starting with `message`, and
    /// checks every input is byte-identical and nothing new was written.
    func assertRefused(_ m: Model, _ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: m.dir.path).sorted()
        let contents = try before.map { try Data(contentsOf: m.dir.appendingPathComponent($0)) }
        let r = try TFC.run(["grow"] + arguments)
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix(message), "expected '\(message)', got: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: m.dir.path).sorted(), before, "no file added or removed", file: file, line: line)
        for (name, data) in zip(before, contents) {
            XCTAssertEqual(try Data(contentsOf: m.dir.appendingPathComponent(name)), data, "\(name) changed", file: file, line: line)
        }
    }

    func testBadInputIsRefusedAndLeavesFilesAlone() throws {
        let m = try model()
        let out = ["-o", m.path("new.tfs"), "--out-weights", m.path("new.safetensors")]
        let base = [m.spec, "--weights", m.weights]
        try assertRefused(m, base + out + ["--tokens", "mpl=+10"],
                          "error: --tokens 'mpl=+10': unknown site 'mpl'; did you mean 'mlp'? (the sites are attention.query, attention.key, attention.value, attention.proj, mlp; or all)")
        try assertRefused(m, base + out + ["--tokens", "attention.qury=+10"], "error: --tokens 'attention.qury=+10': unknown site 'attention.qury'; did you mean 'attention.query'?")
        try assertRefused(m, base + out + ["--tokens", "atention=+10"], "error: --tokens 'atention=+10': unknown site 'atention'; did you mean 'attention'?")
        try assertRefused(m, base + out + ["--tokens", "mlp=10"], "error: --tokens 'mlp=10': site 'mlp' has 256 tokens; growth cannot shrink it to 10")
        try assertRefused(m, base + out + ["--tokens", "mlp=256"], "error: --tokens 'mlp=256': site 'mlp' already has 256 tokens; give a larger count")
        try assertRefused(m, base + out + ["--tokens", "mlp=0"], "error: --tokens 'mlp=0': a token count must be positive, got 0")
        try assertRefused(m, base + out + ["--tokens", "mlp=+0"], "error: --tokens 'mlp=+0': the number of tokens to add must be positive, got 0")
        try assertRefused(m, base + out + ["--tokens=mlp=-5"], "error: --tokens 'mlp=-5': a token count must be positive, got -5")
        try assertRefused(m, base + out + ["--tokens", "all=x0.5"], "error: --tokens 'all=x0.5': the factor must be greater than 1")
        try assertRefused(m, base + out + ["--tokens", "mlp1024"], "error: --tokens 'mlp1024': expected SITE=+N (add N tokens), SITE=N (grow to N) or SITE=xF (scale by F)")
        try assertRefused(m, base + out + ["--tokens", "mlp=lots"], "error: --tokens 'mlp=lots': 'lots' is not a token count")
        try assertRefused(m, base + out + ["--tokens", "mlp=+1", "--tokens", "mlp=300"], "error: --tokens: site 'mlp' is given twice ('mlp=+1' and 'mlp=300')")
        try assertRefused(m, base + out + ["--layers", "2"], "error: --layers 2: the model already has 2 layers; give a larger total, or +N to insert N")
        try assertRefused(m, base + out + ["--layers", "+1", "--at", "3"], "error: --at 3: layers can be inserted at 0...2")
        try assertRefused(m, base + out + ["--layers", "many"], "error: --layers 'many': expected +N (insert N layers) or N (grow to N layers in total)")
        try assertRefused(m, base + out + ["--at", "1", "--tokens", "mlp=+1"], "error: --at 1 needs --layers +N")
        try assertRefused(m, base + out, "error: nothing to grow")
        try assertRefused(m, [m.spec, "--tokens", "mlp=+1"], "error: tfc grow needs --weights W.safetensors, -o NEW.tfs, --out-weights NEW.safetensors (or --dry-run")

        // Outputs that are inputs.
        try assertRefused(m, base + ["-o", m.spec, "--out-weights", m.path("new.safetensors"), "--tokens", "mlp=+1"],
                          "\(m.spec): error: -o is the input spec; write to another file")
        try assertRefused(m, base + ["-o", m.path("new.tfs"), "--out-weights", m.weights, "--tokens", "mlp=+1"],
                          "\(m.weights): error: --out-weights is the input weights file; write to another file")
        let dotted = m.dir.path + "/./../" + m.dir.lastPathComponent + "/model.safetensors"
        try assertRefused(m, base + ["-o", dotted, "--out-weights", m.path("new.safetensors"), "--tokens", "mlp=+1"],
                          "\(dotted): error: -o is the input weights file \(m.weights) (the same file)")
        try assertRefused(m, base + ["-o", m.path("new.tfs"), "--out-weights", m.path("new.tfs"), "--tokens", "mlp=+1"],
                          "\(m.path("new.tfs")): error: -o and --out-weights name the same file")
        let link = m.path("link.safetensors")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: m.weights)
        try assertRefused(m, base + ["-o", m.path("new.tfs"), "--out-weights", link, "--tokens", "mlp=+1"],
                          "\(link): error: --out-weights is the input weights file \(m.weights) (the same file)")

        try assertRefused(m, base + ["-o", m.path("new.tfs"), "--out-weights", m.path("nodir/new.safetensors"), "--tokens", "mlp=+1"],
                          "\(m.path("nodir/new.safetensors")): error: --out-weights: the directory ")

        // Weights of another model.
        let other = try model("specs/examples/mid.tfs")
        try assertRefused(m, [m.spec, "--weights", other.weights] + out + ["--tokens", "mlp=+1"],
                          "\(other.weights): error: weights do not match the spec: ")

        // A growth that should be exact but is not within the tolerance: nothing is written. (On the
        // naive backend the longer sums round differently; the fused kernels give identical logits.)
        try assertRefused(m, base + out + ["--tokens", "all=x2", "--tolerance", "0", "--backend", "naive"],
                          "error: verify: the grown model should compute what the original does, but its logits differ by up to ")
    }
}
