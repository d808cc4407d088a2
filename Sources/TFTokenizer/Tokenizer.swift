import Foundation

/// A byte-level BPE tokenizer (GPT-2, GPT-NeoX, Pythia) that gives the ids HF `tokenizers` gives:
///
///   1. added tokens that are not normalised (the special ones) are split out of the raw text;
///   2. the rest is NFC-normalised (when the file says so), then the normalised added tokens
///      (NeoX's whitespace runs) are split out;
///   3. what remains is cut by GPT-2's pre-tokenizer pattern and each piece is byte-pair encoded.
///
/// Decoding maps ids back to bytes (the byte-level alphabet) and reads them as UTF-8, with U+FFFD
/// for each maximal invalid subsequence, as Rust's `from_utf8_lossy` does.
/// Not thread-safe: it keeps a word cache and scratch space (use one per thread).
public final class Tokenizer {
    /// The file it was read from (for messages).
    public let path: String
    /// One more than the largest id (the vocabulary and the added tokens).
    public let vocabularySize: Int
    /// Every token's text as given in the file (byte-level spelling for the vocabulary).
    private let tokenText: [String?]
    /// The bytes each id decodes to (nil: no token has this id).
    private let tokenBytes: [[UInt8]?]
    private let byteIds: [Int32]
    private let merges: MergeTable
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    private let nfc: Bool
    /// Whole-word lookup when the file sets `ignore_merges` (a word in the vocabulary is one token).
    private let wordIds: [[UInt8]: Int32]?
    private let addedIds: [String: Int32]
    private var word = BPEWord()
    private let normalizer = NFC()
    private var cache: [[UInt8]: [Int32]] = [:]
    private static let cacheCapacity = 50_000, cachedWordLength = 64

    public convenience init(contentsOf path: String) throws {
        try self.init(TokenizerFile(path: path), path: path)
    }

    public convenience init(data: Data, path: String) throws {
        try self.init(TokenizerFile(data: data, path: path), path: path)
    }

    init(_ file: TokenizerFile, path: String) throws {
        func fail(_ what: String) -> TokenizerError { TokenizerError("\(path): error: \(what)") }
        self.path = path
        nfc = file.nfc
        let size = Int(max(file.vocab.values.max() ?? -1, file.addedTokens.map(\.id).max() ?? -1)) + 1
        guard size <= 10_000_000 else { throw fail("token id \(size - 1) is implausibly large") }
        vocabularySize = size
        var text = [String?](repeating: nil, count: size)
        var bytes = [[UInt8]?](repeating: nil, count: size)
        // HF's ByteLevel decoder: a token whose characters are all in the byte alphabet decodes to
        // those bytes, any other token to its own UTF-8.
        for (token, id) in file.vocab {
            text[Int(id)] = token
            bytes[Int(id)] = ByteLevelAlphabet.bytes(of: token) ?? Array(token.utf8)
        }
        for token in file.addedTokens {
            text[Int(token.id)] = token.content
            bytes[Int(token.id)] = ByteLevelAlphabet.bytes(of: token.content) ?? Array(token.content.utf8)
        }
        tokenText = text
        tokenBytes = bytes

        // A byte with no token (NeoX has none for 0xC0, 0xC1, 0xF5–0xFF, which UTF-8 never uses) is
        // dropped, as HF does for a vocabulary without an unknown token.
        let byteIds = ByteLevelAlphabet.characterForByte.map { file.vocab[String($0)] ?? -1 }
        guard byteIds.contains(where: { $0 >= 0 }) else {
            throw fail("the vocabulary has no byte-level tokens (such as \"Ġ\" for a space); not a byte-level BPE vocabulary")
        }
        self.byteIds = byteIds

        var mergeIds: [(left: Int32, right: Int32, merged: Int32)] = []
        mergeIds.reserveCapacity(file.merges.count)
        for (index, (a, b)) in file.merges.enumerated() {
            guard let left = file.vocab[a], let right = file.vocab[b], let merged = file.vocab[a + b] else {
                let missing = file.vocab[a] == nil ? a : file.vocab[b] == nil ? b : a + b
                throw fail("merge \(index + 1) \"\(a) \(b)\": \"\(missing)\" is not in the vocabulary")
            }
            mergeIds.append((left, right, merged))
        }
        merges = MergeTable(mergeIds)

        let nfc = NFC()
        rawAddedTokens = AddedTokenMatcher(file.addedTokens.filter { !$0.normalized }.map { (Array($0.content.utf8), $0.id) })
        normalizedAddedTokens = AddedTokenMatcher(file.addedTokens.filter(\.normalized).map {
            (Array((file.nfc ? nfc.normalize($0.content) : $0.content).utf8), $0.id)
        })
        var addedIds: [String: Int32] = [:]
        for token in file.addedTokens where addedIds[token.content] == nil { addedIds[token.content] = token.id }
        self.addedIds = addedIds

        if file.ignoreMerges {
            var words: [[UInt8]: Int32] = [:]
            for (token, id) in file.vocab { if let b = ByteLevelAlphabet.bytes(of: token) { words[b] = id } }
            wordIds = words
        } else {
            wordIds = nil
        }
    }

