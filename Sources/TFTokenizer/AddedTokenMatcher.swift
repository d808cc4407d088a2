/// Finds added tokens in text the way HF's added vocabulary does (an Aho-Corasick automaton with
/// leftmost-longest matching): the earliest match wins, and among matches starting there the longest.
/// A byte trie walked from each position; the walk is bounded by the longest token.
struct AddedTokenMatcher {
    private var children: [[UInt8: Int32]] = [[:]]
    private var tokenAt: [Int32] = [-1]
    /// Whether any token starts with this byte: most positions are rejected by one load.
    private var startsToken = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { tokenAt.count == 1 && children[0].isEmpty }

    init(_ tokens: [(content: [UInt8], id: Int32)]) {
        for (content, id) in tokens where !content.isEmpty {
            startsToken[Int(content[0])] = true
            var node = 0
            for byte in content {
                if let child = children[node][byte] {
                    node = Int(child)
                } else {
                    children.append([:])
                    tokenAt.append(-1)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            // Two tokens with the same content: the first keeps it (HF's trie is built in id order).
            if tokenAt[node] < 0 { tokenAt[node] = id }
        }
    }

    /// A piece of text between matches, or a matched token.
    enum Piece: Equatable { case text(Range<Int>), token(Int32) }

    /// Cuts `text[range]` into text pieces and tokens, in order (empty text pieces are left out).
    func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ piece: (Piece) -> Void) {
        if isEmpty { if !range.isEmpty { piece(.text(range)) }; return }
        var textStart = range.lowerBound
        var i = range.lowerBound
        while i < range.upperBound {
            guard startsToken[Int(text[i])] else { i += 1; continue }
            var node = 0, j = i
            var bestEnd = -1, bestId: Int32 = -1
            while j < range.upperBound, let child = children[node][text[j]] {
                node = Int(child)
                j += 1
                if tokenAt[node] >= 0 { bestEnd = j; bestId = tokenAt[node] }
            }
            if bestEnd < 0 { i += 1; continue }
            if textStart < i { piece(.text(textStart..<i)) }
            piece(.token(bestId))
            i = bestEnd
            textStart = bestEnd
        }
        if textStart < range.upperBound { piece(.text(textStart..<range.upperBound)) }
    }
}
