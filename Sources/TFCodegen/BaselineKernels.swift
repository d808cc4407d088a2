import CLLVM

/// Kernels that exist only as baselines and probes for `KernelBenchmark`: the "naive"
/// activation pass (scalar, libm `erff`/`expf`, as plain C would be compiled) and a
/// parallel large-array sum that measures read bandwidth.
extension KernelModule {
    /// `args = [S]`, `T` rows of `n` floats (row stride `ld`): Θ in place with scalar code
    /// calling libm — the middle step of the naive Pattention composition.
    @discardableResult
    public func addNaiveActivation(n: Int, ld: Int? = nil, activation: PattentionActivation = .l2NormGelu, tau: Float) -> String {
        let ld = ld ?? n
        let symbol = "tfc_naive_act_\(activation.rawValue)_\(n)_\(ld)_\(tau.bitPattern)"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let erff = g.declare("erff", g.f32, [g.f32])
        let expf = g.declare("expf", g.f32, [g.f32])
        func gelu(_ x: LLVMValueRef) -> LLVMValueRef {
            let e = g.call(erff, [g.fmul(x, g.f32(0.70710678118654752))])
            return g.fmul(g.fmul(g.f32(0.5), x), g.fadd(g.f32(1), e))
        }
        let nI = g.i64(n)
        defineKernel(symbol) { args, T, _ in
            let S = g.argPtr(args, 0)
            g.loop(0, T) { r in
                let row = g.gep(S, g.mul(r, ld))
                func sumOf(_ f: @escaping (LLVMValueRef) -> LLVMValueRef) -> LLVMValueRef {
                    g.loop(g.i64(0), nI, carried: [g.f32(0)]) { j, acc in [g.fadd(acc[0], f(g.loadF(row, j)))] }[0]
                }
                func scaleOf(_ ss: LLVMValueRef) -> LLVMValueRef {
                    g.select(g.fcmp(LLVMRealOGT, ss, g.f32(0)), g.fdiv(g.f32(tau), g.unary("sqrt", ss)), g.f32(0))
                }
                func map(_ f: (LLVMValueRef) -> LLVMValueRef) {
                    g.loop(0, nI) { j in g.storeF(f(g.loadF(row, j)), row, j) }
                }
                switch activation {
                case .l2NormGelu:
                    let c = scaleOf(sumOf { g.fmul($0, $0) })
                    map { gelu(g.fmul($0, c)) }
                case .geluL2Norm:
                    map(gelu)
                    let c = scaleOf(sumOf { g.fmul($0, $0) })
                    map { g.fmul($0, c) }
                case .softmax:
                    let m = g.loop(g.i64(0), nI, carried: [g.f32(-Float.infinity)]) { j, acc in [g.fmax(acc[0], g.loadF(row, j))] }[0]
                    map { g.call(expf, [g.fsub($0, m)]) }
                    let c = g.fdiv(g.f32(Float(n)), sumOf { $0 })
                    map { g.fmul($0, c) }
                }
            }
        }
        return symbol
    }

    /// `args = [const float *x, float *partials]`, `T` = element count (a multiple of 64):
    /// parallel vectorised sum in 1 MiB chunks; chunk i's sum goes to `partials[i]`.
    @discardableResult
    public func addBandwidthProbe() -> String {
        let symbol = "tfc_bench_read_bandwidth"
        if hasKernel(symbol) { return symbol }
        let g = gen
        let chunk = 1 << 18
        let task = g.task(symbol + ".chunk") { ctx, i in
            let x = g.contextPtr(ctx, 0), out = g.contextPtr(ctx, 1), count = g.contextInt(ctx, 2)
            let begin = g.mul(i, chunk)
            let end = g.smin(count, g.add(begin, chunk))
            let zeros = [LLVMValueRef](repeating: g.vzero, count: 8)
            let acc = g.loop(begin, end, step: 64, carried: zeros) { c, a in
                (0..<8).map { g.fadd(a[$0], g.loadV(x, g.add(c, $0 * 8))) }
            }
            let total = acc.dropFirst().reduce(acc[0]) { g.fadd($0, $1) }
            g.storeF(g.hsum(total), out, i)
        }
        defineKernel(symbol) { args, T, _ in
            let ctx = g.makeContext([g.argPtr(args, 0), g.argPtr(args, 1), T])
            g.parallelFor(task, ctx, g.ceilDiv(T, chunk))
        }
        return symbol
    }
}
