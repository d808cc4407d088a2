import TFIR

/// The executor's ops on `Matrix` values, each a thin wrapper over `NaiveKernels`.
extension NaiveExecutor {
    /// `x · wᵀ` with `w` of shape `[rows, x.columns]`.
    func matmulTransposed(_ x: Matrix, _ w: UnsafeBufferPointer<Float>, rows n: Int) -> Matrix {
        var out = Matrix(rows: x.rows, columns: n)
        x.data.withUnsafeBufferPointer { xp in
            out.data.withUnsafeMutableBufferPointer { op in
                NaiveKernels.sgemmTransposed(xp.baseAddress!, rows: x.rows, inner: x.columns, w.baseAddress!, columns: n, into: op.baseAddress!)
            }
        }
        return out
    }

    func layerNorm(_ x: Matrix, _ ln: LayerNormOp) -> Matrix {
        var out = x
        let weight = ln.affine.map { weights($0.weight).baseAddress! }
        let bias = ln.affine.map { weights($0.bias).baseAddress! }
        x.data.withUnsafeBufferPointer { xp in
            out.data.withUnsafeMutableBufferPointer { op in
                NaiveKernels.layerNorm(xp.baseAddress!, into: op.baseAddress!, rows: x.rows, width: x.columns, eps: ln.eps, weight: weight, bias: bias)
            }
        }
        return out
    }

    /// `Θ(X·Kᵀ)·V`: two sgemm calls around a separate pass over the whole `[T, n]` score matrix.
    func pattention(_ x: Matrix, _ p: PattentionOp) -> Matrix {
        var out = Matrix(rows: x.rows, columns: p.outFeatures)
        var scores = [Float](repeating: 0, count: x.rows * p.tokens)
        x.data.withUnsafeBufferPointer { xp in
            scores.withUnsafeMutableBufferPointer { sp in
                out.data.withUnsafeMutableBufferPointer { op in
                    NaiveKernels.pattention(xp.baseAddress!, rows: x.rows, p, key: weights(p.keyName).baseAddress!,
                                            value: weights(p.valueName).baseAddress!, scores: sp.baseAddress!, into: op.baseAddress!)
                }
            }
        }
        return out
    }

    func rotary(_ x: Matrix, _ r: RotaryOp, firstPosition: Int) -> Matrix {
        var out = x
        out.data.withUnsafeMutableBufferPointer {
            NaiveKernels.rotary($0.baseAddress!, rows: x.rows, width: x.columns, r, firstPosition: firstPosition)
        }
        return out
    }

    /// Appends k, v to this op's cache at the current position and attends the new queries to
    /// every cached key up to their own position (causal) or to all of them.
    func attention(q: Matrix, k computedK: Matrix, v computedV: Matrix, _ a: AttentionOp) -> Matrix {
        var k = computedK, v = computedV
        if let round = keyValueRounding {
            k.data = k.data.map(round)
            v.data = v.data.map(round)
        }
        var out = Matrix(rows: q.rows, columns: q.columns)
        var scores = [Float](repeating: 0, count: q.rows * (position + q.rows))
        let needed = (position + q.rows) * cacheWidths[a.cacheSlot]
        if keyCache[a.cacheSlot].count < needed {
            let more = needed - keyCache[a.cacheSlot].count
            keyCache[a.cacheSlot].append(contentsOf: repeatElement(0, count: more))
            valueCache[a.cacheSlot].append(contentsOf: repeatElement(0, count: more))
        }
        q.data.withUnsafeBufferPointer { qp in k.data.withUnsafeBufferPointer { kp in v.data.withUnsafeBufferPointer { vp in
            keyCache[a.cacheSlot].withUnsafeMutableBufferPointer { keys in valueCache[a.cacheSlot].withUnsafeMutableBufferPointer { values in
                scores.withUnsafeMutableBufferPointer { sp in out.data.withUnsafeMutableBufferPointer { op in
                    NaiveKernels.attention(q: qp.baseAddress!, k: kp.baseAddress!, v: vp.baseAddress!, out: op.baseAddress!,
                                           keys: keys.baseAddress!, values: values.baseAddress!, scores: sp.baseAddress!,
                                           rows: q.rows, position: position, width: q.columns, a)
                } }
            } }
        } } }
        return out
    }
}
