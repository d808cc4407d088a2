import TFIR

/// Small editing operations the rewrites are built from.
extension Graph {
    /// Makes every reader of `old` (and the output) read `new` instead.
    mutating func replaceUses(of old: ValueID, with new: ValueID) {
        for i in instructions.indices {
            instructions[i].operands = instructions[i].operands.map { $0 == old ? new : $0 }
        }
        if output == old { output = new }
    }

    /// The instructions that read `value`, by index.
    func users(of value: ValueID) -> [Int] {
        instructions.indices.filter { instructions[$0].operands.contains(value) }
    }

    func index(of value: ValueID) -> Int? {
        instructions.firstIndex { $0.result == value }
    }

    /// Reorders instructions so each comes after its operands, keeping the original order where
    /// it is already valid (rewrites may place a fused op before an input it now reads): always the
    /// first instruction, in the current order, whose operands are all placed. A heap of ready
    /// indices keeps that O(n log n) — a scan per instruction made the passes quadratic in layers.
    mutating func restoreTopologicalOrder() {
        let producer = Dictionary(instructions.enumerated().map { ($1.result, $0) }, uniquingKeysWith: { first, _ in first })
        var waiting = [Int](repeating: 0, count: instructions.count)   // operands not yet placed
        var dependents = [[Int]](repeating: [], count: instructions.count)
        var ready = IndexHeap()
        for (i, inst) in instructions.enumerated() {
            for operand in inst.operands {
                // An operand nothing produces is never placed (as before: such a graph fails the verifier).
                waiting[i] += 1
                if let p = producer[operand] { dependents[p].append(i) }
            }
            if waiting[i] == 0 { ready.push(i) }
        }
        var placed = [Bool](repeating: false, count: instructions.count)
        var ordered: [Instruction] = []
        ordered.reserveCapacity(instructions.count)
        var firstUnplaced = 0
        while ordered.count < instructions.count {
            let i: Int
            if let next = ready.pop() {
                i = next
            } else {
                // Nothing is ready (a cycle or an undefined operand): take the first one left.
                while placed[firstUnplaced] { firstUnplaced += 1 }
                i = firstUnplaced
            }
            if placed[i] { continue }
            placed[i] = true
            ordered.append(instructions[i])
            for d in dependents[i] {
                waiting[d] -= 1
                if waiting[d] == 0 && !placed[d] { ready.push(d) }
            }
        }
        instructions = ordered
    }
}

/// Where each value is produced and which instructions read it, kept up to date as a pass
/// rewrites, so finding a producer or redirecting readers costs O(1) per rewrite rather than a scan
/// of the whole graph. Valid while the pass edits instructions in place (no insertion or removal).
struct UseIndex {
    private(set) var producer: [ValueID: Int] = [:]
    /// Indices of the instructions reading each value, once per operand position.
    private var readers: [ValueID: [Int]] = [:]

    init(_ graph: Graph) {
        for (i, inst) in graph.instructions.enumerated() {
            if producer[inst.result] == nil { producer[inst.result] = i }
            for operand in inst.operands { readers[operand, default: []].append(i) }
        }
    }

    /// How many times `value` is read, the graph's output counting as one (as `Graph.useCounts`).
    func uses(of value: ValueID, in graph: Graph) -> Int {
        (readers[value]?.count ?? 0) + (graph.output == value ? 1 : 0)
    }

    /// Records that instruction `index` now also reads `value`.
    mutating func addReader(_ index: Int, of value: ValueID) { readers[value, default: []].append(index) }

    /// Makes every reader of `old` (and the output) read `new` instead.
    mutating func replaceUses(of old: ValueID, with new: ValueID, in graph: inout Graph) {
        guard old != new else { return }
        let moved = readers.removeValue(forKey: old) ?? []
        for i in Set(moved) {
            graph.instructions[i].operands = graph.instructions[i].operands.map { $0 == old ? new : $0 }
        }
        readers[new, default: []] += moved
        if graph.output == old { graph.output = new }
    }
}

/// A min-heap of instruction indices.
struct IndexHeap {
    private var items: [Int] = []

    mutating func push(_ value: Int) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return top }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left] < items[smallest] { smallest = left }
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// Removes instructions whose value nobody reads.
public struct DeadCodeElimination: Pass {
    public init() {}
    public var name: String { "dead-code-elimination" }

    public func run(_ graph: Graph) throws -> Graph {
        var g = graph
        var live: Set<ValueID> = [g.output]
        for inst in g.instructions.reversed() where live.contains(inst.result) {
            live.formUnion(inst.operands)
        }
        // The token input always stays: it is the graph's signature.
        g.instructions.removeAll { !live.contains($0.result) && $0.op != .tokens }
        return g
    }
}
