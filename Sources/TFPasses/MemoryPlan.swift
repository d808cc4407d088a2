import Foundation
import TFIR

/// Where every value of a (fused) graph lives: activation buffers assigned by liveness, so a
/// forward pass allocates nothing. Buffers are sized per row (`columns` floats) and hold up to the
/// context's rows. A `columns` view aliases its source at a column offset; a residual epilogue
/// writes in place into its residual operand when nothing reads that operand afterwards.
public struct MemoryPlan: Equatable, Sendable {
    public struct Location: Equatable, Sendable {
        /// Index into `bufferColumns`.
        public var buffer: Int
        /// First column of the value inside its buffer's rows.
        public var columnOffset: Int
    }

    /// Width (floats per row) of each buffer.
    public private(set) var bufferColumns: [Int] = []
    /// The buffer of every float value (token ids live in the caller's array).
    public private(set) var locations: [ValueID: Location] = [:]
    /// Values computed in place into their residual operand's buffer.
    public private(set) var inPlace: Set<ValueID> = []

    /// Bytes of activation buffers for `rows` rows.
    public func activationBytes(rows: Int) -> Int { bufferColumns.reduce(0, +) * rows * MemoryLayout<Float>.size }

    /// Row stride (floats) of a value: the width of the buffer it lives in.
    public func rowStride(of value: ValueID) -> Int { bufferColumns[locations[value]!.buffer] }

    public init(_ graph: Graph) {
        var lastUse: [ValueID: Int] = [:]
        for (i, inst) in graph.instructions.enumerated() {
            for operand in inst.operands { lastUse[operand] = i }
        }
        lastUse[graph.output] = Int.max
        var free: [Int] = []                // buffers nobody holds
        var holders: [Int: Int] = [:]       // buffer → number of live values in it
        func release(_ value: ValueID) {
            guard let location = locations[value] else { return }
            holders[location.buffer, default: 0] -= 1
            if holders[location.buffer] == 0 { free.append(location.buffer) }
        }
        func allocate(columns: Int) -> Int {
            // Best fit among the free buffers; a new buffer when none is wide enough.
            if let best = free.filter({ bufferColumns[$0] >= columns }).min(by: { bufferColumns[$0] < bufferColumns[$1] }) {
                free.removeAll { $0 == best }
                return best
            }
            bufferColumns.append(columns)
            return bufferColumns.count - 1
        }

        for (i, inst) in graph.instructions.enumerated() {
            guard inst.type.element == .f32, let columns = inst.type.columns else { continue }
            switch inst.op {
            case .columns(let start, _):
                let source = locations[inst.operands[0]]!
                locations[inst.result] = Location(buffer: source.buffer, columnOffset: source.columnOffset + start)
            case .fusedPattention(let f) where f.residual && lastUse[inst.operands[1]] == i
                    && locations[inst.operands[1]]?.columnOffset == 0
                    && bufferColumns[locations[inst.operands[1]]!.buffer] == columns:
                locations[inst.result] = locations[inst.operands[1]]
                inPlace.insert(inst.result)
            default:
                locations[inst.result] = Location(buffer: allocate(columns: columns), columnOffset: 0)
            }
            holders[locations[inst.result]!.buffer, default: 0] += 1
            // Values read for the last time here are dead after this instruction.
            for operand in Set(inst.operands) where lastUse[operand] == i { release(operand) }
            if lastUse[inst.result] == nil { release(inst.result) }
        }
    }
}

public extension MemoryPlan {
    /// The plan's text form (part of `tfc compile --emit plan`).
    func text(for graph: Graph, rows: Int) -> String {
        var out = "memory plan: \(bufferColumns.count) activation buffers, peak \(formatBytes(activationBytes(rows: rows))) at T = \(rows)\n"
        for (i, columns) in bufferColumns.enumerated() {
            out += "  buffer \(i): [T, \(columns)] f32\n"
        }
        for inst in graph.instructions {
            guard let location = locations[inst.result] else { continue }
            var line = "  \(inst.result) \(inst.op.name) → buffer \(location.buffer)"
            if location.columnOffset > 0 { line += " columns +\(location.columnOffset)" }
            if inPlace.contains(inst.result) { line += " (in place)" }
            out += line + "\n"
        }
        return out
    }
}

/// 1536 → "1.5 KiB".
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}
