/// Decodes ids as they are generated: text is released as soon as it is complete UTF-8, and the
/// bytes of a character still being spelled out are held back. The concatenated outputs equal
/// `Tokenizer.decode` of all the ids.
public struct StreamingDecoder {
    private var pending: [UInt8] = []

    public init() {}

    /// The text that the new bytes complete (possibly empty).
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending.append(contentsOf: bytes)
        let keep = Self.incompleteTailLength(pending)
        let ready = pending.count - keep
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// What is left at the end (an unfinished character decodes to U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many bytes at the end are a proper prefix of a valid UTF-8 sequence, which more bytes could complete.
    static func incompleteTailLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var k = 1
        while k <= min(3, n) {
            let lead = bytes[n - k]
            if lead & 0xC0 == 0x80 { k += 1; continue }          // a continuation byte: look further back
            let needed = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 1
            guard needed > k else { return 0 }
            // The second byte of E0, ED, F0 and F4 sequences has a narrower range.
            if k >= 2 {
                let second = bytes[n - k + 1]
                switch lead {
                case 0xE0: if second < 0xA0 { return 0 }
                case 0xED: if second > 0x9F { return 0 }
                case 0xF0: if second < 0x90 { return 0 }
                case 0xF4: if second > 0x8F { return 0 }
                default: break
                }
            }
            return k
        }
        return 0
    }
}
