import Foundation
import XCTest
import TFWeights

/// specs/tiny.tfs compiled once per test process (by `tfc compile`, as a user would) into an
/// executable and a shared library, shared by the Compile* test classes.
struct CompiledTiny {
    let dir: URL
    let weights: String
    let executable: URL
    let library: URL
    let header: URL
    let environment: [String: String]

    static let spec = "specs/tiny.tfs"
    static let prompt = "5,17,3,99,200,1,42,7,128,64,33,250"

    private static let built: Result<CompiledTiny, Error> = Result { try CompiledTiny() }

    /// The fixture, or the error that building it hit.
    static func get() throws -> CompiledTiny { try built.get() }

    private init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-compile-test-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("lib"), withIntermediateDirectories: true)
        atexit { CompiledTiny.removeAll() }
        CompiledTiny.directories.append(dir)
        environment = ["TFC_CACHE_DIR": dir.appendingPathComponent("cache").path]
        weights = dir.appendingPathComponent("tiny.safetensors").path
        executable = dir.appendingPathComponent("tiny")
        library = dir.appendingPathComponent("lib/libtiny.so")
        header = dir.appendingPathComponent("lib/tiny.h")
        try Self.check(try TFC.run(["init", Self.spec, "-o", weights, "--seed", "3"]), "tfc init")
        try Self.check(try TFC.run(["compile", Self.spec, "--weights", weights, "-o", executable.path], environment: environment), "tfc compile")
        try Self.check(try TFC.run(["compile", Self.spec, "--weights", weights, "--emit", "shared", "-o", library.path], environment: environment),
                       "tfc compile --emit shared")
    }

    nonisolated(unsafe) static var directories: [URL] = []
    static func removeAll() {
        for d in directories { try? FileManager.default.removeItem(at: d) }
    }

    static func check(_ r: TFCResult, _ what: String) throws {
        struct Failed: Error, CustomStringConvertible { var description: String }
        if r.status != 0 { throw Failed(description: "\(what) failed (status \(r.status)): \(r.stderr)") }
    }

    /// Runs tfc with this fixture's compiled-code cache.
    func tfc(_ arguments: [String], extra: [String: String] = [:]) throws -> TFCResult {
        try TFC.run(arguments, environment: environment.merging(extra) { $1 })
    }

    /// Runs the compiled executable.
    func run(_ arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws -> TFCResult {
        try TFC.runProcess(executable, arguments, cwd: cwd, environment: environment)
    }

    /// `tfc run --backend fused` logits for `tokens` (cached per token list).
    func runLogits(_ tokens: String) throws -> Npy.Array {
        let path = dir.appendingPathComponent("run-\(fnv(tokens)).npy").path
        if !FileManager.default.fileExists(atPath: path) {
            let r = try tfc(["run", Self.spec, "--weights", weights, "--backend", "fused", "--tokens", tokens, "--logits", path])
            XCTAssertSucceeded(r, "tfc run")
        }
        return try Npy.read(path: path)
    }

    private func fnv(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }
}

/// The largest absolute difference between two equally long arrays.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Runs a program (not tfc) and returns its result; nil if it does not exist.
func runTool(_ path: String, _ arguments: [String], cwd: URL? = nil, environment: [String: String]? = nil) throws -> TFCResult? {
    guard FileManager.default.isExecutableFile(atPath: path) else { return nil }
    return try TFC.runProcess(URL(fileURLWithPath: path), arguments, cwd: cwd, environment: environment)
}
