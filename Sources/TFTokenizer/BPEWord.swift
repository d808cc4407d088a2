/// Byte-pair encoding of one pre-token, the way HF `tokenizers` does it (models/bpe/word.rs): the
/// bytes start as single-byte symbols in a linked list; a min-heap of candidate merges ordered by
/// (rank, position) is popped, stale entries skipped, and each merge pushes the two new pairs it
/// forms. O(n log n) in the word's length, so a 100,000-byte word is no slower per byte than "the".
struct BPEWord {
    private var ids: [Int32] = []
    private var prev: [Int32] = []
    private var next: [Int32] = []
    private var alive: [Bool] = []
    /// Heap entries packed as rank << 32 | position: the smallest is the next merge.
    private var heap: [UInt64] = []

    /// The token ids of `bytes`, appended to `out`.
    mutating func encode(_ bytes: UnsafeBufferPointer<UInt8>, byteIds: [Int32], merges: MergeTable, into out: inout [Int32]) {
        ids.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        alive.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        // Bytes without a token are dropped (HF, with no unknown token).
        for byte in bytes where byteIds[Int(byte)] >= 0 { ids.append(byteIds[Int(byte)]) }
        let n = ids.count
        if n == 0 { return }
        for i in 0..<n {
            prev.append(Int32(i - 1))
            next.append(i + 1 < n ? Int32(i + 1) : -1)
            alive.append(true)
        }
        for i in 0..<(n - 1) {
            if let m = merges.lookup(ids[i], ids[i + 1]) { push(m.rank, i) }
        }
        while !heap.isEmpty {
            let top = pop()
            let rank = Int32(truncatingIfNeeded: top >> 32)
            let pos = Int(UInt32(truncatingIfNeeded: top))
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = Int(next[pos])
            // An entry is stale when either side has changed since it was pushed.
            guard let m = merges.lookup(ids[pos], ids[right]), m.rank == rank else { continue }
            ids[pos] = m.merged
            alive[right] = false
            let after = next[right]
            next[pos] = after
            if after >= 0 { prev[Int(after)] = Int32(pos) }
            let before = prev[pos]
            if before >= 0, let p = merges.lookup(ids[Int(before)], ids[pos]) { push(p.rank, Int(before)) }
            if after >= 0, let p = merges.lookup(ids[pos], ids[Int(after)]) { push(p.rank, pos) }
        }
        var i = 0
        while i >= 0 { out.append(ids[i]); i = Int(next[i]) }
    }

    private mutating func push(_ rank: Int32, _ position: Int) {
        heap.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(position))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent] <= heap[child] { break }
            heap.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func pop() -> UInt64 {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            let count = heap.count
            while true {
                let left = 2 * parent + 1
                if left >= count { break }
                var smallest = left
                if left + 1 < count && heap[left + 1] < heap[left] { smallest = left + 1 }
                if heap[parent] <= heap[smallest] { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
