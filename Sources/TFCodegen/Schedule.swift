/// How a generated GEMM-shaped kernel is tiled and parallelised (the "schedule", separate
/// from what the kernel computes). Chosen per shape by `GemmSchedule.choose`, printable,
/// and overridable (`GemmSchedule(parsing: "mr=4 nr=24 kc=384")`).
///
/// - `mr` x `nr`: the register tile (rows x columns) of the micro-kernel; `nr` is a multiple
///   of the target's vector width (8 for AVX2, 16 for AVX-512). Accumulators `mr·nr/width` plus
///   `nr/width` B vectors plus one broadcast must fit the target's registers (AVX2, 16 `ymm`:
///   6x16, 4x24 and 8x8 do; AVX-512, 32 `zmm`: 14x32, 9x48, 6x64 do). `choose` picks the tile by
///   a cost model (`GemmTileCost`): 6x16 for AVX2, 12x32 for AVX-512.
/// - `panel`: the width of the packed weight panels when it differs from `nr` (0: `nr`), a
///   multiple of `nr`; the micro-kernel then reads its `nr` columns out of each wider panel. A
///   compiled program's AVX2 variant reads the AVX-512 variants' 32-column panels this way, so
///   one weights file serves both with each ISA's best tile.
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
    /// (`kc·panelWidth·4` bytes: the same columns, one depth block on).
    public var prefetch: Int
    /// Packed panel width in columns, 0 for `nr` (see `panelWidth`).
    public var panel: Int = 0
    /// Columns per packed weight panel: `panel`, or `nr` when that is 0.
    public var panelWidth: Int { panel == 0 ? nr : panel }

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

    /// Checks the constraints for code written against `vector`; returns a description of the
    /// first violation.
    public func validate(for vector: VectorTarget) -> String? {
        let w = vector.lanes
        if nr <= 0 || nr % w != 0 { return "nr must be a positive multiple of \(w) for \(vector.name) (got \(nr))" }
        if mr < 1 || mr > 16 { return "mr must be in 1...16 (got \(mr))" }
        if mr * (nr / w) + nr / w + 1 > vector.registers {
            return "an \(mr)x\(nr) tile needs more than the \(vector.registers) \(vector.isa == .avx512 ? "zmm" : "ymm") registers"
        }
        if kc < 1 { return "kc must be positive" }
        if rowBlock < mr || rowBlock % mr != 0 { return "rowBlock must be a positive multiple of mr (\(mr)), got \(rowBlock)" }
        if unroll < 1 || unroll & (unroll - 1) != 0 { return "unroll must be a power of two" }
        if columnTasks < 1 { return "columnTasks must be positive" }
        if smallRows < 0 { return "smallRows must be >= 0" }
        if panel < 0 || panel % nr != 0 { return "panel must be 0 or a positive multiple of nr (\(nr)), got \(panel)" }
        return nil
    }

    /// The default schedule for a GEMM of depth `k` into `n` columns on `vector` (for the fused
    /// Pattention kernel: `k` = d_in for the scores and `n` = the parameter-token count): the
    /// register tile the cost model ranks first, row blocks of about 48 rows.
    public static func choose(k: Int, n: Int, for vector: VectorTarget) -> GemmSchedule {
        var s = GemmSchedule()
        let tile = GemmTileCost.best(n: n, for: vector)
        s.mr = tile.mr
        s.nr = tile.nr
        // Depth blocks of about 256 floats (a 16 KiB weight micro-panel in L1), evened out so
        // the last block is not tiny.
        let blocks = max(1, (k + 255) / 256)
        s.kc = (k + blocks - 1) / blocks
        s.rowBlock = max(1, 48 / s.mr) * s.mr
        return s
    }

    public var description: String {
        "mr=\(mr) nr=\(nr) kc=\(kc) rowBlock=\(rowBlock) smallRows=\(smallRows) unroll=\(unroll) columnTasks=\(columnTasks)" + (loopOrder == .automatic ? "" : " loop=\(loopOrder.rawValue)") + (prefetch == -1 ? "" : " prefetch=\(prefetch)") + (panel == 0 ? "" : " panel=\(panel)")
    }

    /// Parses `key=value` pairs separated by spaces or commas, starting from `base`, and checks
    /// them for `vector` (keys: mr, nr, kc, rowBlock, smallRows, unroll, columnTasks, prefetch, panel, and loop=automatic|panelsOuter|depthOuter).
    public init(parsing text: String, base: GemmSchedule = GemmSchedule(), for vector: VectorTarget) throws {
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
            case "panel": panel = v
            default: throw CodegenError("unknown schedule key '\(kv[0])' (mr, nr, kc, rowBlock, smallRows, unroll, columnTasks, prefetch, panel, loop)")
            }
        }
        // A new mr without a rowBlock keeps the rows per block near the base's, in whole tiles.
        let keys = text.split(whereSeparator: { $0 == " " || $0 == "," }).map { $0.split(separator: "=").first.map(String.init) ?? "" }
        if keys.contains("mr") && !keys.contains("rowBlock") && !keys.contains("rows") { rowBlock = max(1, base.rowBlock / mr) * mr }
        if let problem = validate(for: vector) { throw CodegenError("schedule: \(problem)") }
    }
}

