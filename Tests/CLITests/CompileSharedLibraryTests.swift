import Foundation
import XCTest
import TFWeights

/// `tfc compile SPEC --weights W --emit shared -o libNAME.so`: the library and NAME.h, used from
/// a C program and from Python (ctypes), give `tfc run`'s logits, and decoding against the KV
/// cache gives the logits of recomputing the prefix.
final class CompileSharedLibraryTests: XCTestCase {
    static let cProgram = """
    #include <math.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include "tiny.h"

    // usage: client OUT.bin ID...   writes eval logits [n, vocab] to OUT.bin and checks the API
    int main(int argc, char **argv) {
        const tfc_model_info *info = tfc_model_describe();
        printf("model %s vocab %lld context %lld api %d\\n", info->name, (long long)info->vocab, (long long)info->context, info->api_version);
        if (info->vocab != TINY_VOCAB || info->context != TINY_CONTEXT || strcmp(info->spec_hash, TINY_SPEC_HASH) != 0) return 3;
        int n = argc - 2;
        int32_t *ids = malloc(sizeof(int32_t) * n);
        for (int i = 0; i < n; i++) ids[i] = atoi(argv[i + 2]);

        tfc_model *m = tfc_model_create(NULL);
        if (!m) { fprintf(stderr, "create: %s\\n", tfc_model_error(NULL)); return 1; }
        float *all = malloc(sizeof(float) * n * TINY_VOCAB), *row = malloc(sizeof(float) * TINY_VOCAB);
        if (tfc_model_eval(m, ids, n, all) != 0) { fprintf(stderr, "eval: %s\\n", tfc_model_error(m)); return 1; }
        FILE *f = fopen(argv[1], "wb");
        fwrite(all, sizeof(float), (size_t)n * TINY_VOCAB, f);
        fclose(f);
        printf("position after eval %lld\\n", (long long)tfc_model_position(m));

        // Prefill the first 4 tokens (last row only), then decode the rest one at a time.
        tfc_model_reset(m);
        double worst = 0;
        if (tfc_model_eval_last(m, ids, 4, row) != 0) return 1;
        for (int j = 0; j < TINY_VOCAB; j++) worst = fmax(worst, fabs(row[j] - all[3 * TINY_VOCAB + j]));
        for (int i = 4; i < n; i++) {
            if (tfc_model_decode(m, ids[i], row) != 0) { fprintf(stderr, "decode: %s\\n", tfc_model_error(m)); return 1; }
            for (int j = 0; j < TINY_VOCAB; j++) worst = fmax(worst, fabs(row[j] - all[i * TINY_VOCAB + j]));
        }
        printf("decode max diff %.9g position %lld\\n", worst, (long long)tfc_model_position(m));

        // Errors leave the instance usable.
        if (tfc_model_decode(m, TINY_VOCAB, row) == 0) return 4;
        printf("bad token: %s\\n", tfc_model_error(m));
        int32_t *many = calloc(TINY_CONTEXT, sizeof(int32_t));
        float *big = malloc(sizeof(float) * TINY_CONTEXT * TINY_VOCAB);
        if (tfc_model_eval(m, many, TINY_CONTEXT, big) == 0) return 5;
        printf("full: %s\\n", tfc_model_error(m));
        tfc_model_reset(m);
        if (tfc_model_eval(m, many, TINY_CONTEXT, big) != 0) return 6;
        tfc_model_destroy(m);

        // A second instance from an explicit path; a missing file.
        m = tfc_model_create("/nonexistent/tiny.weights");
        if (m) return 7;
        printf("missing: %s\\n", tfc_model_error(NULL));
        return 0;
    }
    """

