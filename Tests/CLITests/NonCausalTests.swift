import Foundation
import XCTest
import TFWeights

/// A spec with `causal: false`: a whole-sequence forward pass runs on both backends and in a
/// compiled program and agrees; generation (decoding against a KV cache) is refused everywhere
/// with the attention's location, since the cache would be stale.
final class NonCausalTests: XCTestCase {
    static let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-noncausal-test-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()
    static var environment: [String: String] { ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path] }
    /// specs/tiny.tfs with `causal: false`, and its weights.
    static let model: (spec: String, weights: String) = {
        let spec = dir.appendingPathComponent("bidirectional.tfs").path
        let text = (try? String(contentsOf: TFC.root.appendingPathComponent("specs/tiny.tfs"), encoding: .utf8)) ?? ""
        try? text.replacingOccurrences(of: "causal: true", with: "causal: false").write(toFile: spec, atomically: true, encoding: .utf8)
        let weights = dir.appendingPathComponent("bidirectional.safetensors").path
        _ = try? TFC.run(["init", spec, "-o", weights, "--seed", "2"])
        return (spec, weights)
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(at: dir)
        super.tearDown()
    }

    func tfc(_ arguments: [String]) throws -> TFCResult { try TFC.run(arguments, environment: Self.environment) }

    func logits(_ backend: String) throws -> Npy.Array {
        let path = Self.dir.appendingPathComponent("\(backend).npy").path
        XCTAssertSucceeded(try tfc(["run", Self.model.spec, "--weights", Self.model.weights, "--tokens", "5,17,3,99,200,1,42",
                                    "--backend", backend, "--logits", path]), "run \(backend)")
        return try Npy.read(path: path)
    }

    func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(b.map(abs).max() ?? 1, 1e-3)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    func testGenerateIsRefusedWithTheAttentionsLocation() throws {
        for backend in ["fused", "naive"] {
            let r = try tfc(["generate", Self.model.spec, "--weights", Self.model.weights, "--tokens", "1,2,3", "--backend", backend])
            XCTAssertEqual(r.status, 1, backend)
            XCTAssertEqual(r.stdout, "")
            XCTAssertTrue(r.stderr.hasPrefix("\(Self.model.spec):26:9: error: generate: attention %"), r.stderr)
            XCTAssertTrue(r.stderr.hasSuffix(" is non-causal (causal: false): decoding with a KV cache would not compute this model, "
                                             + "whose earlier tokens see the later ones; evaluate whole sequences instead (tfc run)\n"), r.stderr)
        }
    }

    func testRunAgreesAcrossBackendsAndTheCompiledProgram() throws {
        let naive = try logits("naive"), fused = try logits("fused")
        XCTAssertEqual(fused.shape, [7, 256])
        XCTAssertLessThanOrEqual(maxRelativeDifference(fused.data, naive.data), 1e-4, "fused vs naive")

        let exe = Self.dir.appendingPathComponent("bidirectional").path
        XCTAssertSucceeded(try tfc(["compile", Self.model.spec, "--weights", Self.model.weights, "-o", exe]), "compile")
        let npy = Self.dir.appendingPathComponent("compiled.npy").path
        let r = try TFC.runProcess(URL(fileURLWithPath: exe), ["--tokens", "5,17,3,99,200,1,42", "--logits", npy])
        XCTAssertSucceeded(r, "compiled --logits")
        XCTAssertLessThanOrEqual(maxRelativeDifference(try Npy.read(path: npy).data, naive.data), 1e-4, "compiled vs naive")

        let g = try TFC.runProcess(URL(fileURLWithPath: exe), ["--tokens", "1,2,3"])
        XCTAssertEqual(g.status, 1)
        XCTAssertEqual(g.stdout, "")
        XCTAssertEqual(g.stderr, "bidirectional: error: this model has non-causal attention (causal: false): it cannot continue from cached tokens "
                       + "(decoding), whose earlier rows would see the new ones; reset it and evaluate whole sequences (--logits)\n")
    }

    /// The C API: a whole sequence evaluates; continuing (decode, or eval at a position > 0) fails
    /// with the reason and leaves the instance usable after a reset.
    func testSharedLibraryRefusesContinuation() throws {
        let lib = Self.dir.appendingPathComponent("lib")
        try FileManager.default.createDirectory(at: lib, withIntermediateDirectories: true)
        XCTAssertSucceeded(try tfc(["compile", Self.model.spec, "--weights", Self.model.weights, "--emit", "shared",
                                    "-o", lib.appendingPathComponent("libbidirectional.so").path]), "compile --emit shared")
        let source = Self.dir.appendingPathComponent("client.c")
        try """
        #include <stdio.h>
        #include "bidirectional.h"
        int main(void) {
            int32_t ids[3] = {1, 2, 3};
            float logits[3 * 256];
            tfc_model *m = tfc_model_create(NULL);
            if (!m) { fprintf(stderr, "%s\\n", tfc_model_error(NULL)); return 1; }
            if (tfc_model_eval(m, ids, 3, logits) != 0) return 2;
            if (tfc_model_decode(m, 4, logits) == 0) return 3;
            printf("decode: %s\\n", tfc_model_error(m));
            if (tfc_model_eval_last(m, ids, 2, logits) == 0) return 4;
            tfc_model_reset(m);
            if (tfc_model_eval_last(m, ids, 3, logits) != 0) return 5;
            printf("after reset: ok\\n");
            tfc_model_destroy(m);
            return 0;
        }
        """.write(to: source, atomically: true, encoding: .utf8)
        let client = Self.dir.appendingPathComponent("client").path
        guard let cc = try runTool("/usr/bin/cc", ["-O2", "-I", lib.path, source.path, "-L", lib.path, "-lbidirectional",
                                                   "-Wl,-rpath,\(lib.path)", "-lm", "-o", client]) else { throw XCTSkip("no /usr/bin/cc") }
        XCTAssertEqual(cc.status, 0, cc.stderr)
        let r = try TFC.runProcess(URL(fileURLWithPath: client), [])
        XCTAssertSucceeded(r, "C client")
        XCTAssertEqual(r.stdout, "decode: this model has non-causal attention (causal: false): it cannot continue from cached tokens (decoding), "
                       + "whose earlier rows would see the new ones; reset it and evaluate whole sequences (--logits)\nafter reset: ok\n")
    }
}
