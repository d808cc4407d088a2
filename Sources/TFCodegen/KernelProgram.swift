import CLLVM

/// A straight-line sequence of kernel calls emitted as one exported function, so a whole
/// forward pass can be a single symbol in an object file (`tfc compile`) or a single JIT call:
/// `void name(void *const *table, int64_t T, int64_t p0)`, where `table` holds every buffer
/// the kernels use (weights, activations, caches) and each call picks its arguments from it.
public struct KernelCall: Hashable, Sendable {
    /// One pointer argument: `table[index]`, optionally advanced to the last row
    /// (`+ (T - 1) · rowStride` floats) — e.g. logits for the last token only.
    public struct Arg: Hashable, Sendable {
        public var index: Int
        public var lastRowStride: Int?
        public init(_ index: Int, lastRowStride: Int? = nil) {
            self.index = index
            self.lastRowStride = lastRowStride
        }
    }
    /// The row count passed to the kernel.
    public enum Rows: Hashable, Sendable { case all, one, constant(Int) }

    public var symbol: String
    public var args: [Arg]
    public var rows: Rows
    /// The position passed to the kernel: the program's p0 (true) or p0 + T - 1 (for `.one`
    /// row that is the last one).
    public var lastRowPosition: Bool

    public init(_ symbol: String, args: [Arg], rows: Rows = .all, lastRowPosition: Bool = false) {
        self.symbol = symbol
        self.args = args
        self.rows = rows
        self.lastRowPosition = lastRowPosition
    }

    public init(_ symbol: String, _ indices: Int...) {
        self.init(symbol, args: indices.map { Arg($0) })
    }
}

extension KernelModule {
    /// Calls per part of a program. LLVM's optimiser is superlinear in the size of a function, so
    /// one straight-line function of every call made compile time grow much faster than the
    /// layer count (400 layers 9 s, 700 layers 60 s); parts of bounded size keep it linear.
    static let programPartSize = 32

    /// Emits `void name(void *const *table, i64 T, i64 p0)` calling `calls` in order. Every
    /// called kernel must have been added to this module. The calls are split into `noinline`
    /// parts of `programPartSize`, which `name` calls in order.
    @discardableResult
    public func addProgram(_ name: String, calls: [KernelCall]) -> String {
        for c in calls { precondition(hasKernel(c.symbol), "program \(name) calls \(c.symbol), which is not in module \(self.name)") }
        let g = gen
        let ppi8 = LLVMPointerType(g.pi8, 0)!
        var parts: [IRFunction] = []
        for (k, start) in stride(from: 0, to: calls.count, by: Self.programPartSize).enumerated() {
            let part = calls[start..<min(start + Self.programPartSize, calls.count)]
            parts.append(g.define("\(name).part\(k)", g.voidT, [ppi8, g.i64, g.i64], attributes: ["noinline", "nounwind"]) { fn in
                emitCalls(part, table: g.param(fn, 0), T: g.param(fn, 1), p0: g.param(fn, 2))
                g.retVoid()
            })
        }
        defineKernel(name) { table, T, p0 in
            for part in parts { g.call(part, [table, T, p0]) }
        }
        return name
    }

    /// The calls themselves: each kernel's arguments gathered from `table` into a stack array.
    private func emitCalls(_ calls: ArraySlice<KernelCall>, table: LLVMValueRef, T: LLVMValueRef, p0: LLVMValueRef) {
        let g = gen
        let ppi8 = LLVMPointerType(g.pi8, 0)!
        for c in calls {
            let callee = g.declare(c.symbol, g.voidT, [ppi8, g.i64, g.i64])
            let slots = g.alloca(g.pi8, count: max(1, c.args.count))
            for (i, a) in c.args.enumerated() {
                var p = g.bitcast(g.load(g.gep(table, a.index), align: 8), g.pf32)
                if let stride = a.lastRowStride { p = g.gep(p, g.mul(g.sub(T, g.i64(1)), stride)) }
                g.store(g.bitcast(p, g.pi8), g.gep(slots, i), align: 8)
            }
            let rows: LLVMValueRef
            switch c.rows {
            case .all: rows = T
            case .one: rows = g.i64(1)
            case .constant(let k): rows = g.i64(k)
            }
            let pos = c.lastRowPosition ? g.add(p0, g.sub(T, g.i64(1))) : p0
            g.call(callee, [slots, rows, pos])
        }
    }
}
