import ArgumentParser
import Foundation
import TFIR
import TFTokenizer

/// Text in and out for `tfc run` and `tfc generate`: the prompt as text, and the tokenizer for it.
struct TextOptions: ParsableArguments {
    @Option(help: "The prompt as text (encoded with the spec's tokenizer, or --tokenizer).") var prompt: String?
    @Option(name: .customLong("prompt-file"), help: "The prompt, read from a UTF-8 text file.") var promptFile: String?
    @Option(help: "A tokenizer.json to use instead of the one the spec names.") var tokenizer: String?
    @Flag(name: .customLong("show-ids"), help: "Print each token's id beside its text.") var showIds = false

    /// Whether the prompt is given as text (so the output is text too).
    var isText: Bool { prompt != nil || promptFile != nil }

    /// The files these options read, for the output policy (an output never replaces an input).
    var inputFiles: [(what: String, path: String)] {
        (promptFile.map { [(what: "prompt file", path: $0)] } ?? []) + (tokenizer.map { [(what: "tokenizer", path: $0)] } ?? [])
    }
}

extension TextOptions {
    /// The tokenizer: --tokenizer, else the spec's `tokenizer` field (relative to the spec's directory);
    /// nil when there is neither. Its ids must fit the model's vocabulary.
    func loadTokenizer(for loaded: LoadedSpec) throws -> Tokenizer? {
        try loadModelTokenizer(override: tokenizer, for: loaded)
    }

    /// The prompt's ids from exactly one of --tokens, --prompt and --prompt-file.
    func promptIds(tokens: String?, loaded: LoadedSpec, tokenizer: Tokenizer?) throws -> [Int32] {
        let given = [tokens.map { _ in "--tokens" }, prompt.map { _ in "--prompt" }, promptFile.map { _ in "--prompt-file" }].compactMap { $0 }
        if given.isEmpty { throw UserError("error: give the prompt with --tokens IDS, --prompt TEXT or --prompt-file FILE") }
        if given.count > 1 { throw UserError("error: give only one of \(given.joined(separator: ", "))") }
        let config = loaded.graph.config
        if let tokens { return try parseTokens(tokens, config: config) }
        let option = prompt != nil ? "--prompt" : "--prompt-file"
        guard let tokenizer else {
            throw UserError("error: \(option) needs a tokenizer: \(loaded.source.path) names none; add `tokenizer = \"NAME.tokenizer.json\"` to its model, or pass --tokenizer FILE")
        }
        let text = try prompt ?? readText(promptFile!)
        let ids = tokenizer.encode(text)
        if ids.isEmpty { throw UserError("error: \(option): the prompt is empty (no tokens)") }
        if ids.count > config.context {
            throw UserError("error: \(option): the prompt is \(ids.count) tokens, more than the model's context of \(config.context)")
        }
        return ids
    }
}

/// How `tfc generate` shows tokens: ids comma-separated (for --tokens), or text as it comes, with
/// an incomplete UTF-8 character held back until its last byte arrives.
final class GenerationOutput {
    private let tokenizer: Tokenizer?
    private let showIds: Bool
    private var stream = StreamingDecoder()
    private var count = 0
    private let out = FileHandle.standardOutput

    /// Text output when a tokenizer is given, ids otherwise.
    init(tokenizer: Tokenizer?, showIds: Bool) {
        self.tokenizer = tokenizer
        self.showIds = showIds
    }

    /// Text mode starts with the prompt itself.
    func prompt(_ ids: [Int32]) {
        guard tokenizer != nil else { return }
        for id in ids { text(id) }
    }

    /// One generated token (the end token is not shown as text).
    func token(_ id: Int32, isEnd: Bool) {
        if tokenizer == nil {
            write(count == 0 ? "\(id)" : ",\(id)")
            count += 1
        } else if isEnd {
            if showIds { write("[\(id)]") }
        } else {
            text(id)
        }
    }

    func finish() {
        if tokenizer != nil { write(stream.finish()) }
        write("\n")
    }

    private func text(_ id: Int32) {
        // An id past the tokenizer's (a padded vocabulary) has no text, as in HF's decode.
        write(stream.append(tokenizer!.bytes(of: id) ?? []) + (showIds ? "[\(id)]" : ""))
    }

    private func write(_ s: String) { if !s.isEmpty { out.write(Data(s.utf8)) } }
}

/// The tokenizer: `override` (--tokenizer), else the spec's `tokenizer` field (relative to the spec's
/// directory); nil when there is neither. Its ids must fit the model's vocabulary.
func loadModelTokenizer(override: String?, for loaded: LoadedSpec) throws -> Tokenizer? {
    let path: String
    if let override {
        path = override
    } else if let named = loaded.graph.config.tokenizer {
        let specDirectory = URL(fileURLWithPath: loaded.source.path).deletingLastPathComponent()
        path = named.hasPrefix("/") ? named : specDirectory.appendingPathComponent(named).path
    } else {
        return nil
    }
    let model = try Tokenizer(contentsOf: path)
    let vocab = loaded.graph.config.vocab
    if model.vocabularySize > vocab {
        throw UserError("\(path): error: the tokenizer has ids up to \(model.vocabularySize - 1), outside the model's vocabulary 0..<\(vocab) (\(loaded.source.path))")
    }
    return model
}
