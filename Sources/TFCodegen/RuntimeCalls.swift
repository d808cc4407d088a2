import CLLVM

/// Calls from generated code into the C runtime (Runtime/threadpool.c), and the small
/// "context record" passed to parallel task functions.
extension IRGen {
    /// `void (*)(i8 *ctx, i64 index)`: the task type of `tfc_parallel_for`.
    var taskType: LLVMTypeRef { functionType(voidT, [pi8, i64]) }

    /// `tfc_parallel_for(task, ctx, count)`.
    func parallelFor(_ task: IRFunction, _ ctx: LLVMValueRef, _ count: LLVMValueRef) {
        let f = declare("tfc_parallel_for", voidT, [LLVMPointerType(taskType, 0), pi8, i64])
        call(f, [task.value, ctx, count])
    }

    /// `tfc_get_num_threads()` as i64.
    func numThreads() -> LLVMValueRef {
        sext64(call(declare("tfc_get_num_threads", i32, []), []))
    }

    /// `tfc_thread_scratch(bytes)` as `float*` (64-byte aligned, per thread).
    func threadScratch(floats: LLVMValueRef) -> LLVMValueRef {
        let f = declare("tfc_thread_scratch", pi8, [i64])
        return bitcast(call(f, [mul(floats, 4)]), pf32)
    }

    /// A stack record of i64 slots (pointers stored as integers) for a task's context.
    func makeContext(_ values: [LLVMValueRef]) -> LLVMValueRef {
        let rec = alloca(i64, count: max(1, values.count))
        for (i, v) in values.enumerated() {
            let t = LLVMTypeOf(v)!
            let asInt = LLVMGetTypeKind(t) == LLVMPointerTypeKind ? ptrToInt(v) : v
            store(asInt, gep(rec, i), align: 8)
        }
        return bitcast(rec, pi8)
    }

    /// Slot `i` of a context record, as i64.
    func contextInt(_ ctx: LLVMValueRef, _ i: Int) -> LLVMValueRef {
        load(gep(bitcast(ctx, pi64), i), align: 8)
    }
    /// Slot `i` of a context record, as `float*`.
    func contextPtr(_ ctx: LLVMValueRef, _ i: Int) -> LLVMValueRef {
        intToPtr(contextInt(ctx, i), pf32)
    }

    /// Pointer `i` of a kernel's `void *const *args`, as `float*`.
    func argPtr(_ args: LLVMValueRef, _ i: Int) -> LLVMValueRef {
        bitcast(load(gep(args, i), align: 8), pf32)
    }

    /// Defines a parallel task `void name(i8 *ctx, i64 index)`.
    func task(_ name: String, body: (_ ctx: LLVMValueRef, _ index: LLVMValueRef) -> Void) -> IRFunction {
        define(name, voidT, [pi8, i64], attributes: ["nounwind"]) { fn in
            body(self.param(fn, 0), self.param(fn, 1))
            self.retVoid()
        }
    }

    /// The number of parallel row blocks for `rows` rows: blocks hold at most `rowBlock`
    /// rows (a multiple of `mr`), and their count is rounded up to a multiple of the thread
    /// count (when there are enough row tiles) so threads finish together.
    func rowBlockCount(rows: LLVMValueRef, rowBlock: Int, mr: Int, threads: LLVMValueRef) -> LLVMValueRef {
        let tiles = ceilDiv(rows, mr)
        let nb = ceilDiv(tiles, rowBlock / mr)
        let balanced = mul(ceilDiv(nb, threads), threads)
        return smin(balanced, tiles)
    }

    /// Rows `[r0, r0 + count)` of block `b` of `blocks`: whole `mr`-row tiles, spread evenly
    /// (block sizes differ by at most one tile).
    func rowBlockRange(_ b: LLVMValueRef, blocks: LLVMValueRef, rows: LLVMValueRef, mr: Int) -> (r0: LLVMValueRef, count: LLVMValueRef) {
        let tiles = ceilDiv(rows, mr)
        let t0 = sdiv(mul(b, tiles), blocks)
        let t1 = sdiv(mul(add(b, i64(1)), tiles), blocks)
        let r0 = mul(t0, mr)
        return (r0, sub(smin(mul(t1, mr), rows), r0))
    }
}

/// A stable, readable-length name for a kernel from its description (FNV-1a 64).
func stableHash(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }
