/// How a generated GEMM-shaped kernel is tiled and parallelised (the "schedule", separate
/// from what the kernel computes). Chosen per shape by `GemmSchedule.choose`, printable,
/// and overridable (`GemmSchedule(parsing: "mr=4 nr=24 kc=384")`).
///
/// - `mr` x `nr`: the register tile (rows x columns) of the micro-kernel; `nr` is a multiple
///   of the vector width 8. Accumulators `mr·nr/8` plus `nr/8` B vectors plus one broadcast
///   must fit the 16 `ymm` registers (6x16, 4x24 and 8x8 do; 6x16 is the default).
/// - `kc`: the depth of a cache block (a `kc x nr` weight micro-panel stays in L1 while it is
///   swept across the row tiles).
/// - `rowBlock`: rows per parallel work item in the row-parallel path (a multiple of `mr`):
///   the fused Pattention kernel keeps one block's packed rows and scores in per-thread scratch.
/// - `smallRows`: inputs with at most this many rows take the column-parallel path (threads
///   split the weight panels: the decode-time GEMV case), when more than one thread runs.
/// - `unroll`: unrolling of the micro-kernel's k loop.
/// - `columnTasks`: work items the column-parallel path aims for (panels are grouped).
public struct GemmSchedule: Hashable, CustomStringConvertible, Sendable {
    public var mr: Int
    public var nr: Int
    public var kc: Int
    public var rowBlock: Int
    public var smallRows: Int
    public var unroll: Int
    public var columnTasks: Int
    /// Loop nest of the cache-blocked driver (see `LoopOrder`).
    public var loopOrder: LoopOrder
    /// Software prefetch of the weight stream, in bytes ahead of the micro-kernel's current
    /// position (one `prefetcht0` per k step); 0 turns it off, -1 means "the next micro-panel"
    /// (`kc·nr·4` bytes).
    public var prefetch: Int

    /// `panelsOuter`: panels → depth blocks → row tiles (C strips finish in L1; needs the
    /// row block of A in L2). `depthOuter`: depth blocks → panels → row tiles (a `rows x kc`
    /// slice of A stays in L2; C is revisited once per depth block). `automatic` picks
    /// `panelsOuter` when `rowBlock·k` floats fit in 1 MiB.
    public enum LoopOrder: String, Hashable, Sendable { case automatic, panelsOuter, depthOuter }

    public init(mr: Int = 6, nr: Int = 16, kc: Int = 256, rowBlock: Int = 48, smallRows: Int = 32, unroll: Int = 4, columnTasks: Int = 16,
                loopOrder: LoopOrder = .automatic, prefetch: Int = -1) {
        self.mr = mr
        self.nr = nr
        self.kc = kc
        self.rowBlock = rowBlock
        self.smallRows = smallRows
        self.unroll = unroll
        self.columnTasks = columnTasks
        self.loopOrder = loopOrder
        self.prefetch = prefetch
    }

    /// Checks the constraints; returns a description of the first violation.
    public func validate() -> String? {
        if nr <= 0 || nr % 8 != 0 { return "nr must be a positive multiple of 8 (got \(nr))" }
        if mr < 1 || mr > 16 { return "mr must be in 1...16 (got \(mr))" }
        if mr * (nr / 8) + nr / 8 + 1 > 16 { return "an \(mr)x\(nr) tile needs more than the 16 ymm registers" }
        if kc < 1 { return "kc must be positive" }
        if rowBlock < mr || rowBlock % mr != 0 { return "rowBlock must be a positive multiple of mr (\(mr)), got \(rowBlock)" }
        if unroll < 1 || unroll & (unroll - 1) != 0 { return "unroll must be a power of two" }
        if columnTasks < 1 { return "columnTasks must be positive" }
        if smallRows < 0 { return "smallRows must be >= 0" }
        return nil
    }

    /// The default schedule for a GEMM of depth `k` into `n` columns (for the fused
    /// Pattention kernel: `k` = d_in for the scores and `n` = the parameter-token count).
    public static func choose(k: Int, n: Int) -> GemmSchedule {
        var s = GemmSchedule()
        // Depth blocks of about 256 floats (a 16 KiB weight micro-panel in L1), evened out so
        // the last block is not tiny.
        let blocks = max(1, (k + 255) / 256)
        s.kc = (k + blocks - 1) / blocks
        s.rowBlock = 48
        return s
    }

    public var description: String {
        "mr=\(mr) nr=\(nr) kc=\(kc) rowBlock=\(rowBlock) smallRows=\(smallRows) unroll=\(unroll) columnTasks=\(columnTasks)" + (loopOrder == .automatic ? "" : " loop=\(loopOrder.rawValue)") + (prefetch == -1 ? "" : " prefetch=\(prefetch)")
    }

    /// Parses `key=value` pairs separated by spaces or commas, starting from `base`
    /// (keys: mr, nr, kc, rowBlock, smallRows, unroll, columnTasks, prefetch, and loop=automatic|panelsOuter|depthOuter).
    public init(parsing text: String, base: GemmSchedule = GemmSchedule()) throws {
        self = base
        for item in text.split(whereSeparator: { $0 == " " || $0 == "," }) {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { throw CodegenError("schedule item '\(item)' is not key=value") }
            if kv[0] == "loop" {
                guard let order = LoopOrder(rawValue: String(kv[1])) else { throw CodegenError("loop must be automatic, panelsOuter or depthOuter") }
                loopOrder = order
                continue
            }
            guard let v = Int(kv[1]) else { throw CodegenError("schedule item '\(item)' is not key=integer") }
            switch kv[0] {
            case "mr": mr = v
            case "nr": nr = v
            case "kc": kc = v
            case "rowBlock", "rows": rowBlock = v
            case "smallRows": smallRows = v
            case "unroll": unroll = v
            case "columnTasks", "tasks": columnTasks = v
            case "prefetch": prefetch = v
            default: throw CodegenError("unknown schedule key '\(kv[0])' (mr, nr, kc, rowBlock, smallRows, unroll, columnTasks, prefetch, loop)")
            }
        }
        if let problem = validate() { throw CodegenError("schedule: \(problem)") }
    }
}