/// The cost model that ranks register tiles (`mr` x `nr`) for a target: per k step a tile issues
/// `mr·nv` FMAs (`nv = nr / lanes`) and `mr + nv` loads (broadcasts of A, vectors of B). A tile
/// that issues at least as many FMAs as loads keeps the FMA pipes busy (as many vector load
/// ports as FMA pipes: Zen 3/4, Skylake and later; Zen 4 runs a 512-bit op in both 256-bit
/// pipes, so the ratio holds for zmm too). Ranked by that issue rate, then the fraction of
/// computed columns that are real (the last panel is zero-padded to `nr`), then the reuse
/// `mr·nr / (mr + nr)` (elements of C per element of A and B read: fewer L1/L2 re-reads).
public struct GemmTileCost: CustomStringConvertible, Sendable {
    public let mr: Int
    public let nr: Int
    /// Issued FMAs per cycle relative to the target's peak (1: FMA-bound).
    public let issue: Double
    /// Valid columns / computed columns for `n` columns.
    public let columnUse: Double
    /// `mr·nr / (mr + nr)`.
    public let reuse: Double

    public init(mr: Int, nr: Int, n: Int, for vector: VectorTarget) {
        self.mr = mr
        self.nr = nr
        let nv = Double(nr / vector.lanes)
        let fmas = Double(mr) * nv, loads = Double(mr) + nv
        issue = min(1, fmas / loads)
        let panels = (n + nr - 1) / nr
        columnUse = Double(n) / Double(panels * nr)
        reuse = Double(mr * nr) / Double(mr + nr)
    }

    /// Every tile that fits `vector.tileRegisters` (`mr` up to 16, `nr` up to 4 vectors).
    public static func candidates(n: Int, for vector: VectorTarget) -> [GemmTileCost] {
        var all: [GemmTileCost] = []
        for nv in 1...4 {
            for mr in 1...16 where mr * nv + nv + 1 <= vector.tileRegisters {
                all.append(GemmTileCost(mr: mr, nr: nv * vector.lanes, n: n, for: vector))
            }
        }
        return all
    }

    /// The best tile for `n` columns (ties: the narrower panel).
    public static func best(n: Int, for vector: VectorTarget) -> GemmTileCost {
        candidates(n: n, for: vector).max { a, b in
            if a.issue != b.issue { return a.issue < b.issue }
            if abs(a.columnUse - b.columnUse) > 1e-9 { return a.columnUse < b.columnUse }
            if abs(a.reuse - b.reuse) > 1e-9 { return a.reuse < b.reuse }
            return a.nr > b.nr
        }!
    }

    public var description: String {
        String(format: "tile %dx%d: issue %.0f%%, columns used %.1f%%, reuse %.2f", mr, nr, issue * 100, columnUse * 100, reuse)
    }
}
