import Foundation

/// How `--data` is read.
public enum DataFormat: String, CaseIterable, Sendable {
    /// Every byte of the file is a token (needs vocab ≥ 256).
    case bytes
    /// Decimal token ids separated by commas or whitespace.
    case ids
    /// UTF-8 text, encoded with the model's tokenizer.
    case text
}

/// A training corpus as token ids: the first 90% trains, the last 10% (at least one window)
/// is held out for the evaluation loss, unless a separate evaluation file is given.
public struct TrainingData: Sendable {
    public var train: [Int32]
    public var heldOut: [Int32]
    /// At most this many held-out windows are evaluated.
    public var heldOutLimit = 16

    /// Token ids already split (benchmarks, tests).
    public init(train: [Int32], heldOut: [Int32]) { self.train = train; self.heldOut = heldOut }

    /// Reads and splits `path`, or with `heldOutPath` trains on all of `path` and evaluates on
    /// all of that file; errors say which file and what is wrong.
    /// `encode` tokenizes `.text` data.
    public init(path: String, format: DataFormat, vocab: Int, window: Int, heldOutPath: String? = nil,
                encode: ((String) -> [Int32])? = nil) throws {
        let tokens = try Self.read(path, format: format, vocab: vocab, encode: encode)
        if let heldOutPath {
            heldOut = try Self.read(heldOutPath, format: format, vocab: vocab, encode: encode)
            if heldOut.count < window {
                throw TrainingError("\(heldOutPath): error: \(heldOut.count) tokens are fewer than one window of \(window)")
            }
            if tokens.count < window + 1 {
                throw TrainingError("\(path): error: \(tokens.count) tokens are too few for windows of \(window) (need at least \(window + 1))")
            }
            train = tokens
            return
        }
        let held = max(window, tokens.count / 10)
        if tokens.count < held + window + 1 {
            throw TrainingError("\(path): error: \(tokens.count) tokens are too few for windows of \(window) (need at least \(held + window + 1))")
        }
        train = Array(tokens[..<(tokens.count - held)])
        heldOut = Array(tokens[(tokens.count - held)...])
    }

    static func read(_ path: String, format: DataFormat, vocab: Int, encode: ((String) -> [Int32])?) throws -> [Int32] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): error: cannot read the training data")
        }
        var tokens: [Int32] = []
        switch format {
        case .bytes:
            if vocab < 256 { throw TrainingError("\(path): error: byte tokens need a vocabulary of at least 256, the model has \(vocab)") }
            tokens = data.map { Int32($0) }
        case .ids:
            guard let text = String(data: data, encoding: .utf8) else { throw TrainingError("\(path): error: token ids must be UTF-8 text") }
            for (index, piece) in text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).enumerated() {
                guard let id = Int(piece), id >= 0, id < vocab else {
                    throw TrainingError("\(path): error: item \(index + 1) '\(piece)' is not a token id in 0..<\(vocab)")
                }
                tokens.append(Int32(id))
            }
        case .text:
            guard let encode else { throw TrainingError("\(path): error: text data needs a tokenizer") }
            guard let text = String(data: data, encoding: .utf8) else { throw TrainingError("\(path): error: text data must be UTF-8") }
            tokens = encode(text)
            if let bad = tokens.first(where: { $0 < 0 || Int($0) >= vocab }) {
                throw TrainingError("\(path): error: the tokenizer gave id \(bad), outside the model's vocabulary 0..<\(vocab)")
            }
        }
        return tokens
    }

    /// `batch` windows of `window` tokens at random offsets of the training part.
    public func batch(_ batch: Int, window: Int, random: inout TrainingRandom) -> [[Int32]] {
        (0..<batch).map { _ in
            let start = random.below(train.count - window + 1)
            return Array(train[start..<(start + window)])
        }
    }

    /// Consecutive non-overlapping held-out windows (at most `limit`, by default `heldOutLimit`): the evaluation set.
    public func heldOutWindows(_ window: Int, limit: Int? = nil) -> [[Int32]] {
        stride(from: 0, through: heldOut.count - window, by: window).prefix(limit ?? heldOutLimit).map { Array(heldOut[$0..<($0 + window)]) }
    }
}

/// A training input or state the user must fix; the message says where and what.
public struct TrainingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
