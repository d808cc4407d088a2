import XCTest
import Foundation
@testable import TFCodegen

/// Ahead-of-time path: the object file links with the C runtime into a working executable
/// that computes what the JIT computes.
final class ObjectFileTests: XCTestCase {
    func testObjectLinksWithRuntimeAndRuns() throws {
        let runtime = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Runtime")
        let cc = "/usr/bin/cc"
        guard FileManager.default.isExecutableFile(atPath: cc),
              FileManager.default.fileExists(atPath: runtime.appendingPathComponent("threadpool.c").path) else {
            throw XCTSkip("no C compiler or runtime sources")
        }
        let rot = RotaryEmbedding(heads: 2, headDim: 16, fraction: 0.5)
        let spec = PattentionKernelSpec(dIn: 24, layerNormEps: 1e-5, sites: [PattentionSite(tokens: 21, dOut: 32, rotary: rot)])
        let m = try KernelModule(name: "aot")
        let sym = m.addPattention(spec)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-aot-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try m.writeObject(to: dir.appendingPathComponent("kernels.o").path)

        let T = 5
        var rng = TestRandom(seed: 11)
        let x = rng.array(T * 24), k = rng.array(21 * 24), v = rng.array(21 * 32)
        let kp = spec.keyLayout(0).packedTransposed(k), vp = spec.valueLayout(0).packed(v)
        var input = Data()
        for a in [x, kp.array, vp.array] { a.withUnsafeBytes { input.append(contentsOf: $0) } }
        try input.write(to: dir.appendingPathComponent("in.bin"))
        let main = """
        #include <stdio.h>
        #include <stdint.h>
        #include <stdlib.h>
        #include "tfc_threadpool.h"
        void \(sym)(void *const *args, int64_t T, int64_t p0);
        int main(void) {
            static float x[\(x.count)], kp[\(kp.count)], vp[\(vp.count)], y[\(T * 32)];
            FILE *f = fopen("in.bin", "rb");
            if (!f || fread(x, 4, \(x.count), f) != \(x.count) || fread(kp, 4, \(kp.count), f) != \(kp.count) || fread(vp, 4, \(vp.count), f) != \(vp.count)) return 2;
            fclose(f);
            tfc_set_num_threads(2);
            void *args[] = {x, kp, vp, y};
            \(sym)(args, \(T), 3);
            f = fopen("out.bin", "wb");
            fwrite(y, 4, \(T * 32), f);
            fclose(f);
            return 0;
        }
        """
        try main.write(to: dir.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
        let build = Process()
        build.executableURL = URL(fileURLWithPath: cc)
        build.currentDirectoryURL = dir
        build.arguments = ["-O2", "-I", runtime.appendingPathComponent("include").path, "main.c", "kernels.o",
                           runtime.appendingPathComponent("threadpool.c").path, "-lm", "-lpthread", "-o", "model"]
        try build.run()
        build.waitUntilExit()
        XCTAssertEqual(build.terminationStatus, 0, "cc failed")
        let run = Process()
        run.executableURL = dir.appendingPathComponent("model")
        run.currentDirectoryURL = dir
        try run.run()
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 0)
        let out = try Data(contentsOf: dir.appendingPathComponent("out.bin"))
        let aot = out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }

        let jitKernel = TestJIT.compile { [$0.addPattention(spec)] }[sym]!
        let X = AlignedBuffer(x), Y = AlignedBuffer(count: T * 32)
        jitKernel([X.raw, kp.raw, vp.raw, Y.raw], rows: T, position: 3)
        XCTAssertEqual(aot.count, T * 32)
        for (a, b) in zip(aot, Y.array) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }
}