    /// The id of an added token (such as "<|endoftext|>") or vocabulary entry, by its text.
    public func id(of token: String) -> Int32? {
        addedIds[token] ?? tokenText.firstIndex { $0 == token }.map(Int32.init)
    }

    /// The token's text as the file spells it.
    public func text(of id: Int32) -> String? {
        id >= 0 && Int(id) < tokenText.count ? tokenText[Int(id)] : nil
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3)
        var text = text
        text.withUTF8 { buffer in
            rawAddedTokens.split(buffer, 0..<buffer.count) { piece in
                switch piece {
                case .token(let id): out.append(id)
                case .text(let range): encodeNormalizable(buffer, range, into: &out)
                }
            }
        }
        return out
    }

    /// NFC, then the normalised added tokens, then pre-tokens and BPE.
    private func encodeNormalizable(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Int32]) {
        // Below U+0300 (UTF-8 lead bytes under 0xCC) every character is NFC and stays so: skip the work.
        if nfc, buffer[range].contains(where: { $0 >= 0xCC }) {
            var normalized: [UInt8] = []
            normalized.reserveCapacity(range.count + 16)
            normalizer.normalize(buffer, range, into: &normalized)
            normalized.withUnsafeBufferPointer { encodeNormalized($0, 0..<$0.count, into: &out) }
        } else {
            encodeNormalized(buffer, range, into: &out)
        }
    }

    private func encodeNormalized(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Int32]) {
        normalizedAddedTokens.split(buffer, range) { piece in
            switch piece {
            case .token(let id): out.append(id)
            case .text(let range):
                PreTokenizer.split(buffer, range) { wordRange in
                    encodeWord(UnsafeBufferPointer(rebasing: buffer[wordRange]), into: &out)
                }
            }
        }
    }

    private func encodeWord(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if bytes.count == 1 {
            let id = byteIds[Int(bytes[0])]
            if id >= 0 { out.append(id) }
            return
        }
        if let wordIds, let id = wordIds[Array(bytes)] { out.append(id); return }
        guard bytes.count <= Self.cachedWordLength else {
            word.encode(bytes, byteIds: byteIds, merges: merges, into: &out)
            return
        }
        let key = Array(bytes)
        if let ids = cache[key] { out.append(contentsOf: ids); return }
        let start = out.count
        word.encode(bytes, byteIds: byteIds, merges: merges, into: &out)
        if cache.count < Self.cacheCapacity { cache[key] = Array(out[start...]) }
    }

    // MARK: Decoding

    /// The bytes the ids stand for; an id no token has is an error naming it.
    public func decodeBytes(_ ids: [Int32]) throws -> [UInt8] {
        var out: [UInt8] = []
        for (index, id) in ids.enumerated() {
            guard let bytes = bytes(of: id) else {
                throw TokenizerError("error: token id \(id) (item \(index + 1)) is not in the tokenizer \(path) (ids 0..<\(vocabularySize))")
            }
            out.append(contentsOf: bytes)
        }
        return out
    }

    /// The bytes of one token, or nil when no token has this id.
    public func bytes(of id: Int32) -> [UInt8]? {
        id >= 0 && Int(id) < tokenBytes.count ? tokenBytes[Int(id)] : nil
    }

    /// The text, with U+FFFD for each maximal subsequence that is not UTF-8 (as HF decodes).
    public func decode(_ ids: [Int32]) throws -> String {
        String(decoding: try decodeBytes(ids), as: UTF8.self)
    }
}
