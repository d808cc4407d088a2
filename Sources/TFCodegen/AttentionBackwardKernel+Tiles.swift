import CLLVM

/// Register tiling of the blocked attention backward, from the vector target's lanes `L`.
/// Positions are padded to whole score tiles, so every tile below is full: no masking inside
/// the FMA loops, only where rows are added into the outputs.
struct AttentionBackwardTiling {
    let lanes: Int
    /// Accumulators a product tile may keep (12 of AVX2's 16 registers, 24 of AVX-512's 32: the
    /// rest hold the depth step's B vectors and the broadcast).
    let accumulators: Int

    init(_ vector: VectorTarget) {
        lanes = vector.lanes
        accumulators = vector.registers * 3 / 4
    }

    /// Query rows per register tile of the score and dq tiles.
    var rows: Int { lanes / 2 }
    /// Vectors of keys per score tile: `rows × scoreVectors` accumulators (8 on AVX2, 16 on
    /// AVX-512; 3 vectors measured slower at mid's T = 96: more work on the diagonal tiles).
    var scoreVectors: Int { 2 }
    /// Keys per score tile, and the unit positions are padded to.
    var keyTile: Int { scoreVectors * lanes }
    /// Keys per register tile of the dk and dv products (divides `keyTile`).
    var keyRows: Int { lanes / 2 }
    /// Query rows whose probabilities and their gradients are kept in scratch at once
    /// (`queryBlock × T` floats each).
    var queryBlock: Int { 8 * keyTile }

    /// `vectors` vectors of a head_dim row split into as few, as even chunks as the accumulators
    /// allow for a tile of `rows` rows.
    func chunks(vectors: Int, rows: Int) -> [Range<Int>] {
        let most = max(1, accumulators / rows)
        let count = (vectors + most - 1) / most
        return (0..<count).map { c in (c * vectors / count)..<((c + 1) * vectors / count) }
    }
}

extension IRGen {
    /// One register tile of a small product, `acc[r][c] = Σ_{t ∈ lo ..< hi} A(r, t) · B(t, c)` for
    /// `r < rows` and the vectors `c` of `b`: A(r, t) is the float at `a + r·aRow + t·aDepth`
    /// (broadcast), B(t, c) the vector at `b[c] + t·bDepth`. Returns `acc` row by row.
    func productTile(rows: Int, a: LLVMValueRef, aRow: LLVMValueRef, aDepth: LLVMValueRef, b: [LLVMValueRef], bDepth: LLVMValueRef,
                     from lo: LLVMValueRef, to hi: LLVMValueRef) -> [[LLVMValueRef]] {
        let aRows = (0..<rows).map { gep(a, mul(aRow, i64($0))) }
        let n = b.count
        let acc = loop(lo, hi, carried: [LLVMValueRef](repeating: vzero, count: rows * n)) { t, acc in
            let bv = b.map { loadV($0, mul(t, bDepth)) }
            var out = acc
            for r in 0..<rows {
                let av = broadcastLoad(aRows[r], mul(t, aDepth))
                for c in 0..<n { out[r * n + c] = fma(av, bv[c], acc[r * n + c]) }
            }
            return out
        }
        return (0..<rows).map { Array(acc[$0 * n ..< ($0 + 1) * n]) }
    }
}
