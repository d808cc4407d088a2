import ArgumentParser
import Foundation
import TFTokenizer

/// `tfc tokenize TOKENIZER.json [FILE]`: text → ids (or, with --decode, ids → text).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Turn text into token ids (or ids into text) with a tokenizer.json.",
        discussion: """
        Reads FILE (or standard input) as UTF-8 and prints the ids comma-separated on one line. \
        --count prints their number instead; --decode --tokens 1,2,3 prints the text of the ids.
        """)

    @ArgumentParser.Argument(help: "A byte-level BPE tokenizer.json (GPT-2, GPT-NeoX, Pythia).") var tokenizer: String
    @ArgumentParser.Argument(help: "The text file (default: standard input).") var file: String?
    @Flag(help: "Print the number of tokens instead of the ids.") var count = false
    @Flag(help: "Decode --tokens to text instead.") var decode = false
    @Option(parsing: .unconditional, help: "With --decode: comma-separated token ids.") var tokens: String?

    func validate() throws {
        if decode && tokens == nil { throw ValidationError("--decode needs --tokens IDS") }
        if !decode && tokens != nil { throw ValidationError("--tokens is for --decode; to encode, give a FILE or standard input") }
        if decode && file != nil { throw ValidationError("--decode takes its ids from --tokens, not from a FILE") }
        if decode && count { throw ValidationError("--count counts the tokens of a text; it does not go with --decode") }
    }

    func run() throws {
        try reportingErrors {
            let model = try Tokenizer(contentsOf: tokenizer)
            if decode, let tokens {
                let ids = try parseTokenIds(tokens, option: "--tokens", vocabularySize: model.vocabularySize)
                FileHandle.standardOutput.write(Data(try model.decode(ids).utf8))
                FileHandle.standardOutput.write(Data("\n".utf8))
                return
            }
            let text = try readText(file)
            let ids = model.encode(text)
            print(count ? "\(ids.count)" : ids.map(String.init).joined(separator: ","))
        }
    }
}

/// Reads a text file (or standard input when nil); it must be UTF-8.
func readText(_ path: String?) throws -> String {
    let name = path ?? "<stdin>"
    let data: Data
    if let path {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw UserError("\(path): error: no such file") }
        if isDirectory.boolValue { throw UserError("\(path): error: is a directory, not a text file") }
        guard let contents = FileManager.default.contents(atPath: path) else { throw UserError("\(path): error: cannot read the file") }
        data = contents
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
    }
    guard let text = String(validatingUTF8Data: data) else {
        throw UserError("\(name): error: not UTF-8 text (the first invalid byte is at offset \(firstInvalidUTF8Offset(data)))")
    }
    return text
}

extension String {
    /// The text of UTF-8 bytes, or nil when they are not valid UTF-8 (no replacement characters).
    init?(validatingUTF8Data data: Data) {
        let text = String(decoding: data, as: UTF8.self)
        // Decoding repairs invalid bytes with U+FFFD, which changes the byte count or the bytes.
        guard text.utf8.count == data.count, text.utf8.elementsEqual(data) else { return nil }
        self = text
    }
}

/// Where the first invalid UTF-8 sequence starts (for the message).
func firstInvalidUTF8Offset(_ data: Data) -> Int {
    var iterator = data.makeIterator()
    var decoder = UTF8()
    var offset = 0
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): offset += UTF8.width(scalar)
        case .emptyInput: return offset
        case .error: return offset
        }
    }
}

/// Parses comma-separated token ids for a tokenizer (any id it has).
func parseTokenIds(_ text: String, option: String, vocabularySize: Int) throws -> [Int32] {
    let pieces = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    if pieces.count == 1 && pieces[0].isEmpty { return [] }
    return try pieces.enumerated().map { index, piece in
        guard let id = Int32(piece), id >= 0, Int(id) < vocabularySize else {
            throw UserError("error: \(option): '\(piece)' (item \(index + 1)) is not a token id of the tokenizer (0..<\(vocabularySize))")
        }
        return id
    }
}
