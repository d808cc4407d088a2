/// BPE merges by rank: the pair (left id, right id) → (rank, merged id). An open-addressing hash
/// table on the packed pair, because this lookup is the inner loop of encoding.
struct MergeTable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var merged: [Int32]
    private let mask: Int
    private static let empty = UInt64.max

    init(_ merges: [(left: Int32, right: Int32, merged: Int32)]) {
        var capacity = 16
        while capacity < merges.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        keys = [UInt64](repeating: Self.empty, count: capacity)
        ranks = [Int32](repeating: 0, count: capacity)
        merged = [Int32](repeating: 0, count: capacity)
        for (rank, merge) in merges.enumerated() {
            let key = Self.key(merge.left, merge.right)
            var slot = Self.hash(key) & mask
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & mask }
            // A pair listed twice keeps its last rank, as HF's map (collected in order) does.
            keys[slot] = key
            ranks[slot] = Int32(rank)
            merged[slot] = merge.merged
        }
    }

    @inline(__always) private static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }
    @inline(__always) private static func hash(_ key: UInt64) -> Int {
        var x = key &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return Int(truncatingIfNeeded: x)
    }

    /// The rank and merged id of the pair, or nil when the pair never merges.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, merged: Int32)? {
        let key = Self.key(a, b)
        var slot = Self.hash(key) & mask
        while true {
            let k = keys[slot]
            if k == key { return (ranks[slot], merged[slot]) }
            if k == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }
}