    func testCProgramAgainstTheHeaderAndLibrary() throws {
        let tiny = try CompiledTiny.get()
        let lib = tiny.library.deletingLastPathComponent().path
        let source = tiny.dir.appendingPathComponent("client.c")
        try Self.cProgram.write(to: source, atomically: true, encoding: .utf8)
        let client = tiny.dir.appendingPathComponent("client").path
        guard let cc = try runTool("/usr/bin/cc", ["-O2", "-I", lib, source.path, "-L", lib, "-ltiny", "-Wl,-rpath,\(lib)", "-lm", "-o", client]) else {
            throw XCTSkip("no /usr/bin/cc")
        }
        XCTAssertEqual(cc.status, 0, cc.stderr)
        let ids = CompiledTiny.prompt.split(separator: ",").map(String.init)
        let out = tiny.dir.appendingPathComponent("client-logits.bin").path
        let r = try TFC.runProcess(URL(fileURLWithPath: client), [out] + ids)
        XCTAssertSucceeded(r, "C client")
        XCTAssertTrue(r.stdout.contains("model tiny vocab 256 context 128 api 1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("position after eval 12"), r.stdout)
        XCTAssertTrue(r.stdout.contains("bad token: token id 256 (item 1) is outside the vocabulary 0..<256"), r.stdout)
        XCTAssertTrue(r.stdout.contains("full: 128 tokens do not fit the context of 128 (12 already cached): reset the model"), r.stdout)
        XCTAssertTrue(r.stdout.contains("missing: /nonexistent/tiny.weights: no such weights file"), r.stdout)

        let decode = r.stdout.split(separator: "\n").first { $0.hasPrefix("decode max diff ") }
        let diff = decode.flatMap { Double($0.split(separator: " ")[3]) }
        XCTAssertNotNil(diff, r.stdout)
        XCTAssertLessThanOrEqual(diff ?? 1, 1e-4, "KV-cache decoding vs recomputing the prefix")
        XCTAssertTrue(r.stdout.contains("position 12"), r.stdout)

        let data = try Data(contentsOf: URL(fileURLWithPath: out))
        let logits = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let run = try tiny.runLogits(CompiledTiny.prompt)
        XCTAssertLessThanOrEqual(maxAbsDifference(logits, run.data), 1e-5)
    }

    func testPythonCtypes() throws {
        let tiny = try CompiledTiny.get()
        let run = try tiny.runLogits(CompiledTiny.prompt)
        let expected = tiny.dir.appendingPathComponent("run-for-python.npy").path
        try Npy.write(path: expected, shape: run.shape, data: run.data)
        let script = """
        import ctypes, sys
        import numpy as np

        class Info(ctypes.Structure):
            _fields_ = [("api_version", ctypes.c_int32), ("name", ctypes.c_char_p), ("vocab", ctypes.c_int64),
                        ("hidden", ctypes.c_int64), ("context", ctypes.c_int64), ("end_token", ctypes.c_int64),
                        ("spec_hash", ctypes.c_char_p), ("target_cpu", ctypes.c_char_p), ("cpu_features", ctypes.c_char_p),
                        ("weights_file", ctypes.c_char_p), ("tfc_version", ctypes.c_char_p)]

        lib = ctypes.CDLL(sys.argv[1])
        lib.tfc_model_describe.restype = ctypes.POINTER(Info)
        lib.tfc_model_create.restype = ctypes.c_void_p
        lib.tfc_model_create.argtypes = [ctypes.c_char_p]
        lib.tfc_model_error.restype = ctypes.c_char_p
        lib.tfc_model_error.argtypes = [ctypes.c_void_p]
        f32p = ctypes.POINTER(ctypes.c_float)
        i32p = ctypes.POINTER(ctypes.c_int32)
        lib.tfc_model_eval.argtypes = [ctypes.c_void_p, i32p, ctypes.c_int64, f32p]
        lib.tfc_model_eval_last.argtypes = [ctypes.c_void_p, i32p, ctypes.c_int64, f32p]
        lib.tfc_model_decode.argtypes = [ctypes.c_void_p, ctypes.c_int32, f32p]
        lib.tfc_model_reset.argtypes = [ctypes.c_void_p]
        lib.tfc_model_destroy.argtypes = [ctypes.c_void_p]

        info = lib.tfc_model_describe().contents
        print("info", info.name.decode(), info.vocab, info.context, info.weights_file.decode())
        model = lib.tfc_model_create(None)
        if not model:
            sys.exit("create: " + lib.tfc_model_error(None).decode())
        ids = np.array([\(CompiledTiny.prompt)], dtype=np.int32)
        logits = np.zeros((len(ids), info.vocab), dtype=np.float32)
        assert lib.tfc_model_eval(model, ids.ctypes.data_as(i32p), len(ids), logits.ctypes.data_as(f32p)) == 0
        expected = np.load(sys.argv[2])
        print("eval max diff %.9g" % np.abs(logits - expected).max())
        lib.tfc_model_reset(model)
        row = np.zeros(info.vocab, dtype=np.float32)
        assert lib.tfc_model_eval_last(model, ids.ctypes.data_as(i32p), 6, row.ctypes.data_as(f32p)) == 0
        worst = np.abs(row - expected[5]).max()
        for i in range(6, len(ids)):
            assert lib.tfc_model_decode(model, int(ids[i]), row.ctypes.data_as(f32p)) == 0
            worst = max(worst, np.abs(row - expected[i]).max())
        print("decode max diff %.9g" % worst)
        assert lib.tfc_model_decode(model, -1, row.ctypes.data_as(f32p)) == -1
        print("error", lib.tfc_model_error(model).decode())
        lib.tfc_model_destroy(model)
        """
        let path = tiny.dir.appendingPathComponent("client.py").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try TFC.python([path, tiny.library.path, expected])
        XCTAssertSucceeded(r, "python ctypes client")
        XCTAssertTrue(r.stdout.contains("info tiny 256 128 tiny.weights"), r.stdout)
        XCTAssertTrue(r.stdout.contains("error token id -1 (item 1) is outside the vocabulary 0..<256"), r.stdout)
        func value(_ prefix: String) -> Double? {
            r.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
        }
        XCTAssertLessThanOrEqual(value("eval max diff ") ?? 1, 1e-5, r.stdout)
        XCTAssertLessThanOrEqual(value("decode max diff ") ?? 1, 1e-4, r.stdout)
    }

    func testExportsOnlyTheAPIAndNeedsOnlyTheCLibrary() throws {
        let tiny = try CompiledTiny.get()
        if let nm = try runTool("/usr/bin/nm", ["-D", "--defined-only", tiny.library.path]) {
            let symbols = nm.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
            XCTAssertEqual(Set(symbols), ["tfc_model_create", "tfc_model_destroy", "tfc_model_describe", "tfc_model_eval", "tfc_model_eval_last",
                                          "tfc_model_decode", "tfc_model_position", "tfc_model_reset", "tfc_model_error", "tfc_model_set_threads",
                                          "tfc_model_tokenizer_open", "tfc_tokenizer_open", "tfc_tokenizer_close", "tfc_tokenizer_encode",
                                          "tfc_tokenizer_decode", "tfc_tokenizer_token_bytes", "tfc_tokenizer_vocab", "tfc_tokenizer_end_of_text",
                                          "tfc_tokenizer_error"])
        }
        if let ldd = try runTool("/usr/bin/ldd", [tiny.library.path]) {
            for library in ["swift", "llvm", "openblas"] { XCTAssertFalse(ldd.stdout.lowercased().contains(library), ldd.stdout) }
        }
        let header = try String(contentsOf: tiny.header, encoding: .utf8)
        XCTAssertTrue(header.contains("#define TINY_VOCAB 256"), header)
        XCTAssertTrue(header.contains("tfc_model *tfc_model_create(const char *weights_path);"), header)
    }
}
