/// GPT-2's byte↔unicode map: every byte becomes a printable character so BPE vocabularies can be
/// stored as text. Printable Latin-1 bytes map to themselves, the other 68 to U+0100 upwards in order.
public enum ByteLevelAlphabet {
    /// The character standing for each byte.
    public static let characterForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var extra: UInt32 = 0
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(256 + extra)!
                extra += 1
            }
        }
        return table
    }()

    /// The byte each of the 256 characters stands for.
    public static let byteForCharacter: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (byte, scalar) in characterForByte.enumerated() { map[scalar] = UInt8(byte) }
        return map
    }()

    /// The bytes a vocabulary entry spells, or nil when one of its characters is outside the map.
    public static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byteForCharacter[scalar] else { return nil }
            out.append(byte)
        }
        return out
    }
}
