import ArgumentParser
import Foundation
import TFTokenizer

/// `tfc bench tokenizer FILE`: encoding speed of tfc's tokenizer, and of HF `tokenizers` on one
/// thread when the Python package is installed (run in a python3 subprocess), on the same text.
struct BenchTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encoding speed (MB/s) of tfc's tokenizer, and of HF tokenizers when installed.",
        discussion: """
        Each side loads the tokenizer once, then encodes the whole file --repeat times; the median \
        run is reported (its first run is also its cold run, with an empty word cache). HF runs \
        in python3 with RAYON_NUM_THREADS=1; the two id lists are compared.
        """)

    @ArgumentParser.Argument(help: "A UTF-8 text file.") var file: String
    @Option(help: "The tokenizer.json (default: the bundled GPT-NeoX-20B one, from the repository root).")
    var tokenizer = "tokenizers/gpt-neox-20b.tokenizer.json"
    @Option(name: .customLong("repeat"), help: "Timed encodings per side; the median is reported.") var repeats = 5

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeat must be at least 1, got \(repeats)") }
    }

    func run() throws {
        try reportingErrors {
            let text = try readText(file)
            let megabytes = Double(text.utf8.count) / 1e6
            let loadStart = Date()
            let model = try Tokenizer(contentsOf: tokenizer)
            let loadSeconds = Date().timeIntervalSince(loadStart)
            var times: [Double] = []
            var ids: [Int32] = []
            for _ in 0..<repeats {
                let start = Date()
                ids = model.encode(text)
                times.append(Date().timeIntervalSince(start))
            }
            let ours = times.sorted()[times.count / 2]
            print(String(format: "tokenizer bench: %@ (%.2f MB, %d tokens), one thread, median of %d", file, megabytes, ids.count, repeats))
            print(String(format: "  tfc            %8.2f MB/s  (%.3f s; min %.3f, max %.3f; load %.2f s)",
                         megabytes / ours, ours, times.min()!, times.max()!, loadSeconds))
            switch try HFTokenizerBench.run(tokenizer: tokenizer, file: file, repeats: repeats) {
            case .unavailable(let why):
                print("  HF tokenizers: not measured (\(why)); tfc alone")
            case .measured(let version, let hfTimes, let hfLoad, let hfIds):
                let theirs = hfTimes.sorted()[hfTimes.count / 2]
                print(String(format: "  HF tokenizers  %8.2f MB/s  (%.3f s; min %.3f, max %.3f; load %.2f s; version %@)",
                             megabytes / theirs, theirs, hfTimes.min()!, hfTimes.max()!, hfLoad, version))
                print(String(format: "  tfc is %.2fx HF's speed; the ids %@", theirs / ours,
                             hfIds == ids ? "are identical" : "DIFFER (first at \(zip(ids, hfIds).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(ids.count, hfIds.count)))"))
            }
        }
    }
}

/// HF `tokenizers` timed in a python3 subprocess.
enum HFTokenizerBench {
    enum Outcome { case unavailable(String), measured(version: String, times: [Double], load: Double, ids: [Int32]) }

    static let script = """
    import array, json, sys, time
    try:
        import tokenizers
    except ImportError:
        print(json.dumps({"error": "the python package tokenizers is not installed"})); sys.exit(0)
    path, text_path, repeats, ids_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    start = time.perf_counter()
    tok = tokenizers.Tokenizer.from_file(path)
    load = time.perf_counter() - start
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ids = tok.encode(text).ids
        times.append(time.perf_counter() - start)
    with open(ids_path, "wb") as f:
        array.array("i", ids).tofile(f)
    print(json.dumps({"version": tokenizers.__version__, "times": times, "load": load}))
    """

    static func run(tokenizer: String, file: String, repeats: Int) throws -> Outcome {
        let idsPath = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-bench-ids-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: idsPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, tokenizer, file, "\(repeats)", idsPath]
        var environment = ProcessInfo.processInfo.environment
        environment["RAYON_NUM_THREADS"] = "1"
        environment["TOKENIZERS_PARALLELISM"] = "false"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { return .unavailable("python3 cannot be run") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        _ = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return .unavailable("python3 failed")
        }
        if let error = object["error"] as? String { return .unavailable(error) }
        guard let times = object["times"] as? [Double], let load = object["load"] as? Double,
              let raw = FileManager.default.contents(atPath: idsPath) else { return .unavailable("python3 gave no result") }
        let ids = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        return .measured(version: object["version"] as? String ?? "?", times: times, load: load, ids: ids)
    }
}
