import Foundation
import XCTest
import TFWeights
@testable import TFDriver

/// The output policy (README "Outputs"), command by command: an output that is an input is
/// refused (through symbolic and hard links too), as are a read-only file, a directory and a
/// missing directory, and nothing in the directory changes; a device or a FIFO is written in
/// place and stays what it was; a symbolic link is written through (the link stays, the
/// target's mode is kept); a hard link is not split.
final class OutputPolicyTests: XCTestCase {
    /// A directory with a spec and its weights, and what every file in it is.
    struct Scene {
        let dir: URL
        var spec: String { path("s.tfs") }
        var weights: String { path("w.safetensors") }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        init(_ test: XCTestCase) throws {
            dir = try TFC.temporaryDirectory(test)
            try FileManager.default.copyItem(atPath: TFC.root.appendingPathComponent("specs/tiny.tfs").path, toPath: path("s.tfs"))
            XCTAssertSucceeded(try TFC.run(["init", path("s.tfs"), "-o", path("w.safetensors")]), "init")
        }

        /// Every entry: type and mode, inode, link target, content.
        func snapshot() throws -> [String: String] {
            var result: [String: String] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
                var s = stat()
                lstat(path(name), &s)
                var entry = "mode \(String(s.st_mode, radix: 8)) inode \(s.st_ino) links \(s.st_nlink) rdev \(s.st_rdev)"
                if s.st_mode & S_IFMT == S_IFLNK { entry += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: path(name))) ?? "?") }
                if s.st_mode & S_IFMT == S_IFREG, let data = FileManager.default.contents(atPath: path(name)) { entry += " data \(OutputPolicyTests.checksum(data)) \(data.count)" }
                result[name] = entry
            }
            return result
        }
    }

    /// FNV-1a of the bytes.
    static func checksum(_ data: Data) -> UInt64 {
        data.withUnsafeBytes { bytes in bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 } }
    }

    /// A command that writes one output: its flag, whether it reads the weights, its arguments.
    struct Writer {
        let command: String
        let role: String
        let readsWeights: Bool
        let arguments: (Scene, String) -> [String]
    }

    static let writers: [Writer] = [
        Writer(command: "init", role: "-o", readsWeights: false) { s, out in ["init", s.spec, "-o", out] },
        Writer(command: "run", role: "--logits", readsWeights: true) { s, out in ["run", s.spec, "--weights", s.weights, "--tokens", "1,2,3", "--logits", out] },
        Writer(command: "compile", role: "-o", readsWeights: true) { s, out in ["compile", s.spec, "--weights", s.weights, "-o", out] },
        Writer(command: "grow", role: "-o", readsWeights: true) { s, out in
            ["grow", s.spec, "--weights", s.weights, "-o", out, "--out-weights", s.path("g.safetensors"), "--tokens", "mlp=+8", "--no-verify"] },
        Writer(command: "grow", role: "--out-weights", readsWeights: true) { s, out in
            ["grow", s.spec, "--weights", s.weights, "-o", s.path("g.tfs"), "--out-weights", out, "--tokens", "mlp=+8", "--no-verify"] },
        Writer(command: "bench", role: "--json", readsWeights: false) { s, out in ["bench", "kernels", s.spec, "--quick", "--repeat", "1", "--warmup", "0", "--seq", "4",
                                                                 "--contexts", "8", "--threads", "1", "--json", out] },
        Writer(command: "bench", role: "--plot", readsWeights: true) { s, out in ["bench", "model", s.spec, "--weights", s.weights, "--quick", "--repeat", "1",
                                                               "--warmup", "0", "--seq", "4", "--decode", "1", "--threads", "1", "--plot", out] },
    ]

    /// Outputs that must be refused: how to make the path, and the message after `PATH: error: `.
    struct Refusal {
        let name: String
        let needsWeights: Bool
        let make: (Scene) throws -> String
        let message: (Scene, _ role: String) -> String
    }

    static let refusals: [Refusal] = [
        Refusal(name: "the spec", needsWeights: false, make: { $0.spec }) { _, role in "\(role) is the input spec; write to another file" },
        Refusal(name: "the weights", needsWeights: true, make: { $0.weights }) { _, role in "\(role) is the input weights file; write to another file" },
        Refusal(name: "a symbolic link to the spec", needsWeights: false, make: { s in
            try FileManager.default.createSymbolicLink(atPath: s.path("link.tfs"), withDestinationPath: "s.tfs")
            return s.path("link.tfs")
        }) { s, role in "\(role) is the input spec \(s.spec) (the same file); write to another file" },
        Refusal(name: "a hard link to the weights", needsWeights: true, make: { s in
            XCTAssertEqual(link(s.weights, s.path("hard.safetensors")), 0)
            return s.path("hard.safetensors")
        }) { s, role in "\(role) is the input weights file \(s.weights) (the same file); write to another file" },
        Refusal(name: "a read-only file", needsWeights: false, make: { s in
            XCTAssertTrue(FileManager.default.createFile(atPath: s.path("ro.out"), contents: Data("keep".utf8), attributes: [.posixPermissions: 0o444]))
            return s.path("ro.out")
        }) { _, role in "\(role) is read-only; not overwritten (write to another file, or make it writable)" },
        Refusal(name: "a directory", needsWeights: false, make: { s in
            try FileManager.default.createDirectory(atPath: s.path("sub"), withIntermediateDirectories: false)
            return s.path("sub")
        }) { _, role in "\(role) names a directory; give a file name" },
        Refusal(name: "a missing directory", needsWeights: false, make: { $0.path("nodir/out") }) { s, role in
            "\(role): the directory \(s.path("nodir")) does not exist" },
    ]

    func testEveryCommandRefusesInputsAndUnwritableOutputs() throws {
        for writer in Self.writers {
            for refusal in Self.refusals where writer.readsWeights || !refusal.needsWeights {
                let scene = try Scene(self)
                let out = try refusal.make(scene)
                let before = try scene.snapshot()
                let arguments = writer.arguments(scene, out)
                let what = "\(arguments[0]) \(writer.role) = \(refusal.name)"
                guard let r = try runBounded(TFC.executable, arguments) else { continue }
                XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)")
                XCTAssertEqual(r.stderr, "\(out): error: \(refusal.message(scene, writer.role))\n", what)
                XCTAssertEqual(try scene.snapshot(), before, "\(what): the directory changed")
            }
        }
    }

    /// A private character device equal to /dev/null (as root), else /dev/null itself (which a
    /// user cannot replace, so a policy that renamed over it would fail the test).
    func nullDevice(in scene: Scene) -> String {
        var null = stat()
        XCTAssertEqual(stat("/dev/null", &null), 0)
        let path = scene.path("null")
        return mknod(path, S_IFCHR | 0o666, null.st_rdev) == 0 ? path : "/dev/null"
    }

    func assertCharacterDevice(_ path: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        var s = stat(), null = stat()
        XCTAssertEqual(lstat(path, &s), 0, what, file: file, line: line)
        stat("/dev/null", &null)
        XCTAssertEqual(s.st_mode & S_IFMT, S_IFCHR, "\(what): \(path) is no longer a character device", file: file, line: line)
        XCTAssertEqual(s.st_rdev, null.st_rdev, what, file: file, line: line)
    }

    /// The written outputs of the cheap commands (compile is checked once, below).
    static let writing = writers.filter { ["init", "run", "grow"].contains($0.command) }

    func testDevicesStayDevicesAndFIFOsAreWrittenInPlace() throws {
        for writer in Self.writing {
            let scene = try Scene(self)
            let null = nullDevice(in: scene)
            var arguments = writer.arguments(scene, null)
            guard let r = try runBounded(TFC.executable, arguments) else { continue }
            XCTAssertSucceeded(r, "\(arguments[0]) \(writer.role) \(null)")
            assertCharacterDevice(null, "\(arguments[0]) \(writer.role)")

            let fifo = scene.path("fifo")
            XCTAssertEqual(mkfifo(fifo, 0o644), 0)
            let reader = FIFOReader(fifo)
            arguments = writer.arguments(scene, fifo)
            guard let w = try runBounded(TFC.executable, arguments) else { continue }
            XCTAssertSucceeded(w, "\(arguments[0]) \(writer.role) FIFO")
            let data = reader.finish()
            var s = stat()
            lstat(fifo, &s)
            XCTAssertEqual(s.st_mode & S_IFMT, S_IFIFO, "\(arguments[0]) \(writer.role): the FIFO was replaced")
            // What came through the FIFO is the whole file: the same bytes a regular output gets.
            let regular = scene.path("regular.out")
            XCTAssertSucceeded(try TFC.run(writer.arguments(scene, regular)), "regular output")
            let expected = try Data(contentsOf: URL(fileURLWithPath: regular))
            if writer.role == "-o" && arguments[0] == "grow" {
                XCTAssertEqual(data.count, expected.count, "grown spec through the FIFO")  // the header names the output
            } else {
                XCTAssertEqual(data, expected, "\(arguments[0]) \(writer.role): FIFO content")
            }
            XCTAssertGreaterThan(data.count, 100)
        }
    }

    func testSymbolicLinksAreWrittenThroughAndModesKeptAndHardLinksNotSplit() throws {
        for writer in Self.writing {
            let scene = try Scene(self)
            let target = scene.path("target.out")
            XCTAssertTrue(FileManager.default.createFile(atPath: target, contents: Data("old".utf8), attributes: [.posixPermissions: 0o640]))
            try FileManager.default.createSymbolicLink(atPath: scene.path("link.out"), withDestinationPath: "target.out")
            var arguments = writer.arguments(scene, scene.path("link.out"))
            XCTAssertSucceeded(try TFC.run(arguments), "\(arguments[0]) \(writer.role) through a link")
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: scene.path("link.out")), "target.out", "the link stays")
            let attributes = try FileManager.default.attributesOfItem(atPath: target)
            XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o640, "\(arguments[0]) \(writer.role): mode kept")
            XCTAssertGreaterThan(attributes[.size] as? Int ?? 0, 100, "\(arguments[0]) \(writer.role): written through")

            // A dangling link: its target is created.
            try FileManager.default.createSymbolicLink(atPath: scene.path("dangling.out"), withDestinationPath: "new.out")
            arguments = writer.arguments(scene, scene.path("dangling.out"))
            XCTAssertSucceeded(try TFC.run(arguments), "\(arguments[0]) \(writer.role) through a dangling link")
            XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: scene.path("new.out")))[.size] as? Int ?? 0, 100)
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: scene.path("dangling.out")), "new.out")

            // Hard links: written in place, both names still one file.
            XCTAssertTrue(FileManager.default.createFile(atPath: scene.path("a.out"), contents: Data("old".utf8)))
            XCTAssertEqual(link(scene.path("a.out"), scene.path("b.out")), 0)
            arguments = writer.arguments(scene, scene.path("a.out"))
            XCTAssertSucceeded(try TFC.run(arguments), "\(arguments[0]) \(writer.role) to a hard link")
            var a = stat(), b = stat()
            stat(scene.path("a.out"), &a)
            stat(scene.path("b.out"), &b)
            XCTAssertEqual(a.st_ino, b.st_ino, "\(arguments[0]) \(writer.role): the hard link was split")
            XCTAssertEqual(a.st_nlink, 2)
            XCTAssertGreaterThan(Int(b.st_size), 100, "written through the other name too")
        }
    }

    /// /dev/stdout (here a pipe, reached through /proc's magic links) is written in place.
    func testStandardOutputIsWrittenInPlace() throws {
        let scene = try Scene(self)
        let r = try TFC.run(["run", scene.spec, "--weights", scene.weights, "--tokens", "1,2,3", "--logits", "/dev/stdout"])
        XCTAssertSucceeded(r, "run --logits /dev/stdout")
        XCTAssertTrue(r.stdout.hasPrefix("\u{FFFD}NUMPY"), String(r.stdout.prefix(20)))
        XCTAssertTrue(r.stdout.contains("logits [3, 256] written to /dev/stdout"), r.stdout)
        let tiny = try CompiledTiny.get()
        let c = try tiny.run(["--tokens", "1,2,3", "--logits", "/dev/stdout"])
        XCTAssertSucceeded(c, "compiled --logits /dev/stdout")
        XCTAssertTrue(c.stdout.hasPrefix("\u{FFFD}NUMPY"), String(c.stdout.prefix(20)))
    }

    func testGrowChecksBothOutputsBeforeWritingEither() throws {
        let scene = try Scene(self)
        XCTAssertTrue(FileManager.default.createFile(atPath: scene.path("W.safetensors"), contents: Data("old weights".utf8)))
        try FileManager.default.createDirectory(atPath: scene.path("d"), withIntermediateDirectories: false)
        let before = try scene.snapshot()
        let r = try TFC.run(["grow", scene.spec, "--weights", scene.weights, "-o", scene.path("d"), "--out-weights", scene.path("W.safetensors"),
                             "--tokens", "mlp=+8"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "\(scene.path("d")): error: -o names a directory; give a file name\n")
        XCTAssertEqual(try scene.snapshot(), before)
        XCTAssertEqual(try String(contentsOfFile: scene.path("W.safetensors"), encoding: .utf8), "old weights")

        let same = try TFC.run(["grow", scene.spec, "--weights", scene.weights, "-o", scene.path("n.tfs"), "--out-weights", scene.path("./n.tfs"),
                                "--tokens", "mlp=+8"])
        XCTAssertEqual(same.stderr, "\(scene.path("./n.tfs")): error: -o and --out-weights name the same file; give each its own\n")
    }

    func testCompileWritesADeviceOrAFIFOInPlace() throws {
        let scene = try Scene(self)
        let environment = ["TFC_CACHE_DIR": scene.path("cache")]
        // A private device as root; /dev/null's directory is not writable for NAME.weights otherwise.
        let null = nullDevice(in: scene)
        if null != "/dev/null" {
            XCTAssertSucceeded(try TFC.run(["compile", scene.spec, "--weights", scene.weights, "-o", null], environment: environment), "compile -o \(null)")
            assertCharacterDevice(null, "compile -o")
            XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: null + ".weights"))[.size] as? Int ?? 0, 1000)
        }
        // A FIFO gets the whole program; NAME.weights beside it is a regular file.
        let fifo = scene.path("prog")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let reader = FIFOReader(fifo)
        if let r = try runBounded(TFC.executable, ["compile", scene.spec, "--weights", scene.weights, "-o", fifo], environment: environment) {
            XCTAssertSucceeded(r, "compile -o FIFO")
        }
        let program = reader.finish()
        XCTAssertEqual(Array(program.prefix(4)), [0x7F, 0x45, 0x4C, 0x46], "an ELF file came through the FIFO")
        var s = stat()
        lstat(fifo, &s)
        XCTAssertEqual(s.st_mode & S_IFMT, S_IFIFO, "the FIFO stays a FIFO")
        XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: fifo + ".weights"))[.size] as? Int ?? 0, 1000)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: scene.dir.path).contains { $0.contains(".tmp-") })
    }

    /// A model name is never a path: `model "../victim.txt"` compiled without -o writes
    /// `_victim.txt` in the working directory and leaves ../victim.txt alone.
    func testDefaultOutputNameFromTheSpecIsAFileName() throws {
        let scene = try Scene(self)
        let source = try String(contentsOfFile: scene.spec, encoding: .utf8).replacingOccurrences(of: "model \"tiny\"", with: "model \"../victim.txt\"")
        try source.write(toFile: scene.path("victim.tfs"), atomically: true, encoding: .utf8)
        try "precious".write(toFile: scene.path("victim.txt"), atomically: true, encoding: .utf8)
        let work = scene.dir.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: false)
        let r = try TFC.run(["compile", scene.path("victim.tfs"), "--weights", scene.weights], cwd: work,
                            environment: ["TFC_CACHE_DIR": scene.path("cache")])
        XCTAssertSucceeded(r, "compile without -o")
        XCTAssertEqual(r.stderr, "note: the model name \"../victim.txt\" is not a plain file name; writing _victim.txt (choose with -o)\n")
        XCTAssertEqual(try String(contentsOfFile: scene.path("victim.txt"), encoding: .utf8), "precious")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).sorted(), ["_victim.txt", "_victim.txt.weights"])
        let run = try TFC.runProcess(work.appendingPathComponent("_victim.txt"), ["--tokens", "1,2", "-n", "2"])
        XCTAssertSucceeded(run, "the compiled program")

        // The file name rule itself.
        for (name, file) in [("tiny", "tiny"), ("../victim.txt", "_victim.txt"), ("/etc/passwd", "_etc_passwd"), ("a b", "a_b"),
                             ("..", "model"), ("-rf", "rf"), ("TokenFormer-150M_v1.2+x", "TokenFormer-150M_v1.2+x"), ("ü", "_")] {
            XCTAssertEqual(OutputNames.fileName(fromModelName: name), file, name)
        }
    }

    /// The compiled program's --logits follows the same policy (Runtime/output_file.c).
    func testCompiledProgramLogitsFollowThePolicy() throws {
        let tiny = try CompiledTiny.get()
        let scene = try Scene(self)
        let weights = tiny.dir.appendingPathComponent("tiny.weights").path
        let program = tiny.executable.path
        try FileManager.default.createSymbolicLink(atPath: scene.path("wlink"), withDestinationPath: weights)
        XCTAssertTrue(FileManager.default.createFile(atPath: scene.path("ro.npy"), contents: Data("keep".utf8), attributes: [.posixPermissions: 0o444]))
        let cases: [(String, String)] = [
            (weights, "--logits is the input weights file; write to another file"),
            (scene.path("wlink"), "--logits is the input weights file \(weights) (the same file); write to another file"),
            (program, "--logits is the input program; write to another file"),
            (scene.path("ro.npy"), "--logits is read-only; not overwritten (write to another file, or make it writable)"),
            (scene.dir.path, "--logits names a directory; give a file name"),
            (scene.path("nodir/x.npy"), "--logits: the directory \(scene.path("nodir")) does not exist"),
        ]
        let weightsBefore = try Data(contentsOf: URL(fileURLWithPath: weights))
        for (out, message) in cases {
            let before = try scene.snapshot()
            guard let r = try runBounded(tiny.executable, ["--tokens", "1,2,3", "--weights", weights, "--logits", out]) else { continue }
            XCTAssertEqual(r.status, 1, out)
            XCTAssertEqual(r.stderr, "tiny: error: \(out): \(message)\n")
            XCTAssertEqual(try scene.snapshot(), before, out)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: weights)), weightsBefore, "the weights are untouched")

        // Written: a device stays a device, a FIFO gets the file, a link is written through with its mode.
        let expectedPath = scene.path("regular.npy")
        XCTAssertSucceeded(try tiny.run(["--tokens", "1,2,3", "--logits", expectedPath]), "regular")
        let expected = try Data(contentsOf: URL(fileURLWithPath: expectedPath))
        XCTAssertEqual(try Npy.read(path: expectedPath).shape, [3, 256])
        let null = nullDevice(in: scene)
        XCTAssertSucceeded(try tiny.run(["--tokens", "1,2,3", "--logits", null]), "device")
        assertCharacterDevice(null, "compiled --logits")
        let fifo = scene.path("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let reader = FIFOReader(fifo)
        if let r = try runBounded(tiny.executable, ["--tokens", "1,2,3", "--logits", fifo]) { XCTAssertSucceeded(r, "FIFO") }
        XCTAssertEqual(reader.finish(), expected)
        XCTAssertTrue(FileManager.default.createFile(atPath: scene.path("t.npy"), contents: Data("old".utf8), attributes: [.posixPermissions: 0o600]))
        try FileManager.default.createSymbolicLink(atPath: scene.path("l.npy"), withDestinationPath: "t.npy")
        XCTAssertSucceeded(try tiny.run(["--tokens", "1,2,3", "--logits", scene.path("l.npy")]), "link")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: scene.path("t.npy"))), expected)
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: scene.path("t.npy")))[.posixPermissions] as? Int, 0o600)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: scene.path("l.npy")), "t.npy")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: scene.dir.path).contains { $0.contains(".tmp-") })
    }
}

/// Reads everything written to a FIFO, without blocking the test if nobody ever writes (a
/// policy that renamed over the FIFO would leave a blocking reader behind).
final class FIFOReader: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    private var stop = false
    private let lock = NSLock()

    init(_ path: String) {
        DispatchQueue.global().async { [self] in
            let fd = open(path, O_RDONLY | O_NONBLOCK)
            defer { if fd >= 0 { close(fd) }; done.signal() }
            guard fd >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var started = false
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n > 0 {
                    started = true
                    lock.lock(); data.append(contentsOf: buffer[0..<n]); lock.unlock()
                    continue
                }
                if n == 0 && started { return }  // the writer closed it
                lock.lock(); let stopping = stop; lock.unlock()
                if stopping { return }
                usleep(5_000)  // no writer yet (0), or nothing to read yet (EAGAIN)
            }
        }
    }

    /// Everything read once the writer (which has exited) closed the FIFO.
    func finish() -> Data {
        if done.wait(timeout: .now() + 10) == .timedOut {
            lock.lock(); stop = true; lock.unlock()
            done.wait()
        }
        lock.lock(); defer { lock.unlock() }
        return data
    }
}
