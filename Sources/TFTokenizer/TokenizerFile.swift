import Foundation

/// The parts of a Hugging Face `tokenizer.json` that a byte-level BPE tokenizer of the GPT-2 family
/// (GPT-2, GPT-NeoX, Pythia) uses, read and checked. A file of another kind (WordPiece, Unigram,
/// another normalizer or pre-tokenizer) is refused with an error naming what it has.
struct TokenizerFile {
    struct AddedToken { var id: Int32; var content: String; var special: Bool; var normalized: Bool }

    var vocab: [String: Int32]
    /// (left, right) token strings in rank order.
    var merges: [(String, String)]
    var addedTokens: [AddedToken]
    var nfc: Bool
    var ignoreMerges: Bool

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw TokenizerError("\(path): error: cannot read the tokenizer file\(isDirectory.boolValue ? " (it is a directory)" : "")")
            }
            throw TokenizerError("\(path): error: no such tokenizer file")
        }
        try self.init(data: data, path: path)
    }

    init(data: Data, path: String) throws {
        func fail(_ what: String) -> TokenizerError { TokenizerError("\(path): error: \(what)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a tokenizer.json (not a JSON object)")
        }
        func typeName(_ value: Any?) -> String? {
            guard let object = value as? [String: Any] else { return nil }
            return object["type"] as? String
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("not a tokenizer.json (no \"model\" object)") }
        let modelType = (model["type"] as? String) ?? (model["merges"] != nil ? "BPE" : "untyped")
        guard modelType == "BPE" else {
            throw fail("the model is \(modelType); tfc reads byte-level BPE tokenizers (GPT-2, GPT-NeoX, Pythia)")
        }
        // Normalizer: none or NFC.
        let normalizer = root["normalizer"]
        if normalizer == nil || normalizer is NSNull {
            nfc = false
        } else if typeName(normalizer) == "NFC" {
            nfc = true
        } else {
            throw fail("the normalizer is \(typeName(normalizer) ?? "not an object"); tfc reads tokenizers with no normalizer or NFC")
        }
        // Pre-tokenizer: ByteLevel with GPT-2's pattern and no prefix space.
        let pre = root["pre_tokenizer"] as? [String: Any]
        guard let pre, pre["type"] as? String == "ByteLevel" else {
            throw fail("the pre-tokenizer is \(typeName(root["pre_tokenizer"]) ?? "missing"); tfc reads byte-level BPE tokenizers (pre-tokenizer ByteLevel)")
        }
        if pre["add_prefix_space"] as? Bool == true {
            throw fail("the ByteLevel pre-tokenizer has add_prefix_space = true, which tfc does not support")
        }
        if pre["use_regex"] as? Bool == false {
            throw fail("the ByteLevel pre-tokenizer has use_regex = false, which tfc does not support")
        }
        if let decoder = root["decoder"], !(decoder is NSNull), typeName(decoder) != "ByteLevel" {
            throw fail("the decoder is \(typeName(decoder) ?? "not an object"); tfc reads byte-level BPE tokenizers (decoder ByteLevel)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty { throw fail("the BPE model has \(key) \"\(value)\", which tfc does not support") }
        }
        if let dropout = model["dropout"] as? Double, dropout > 0 { throw fail("the BPE model has dropout \(dropout), which tfc does not support") }
        if model["byte_fallback"] as? Bool == true { throw fail("the BPE model has byte_fallback = true, which tfc does not support") }
        ignoreMerges = model["ignore_merges"] as? Bool ?? false

        guard let rawVocab = model["vocab"] as? [String: Any] else { throw fail("the BPE model has no \"vocab\" object") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(rawVocab.count)
        for (token, value) in rawVocab {
            guard let number = value as? NSNumber, let id = Int32(exactly: number.doubleValue), id >= 0 else {
                throw fail("vocab entry \"\(token)\" has id \(value), not a non-negative integer")
            }
            vocab[token] = id
        }
        self.vocab = vocab

        guard let rawMerges = model["merges"] as? [Any] else { throw fail("the BPE model has no \"merges\" list") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(rawMerges.count)
        for (index, entry) in rawMerges.enumerated() {
            // Two spellings: "a b" (older files) and ["a", "b"].
            if let line = entry as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(index + 1) \"\(line)\" is not two tokens separated by one space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw fail("merge \(index + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        self.merges = merges

        var added: [AddedToken] = []
        for (index, entry) in ((root["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let token = entry as? [String: Any], let content = token["content"] as? String,
                  let number = token["id"] as? NSNumber, let id = Int32(exactly: number.doubleValue), id >= 0 else {
                throw fail("added token \(index + 1) lacks a string \"content\" or an integer \"id\"")
            }
            for flag in ["single_word", "lstrip", "rstrip"] where token[flag] as? Bool == true {
                throw fail("added token \(id) \"\(content)\" has \(flag) = true, which tfc does not support")
            }
            let special = token["special"] as? Bool ?? false
            added.append(AddedToken(id: id, content: content, special: special, normalized: token["normalized"] as? Bool ?? !special))
        }
        addedTokens = added
    }
}
