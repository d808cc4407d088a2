import XCTest

/// A usage error: `tfc ARGUMENTS` exits 1 with exactly `message` on stderr.
func assertUsageError(_ arguments: [String], _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let r = try TFC.run(arguments)
    XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
    XCTAssertEqual(r.stderr, message + "\n", file: file, line: line)
}

/// The commands that run a model (run, generate, eval) with inputs that do not exist and
/// `arguments` after them: a bad option must be refused before anything loads.
func modelRunningCommands(_ arguments: String...) -> [[String]] {
    [["run", "specs/tiny.tfs", "--weights", "none.safetensors", "--tokens", "1"],
     ["generate", "specs/tiny.tfs", "--weights", "none.safetensors", "--tokens", "1"],
     ["eval", "specs/tiny.tfs", "--weights", "none.safetensors", "--text", "none.txt"]].map { $0 + arguments }
}

/// `bench model` on the tiny spec, quick, with `option list`.
func benchModelCommand(_ option: String, _ list: String) -> [String] {
    ["bench", "model", "specs/tiny.tfs", "--quick", "--seq", "8", "--decode", "4", option, list]
}
