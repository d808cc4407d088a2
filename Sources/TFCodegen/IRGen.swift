import CLLVM

/// An LLVM value (instruction, constant, argument, function).
public typealias LLVMValue = LLVMValueRef

/// A function declared or defined in an `IRGen` module, with its type (needed by calls).
struct IRFunction {
    let type: LLVMTypeRef
    let value: LLVMValueRef
}

/// A thin, typed layer over llvm-c's IR builder for the kernels tfc emits: scalar and
/// `<lanes x float>` arithmetic (the lanes of its `VectorTarget`: 8 for AVX2, 16 for AVX-512), loads and stores by float offset, masked tails, structured
/// loops with loop-carried SSA values, and cached intrinsic declarations.
///
/// Index arithmetic is `i64` throughout; pointers are `float*` (LLVM 14 typed pointers).
final class IRGen {
    let context: LLVMContextRef
    let module: LLVMModuleRef
    let builder: LLVMBuilderRef

    let voidT: LLVMTypeRef
    let i1: LLVMTypeRef
    let i8: LLVMTypeRef
    let i32: LLVMTypeRef
    let i64: LLVMTypeRef
    let f32: LLVMTypeRef
    let f64: LLVMTypeRef
    /// What the kernels are written against (lanes, registers).
    let vector: VectorTarget
    /// The vector width in floats (8: AVX2 `ymm`, 16: AVX-512 `zmm`).
    let width: Int
    let vf: LLVMTypeRef      // <width x float>
    let vi32: LLVMTypeRef    // <width x i32>
    let vi1: LLVMTypeRef     // <width x i1>
    let pf32: LLVMTypeRef    // float*
    let pvf: LLVMTypeRef     // <width x float>*
    /// The intrinsic-name suffix of `vf` (`v8f32`, `v16f32`).
    let vfName: String
    let pi8: LLVMTypeRef     // i8*
    let pi64: LLVMTypeRef    // i64*

    private var declared: [String: IRFunction] = [:]
    private var defined: [String: IRFunction] = [:]

    init(context: LLVMContextRef, module: LLVMModuleRef, vector: VectorTarget) {
        self.vector = vector
        width = vector.lanes
        vfName = "v\(vector.lanes)f32"
        self.context = context
        self.module = module
        builder = LLVMCreateBuilderInContext(context)
        voidT = LLVMVoidTypeInContext(context)
        i1 = LLVMInt1TypeInContext(context)
        i8 = LLVMInt8TypeInContext(context)
        i32 = LLVMInt32TypeInContext(context)
        i64 = LLVMInt64TypeInContext(context)
        f32 = LLVMFloatTypeInContext(context)
        f64 = LLVMDoubleTypeInContext(context)
        vf = LLVMVectorType(f32, UInt32(width))
        vi32 = LLVMVectorType(i32, UInt32(width))
        vi1 = LLVMVectorType(i1, UInt32(width))
        pf32 = LLVMPointerType(f32, 0)
        pvf = LLVMPointerType(vf, 0)
        pi8 = LLVMPointerType(i8, 0)
        pi64 = LLVMPointerType(i64, 0)
    }

    private var closed = false
    /// Disposes the builder (before its context goes away); the IRGen is unusable afterwards.
    func close() {
        if !closed { LLVMDisposeBuilder(builder) }
        closed = true
    }
    deinit { close() }

    // MARK: Types and functions

    func functionType(_ ret: LLVMTypeRef, _ params: [LLVMTypeRef]) -> LLVMTypeRef {
        var ps: [LLVMTypeRef?] = params
        return ps.withUnsafeMutableBufferPointer { LLVMFunctionType(ret, $0.baseAddress, UInt32(params.count), 0) }
    }

    /// A declaration of an external function (runtime symbol or intrinsic), cached by name.
    func declare(_ name: String, _ ret: LLVMTypeRef, _ params: [LLVMTypeRef]) -> IRFunction {
        if let f = declared[name] { return f }
        let t = functionType(ret, params)
        let v = LLVMGetNamedFunction(module, name) ?? LLVMAddFunction(module, name, t)!
        let f = IRFunction(type: t, value: v)
        declared[name] = f
        return f
    }

    /// A function defined once per module: `body` runs with the builder at its entry block
    /// the first time `name` is asked for; the builder position is saved and restored.
    func define(_ name: String, _ ret: LLVMTypeRef, _ params: [LLVMTypeRef], linkage: LLVMLinkage = LLVMInternalLinkage,
                attributes: [String] = [], body: (LLVMValueRef) -> Void) -> IRFunction {
        if let f = defined[name] { return f }
        let t = functionType(ret, params)
        let v = LLVMAddFunction(module, name, t)!
        LLVMSetLinkage(v, linkage)
        for a in attributes { addFunctionAttribute(v, a) }
        addVectorWidthAttributes(v)
        let f = IRFunction(type: t, value: v)
        defined[name] = f
        let saved = LLVMGetInsertBlock(builder)
        let entry = LLVMAppendBasicBlockInContext(context, v, "entry")
        LLVMPositionBuilderAtEnd(builder, entry)
        body(v)
        if let saved { LLVMPositionBuilderAtEnd(builder, saved) }
        return f
    }

    func isDefined(_ name: String) -> Bool { defined[name] != nil }

    func addFunctionAttribute(_ fn: LLVMValueRef, _ name: String) {
        let kind = LLVMGetEnumAttributeKindForName(name, name.utf8.count)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeIndex(bitPattern: -1), LLVMCreateEnumAttribute(context, kind, 0))
    }

    /// Tells LLVM the target's vector width is wanted: its own vectoriser then uses it, and
    /// `<16 x float>` stays whole `zmm` registers even where the CPU model prefers 256 bits.
    func addVectorWidthAttributes(_ fn: LLVMValueRef) {
        for key in ["prefer-vector-width", "min-legal-vector-width"] {
            let value = String(vector.bits)
            let a = LLVMCreateStringAttribute(context, key, UInt32(key.utf8.count), value, UInt32(value.utf8.count))
            LLVMAddAttributeAtIndex(fn, LLVMAttributeIndex(bitPattern: -1), a)
        }
    }

    /// Marks pointer parameter `index` (0-based) `noalias` (and `nocapture`).
    func addNoAlias(_ fn: LLVMValueRef, param index: Int) {
        for name in ["noalias", "nocapture"] {
            let kind = LLVMGetEnumAttributeKindForName(name, name.utf8.count)
            LLVMAddAttributeAtIndex(fn, LLVMAttributeIndex(index + 1), LLVMCreateEnumAttribute(context, kind, 0))
        }
    }

    func param(_ fn: LLVMValueRef, _ i: Int) -> LLVMValueRef { LLVMGetParam(fn, UInt32(i))! }

    @discardableResult
    func call(_ f: IRFunction, _ args: [LLVMValueRef]) -> LLVMValueRef {
        var a: [LLVMValueRef?] = args
        return a.withUnsafeMutableBufferPointer { LLVMBuildCall2(builder, f.type, f.value, $0.baseAddress, UInt32(args.count), "")! }
    }

    // MARK: Constants

    func i64(_ v: Int) -> LLVMValueRef { LLVMConstInt(i64, UInt64(bitPattern: Int64(v)), 1) }
    func i32(_ v: Int) -> LLVMValueRef { LLVMConstInt(i32, UInt64(bitPattern: Int64(v)), 1) }
    func bool(_ v: Bool) -> LLVMValueRef { LLVMConstInt(i1, v ? 1 : 0, 0) }
    func f32(_ v: Float) -> LLVMValueRef { LLVMConstReal(f32, Double(v)) }
    func f64(_ v: Double) -> LLVMValueRef { LLVMConstReal(f64, v) }
    /// `<width x float>` with every lane `v`.
    func vsplat(_ v: Float) -> LLVMValueRef { constVector((0..<width).map { _ in f32(v) }) }
    func vsplatI32(_ v: Int32) -> LLVMValueRef { constVector((0..<width).map { _ in i32(Int(v)) }) }
    func constVector(_ elems: [LLVMValueRef]) -> LLVMValueRef {
        var e: [LLVMValueRef?] = elems
        return e.withUnsafeMutableBufferPointer { LLVMConstVector($0.baseAddress, UInt32(elems.count))! }
    }
    var vzero: LLVMValueRef { LLVMConstNull(vf) }
    func null(_ t: LLVMTypeRef) -> LLVMValueRef { LLVMConstNull(t) }

    // MARK: Integer arithmetic (i64)

    func add(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildAdd(builder, a, b, "")! }
    func sub(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSub(builder, a, b, "")! }
    func mul(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildMul(builder, a, b, "")! }
    func sdiv(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSDiv(builder, a, b, "")! }
    func add(_ a: LLVMValueRef, _ b: Int) -> LLVMValueRef { b == 0 ? a : add(a, i64(b)) }
    func mul(_ a: LLVMValueRef, _ b: Int) -> LLVMValueRef { b == 1 ? a : mul(a, i64(b)) }
    /// ceil(a / b) for a >= 0, b > 0.
    func ceilDiv(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { sdiv(sub(add(a, b), i64(1)), b) }
    func ceilDiv(_ a: LLVMValueRef, _ b: Int) -> LLVMValueRef { ceilDiv(a, i64(b)) }
    func icmp(_ p: LLVMIntPredicate, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildICmp(builder, p, a, b, "")! }
    func lt(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { icmp(LLVMIntSLT, a, b) }
    func select(_ c: LLVMValueRef, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildSelect(builder, c, a, b, "")! }
    func smin(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(icmp(LLVMIntSLT, a, b), a, b) }
    func smax(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(icmp(LLVMIntSGT, a, b), a, b) }
    func trunc32(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildTrunc(builder, a, i32, "")! }
    func sext64(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildSExt(builder, a, i64, "")! }
    func sitofp(_ a: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildSIToFP(builder, a, t, "")! }
    func fpext(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildFPExt(builder, a, f64, "")! }
    func fptrunc(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildFPTrunc(builder, a, f32, "")! }

    // MARK: Float arithmetic (scalar or vector)

    func fadd(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFAdd(builder, a, b, "")! }
    func fsub(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFSub(builder, a, b, "")! }
    func fmul(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFMul(builder, a, b, "")! }
    func fdiv(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFDiv(builder, a, b, "")! }
    func fneg(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildFNeg(builder, a, "")! }
    func fcmp(_ p: LLVMRealPredicate, _ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { LLVMBuildFCmp(builder, p, a, b, "")! }
    /// min/max that lower to `vminps`/`vmaxps` (operand order matters only for NaN).
    func fmin(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(fcmp(LLVMRealOLT, a, b), a, b) }
    func fmax(_ a: LLVMValueRef, _ b: LLVMValueRef) -> LLVMValueRef { select(fcmp(LLVMRealOGT, a, b), a, b) }

    /// `a * b + c` with one rounding (`llvm.fma`), scalar or `<width x float>`.
    func fma(_ a: LLVMValueRef, _ b: LLVMValueRef, _ c: LLVMValueRef) -> LLVMValueRef {
        let isVec = LLVMGetTypeKind(LLVMTypeOf(a)) == LLVMVectorTypeKind
        let t = isVec ? vf : f32
        return call(declare(isVec ? "llvm.fma.\(vfName)" : "llvm.fma.f32", t, [t, t, t]), [a, b, c])
    }

    /// A unary float intrinsic by base name (`sqrt`, `fabs`, `floor`, `rint`, `cos`, ...),
    /// overloaded on the operand type (f32, f64 or <width x float>).
    func unary(_ base: String, _ a: LLVMValueRef) -> LLVMValueRef {
        let t = LLVMTypeOf(a)!
        let suffix = t == vf ? vfName : (t == f64 ? "f64" : "f32")
        return call(declare("llvm.\(base).\(suffix)", t, [t]), [a])
    }

    func bitcast(_ a: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildBitCast(builder, a, t, "")! }
    func ptrToInt(_ a: LLVMValueRef) -> LLVMValueRef { LLVMBuildPtrToInt(builder, a, i64, "")! }
    func intToPtr(_ a: LLVMValueRef, _ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildIntToPtr(builder, a, t, "")! }

    // MARK: Vectors

    /// Every lane = the scalar `s`.
    func splat(_ s: LLVMValueRef) -> LLVMValueRef {
        let t = LLVMTypeOf(s)!
        let vt = LLVMVectorType(t, UInt32(width))!
        let ins = LLVMBuildInsertElement(builder, LLVMGetUndef(vt), s, i32(0), "")!
        return LLVMBuildShuffleVector(builder, ins, LLVMGetUndef(vt), LLVMConstNull(vi32), "")!
    }
    func extract(_ v: LLVMValueRef, _ lane: Int) -> LLVMValueRef { LLVMBuildExtractElement(builder, v, i32(lane), "")! }
    func shuffle(_ a: LLVMValueRef, _ b: LLVMValueRef, _ mask: [Int]) -> LLVMValueRef {
        let m = constVector(mask.map { $0 < 0 ? LLVMGetUndef(i32)! : i32($0) })
        return LLVMBuildShuffleVector(builder, a, b, m, "")!
    }

    /// Sum of the lanes (pairwise: halves added until two lanes remain; for 8 lanes the order
    /// of the AVX2 code since the start).
    func hsum(_ v: LLVMValueRef) -> LLVMValueRef { horizontal(v, fadd) }
    /// Maximum of the lanes.
    func hmax(_ v: LLVMValueRef) -> LLVMValueRef { horizontal(v, fmax) }

    private func horizontal(_ v: LLVMValueRef, _ op: (LLVMValueRef, LLVMValueRef) -> LLVMValueRef) -> LLVMValueRef {
        var x = v
        var n = width
        while n > 2 {
            let half = n / 2
            let pad = [Int](repeating: -1, count: width - half)
            x = op(shuffle(x, x, Array(0..<half) + pad), shuffle(x, x, Array(half..<n) + pad))
            n = half
        }
        return op(extract(x, 0), extract(x, 1))
    }

    /// Lanes `[0, count)` set (count is an i64 value; any count >= width sets all lanes).
    func laneMask(_ count: LLVMValueRef) -> LLVMValueRef {
        let lanes = constVector((0..<width).map { i32($0) })
        let c = trunc32(smin(smax(count, i64(0)), i64(width)))
        return icmp(LLVMIntSLT, lanes, splat(c))
    }
    func laneMask(_ count: Int) -> LLVMValueRef {
        constVector((0..<width).map { bool($0 < count) })
    }

    // MARK: Memory (offsets in floats)

    func gep(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef {
        var idx: [LLVMValueRef?] = [offset]
        let elem = LLVMGetElementType(LLVMTypeOf(p))!
        return idx.withUnsafeMutableBufferPointer { LLVMBuildInBoundsGEP2(builder, elem, p, $0.baseAddress, 1, "")! }
    }
    func gep(_ p: LLVMValueRef, _ offset: Int) -> LLVMValueRef { offset == 0 ? p : gep(p, i64(offset)) }

    func load(_ p: LLVMValueRef, align: UInt32 = 4) -> LLVMValueRef {
        let l = LLVMBuildLoad2(builder, LLVMGetElementType(LLVMTypeOf(p)), p, "")!
        LLVMSetAlignment(l, align)
        return l
    }
    func store(_ v: LLVMValueRef, _ p: LLVMValueRef, align: UInt32 = 4) {
        let s = LLVMBuildStore(builder, v, p)!
        LLVMSetAlignment(s, align)
    }
    /// `<width x float>` load from `p + offset` (no alignment assumed).
    func loadV(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef { load(bitcast(gep(p, offset), pvf)) }
    func loadV(_ p: LLVMValueRef, _ offset: Int) -> LLVMValueRef { load(bitcast(gep(p, offset), pvf)) }
    func storeV(_ v: LLVMValueRef, _ p: LLVMValueRef, _ offset: LLVMValueRef) { store(v, bitcast(gep(p, offset), pvf)) }
    func storeV(_ v: LLVMValueRef, _ p: LLVMValueRef, _ offset: Int) { store(v, bitcast(gep(p, offset), pvf)) }
    func loadF(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef { load(gep(p, offset)) }
    func loadF(_ p: LLVMValueRef, _ offset: Int) -> LLVMValueRef { load(gep(p, offset)) }
    func storeF(_ v: LLVMValueRef, _ p: LLVMValueRef, _ offset: LLVMValueRef) { store(v, gep(p, offset)) }
    func storeF(_ v: LLVMValueRef, _ p: LLVMValueRef, _ offset: Int) { store(v, gep(p, offset)) }
    /// Broadcast of the float at `p + offset` (`vbroadcastss`).
    func broadcastLoad(_ p: LLVMValueRef, _ offset: LLVMValueRef) -> LLVMValueRef { splat(loadF(p, offset)) }

    /// Masked `<width x float>` load: lanes outside `mask` read as 0 and touch no memory
    /// (`vmaskmovps` on AVX2, a `k`-masked move on AVX-512).
    func maskedLoadV(_ p: LLVMValueRef, _ offset: LLVMValueRef, _ mask: LLVMValueRef) -> LLVMValueRef {
        let f = declare("llvm.masked.load.\(vfName).p0\(vfName)", vf, [pvf, i32, vi1, vf])
        return call(f, [bitcast(gep(p, offset), pvf), i32(4), mask, vzero])
    }
    func maskedStoreV(_ v: LLVMValueRef, _ p: LLVMValueRef, _ offset: LLVMValueRef, _ mask: LLVMValueRef) {
        let f = declare("llvm.masked.store.\(vfName).p0\(vfName)", voidT, [vf, pvf, i32, vi1])
        call(f, [v, bitcast(gep(p, offset), pvf), i32(4), mask])
    }

    /// An entry-block stack array of `count` elements of `type`.
    func alloca(_ type: LLVMTypeRef, count: Int) -> LLVMValueRef {
        let fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(builder))!
        let entry = LLVMGetEntryBasicBlock(fn)!
        let tmp = LLVMCreateBuilderInContext(context)!
        defer { LLVMDisposeBuilder(tmp) }
        if let first = LLVMGetFirstInstruction(entry) { LLVMPositionBuilderBefore(tmp, first) } else { LLVMPositionBuilderAtEnd(tmp, entry) }
        let a = LLVMBuildArrayAlloca(tmp, type, LLVMConstInt(i64, UInt64(count), 0), "")!
        LLVMSetAlignment(a, 64)
        return a
    }

    // MARK: Control flow

    var currentFunction: LLVMValueRef { LLVMGetBasicBlockParent(LLVMGetInsertBlock(builder))! }
    func block(_ name: String) -> LLVMBasicBlockRef { LLVMAppendBasicBlockInContext(context, currentFunction, name)! }
    func br(_ b: LLVMBasicBlockRef) { LLVMBuildBr(builder, b) }
    func condBr(_ c: LLVMValueRef, _ t: LLVMBasicBlockRef, _ f: LLVMBasicBlockRef) { LLVMBuildCondBr(builder, c, t, f) }
    func position(_ b: LLVMBasicBlockRef) { LLVMPositionBuilderAtEnd(builder, b) }
    func retVoid() { LLVMBuildRetVoid(builder) }
    func ret(_ v: LLVMValueRef) { LLVMBuildRet(builder, v) }

    func phi(_ t: LLVMTypeRef) -> LLVMValueRef { LLVMBuildPhi(builder, t, "")! }
    func addIncoming(_ phi: LLVMValueRef, _ v: LLVMValueRef, _ from: LLVMBasicBlockRef) {
        var vs: [LLVMValueRef?] = [v]
        var bs: [LLVMBasicBlockRef?] = [from]
        vs.withUnsafeMutableBufferPointer { vp in bs.withUnsafeMutableBufferPointer { bp in LLVMAddIncoming(phi, vp.baseAddress, bp.baseAddress, 1) } }
    }

    /// `for i in start ..< end by step` with values carried around the loop in SSA
    /// (accumulators stay in registers). Returns the carried values after the loop.
    @discardableResult
    func loop(_ start: LLVMValueRef, _ end: LLVMValueRef, step: Int = 1, carried: [LLVMValueRef] = [],
              _ body: (LLVMValueRef, [LLVMValueRef]) -> [LLVMValueRef]) -> [LLVMValueRef] {
        let pre = LLVMGetInsertBlock(builder)!
        let header = block("loop"), bodyBB = block("body"), exit = block("exit")
        br(header)
        position(header)
        let i = phi(i64)
        let phis = carried.map { phi(LLVMTypeOf($0)) }
        condBr(lt(i, end), bodyBB, exit)
        position(bodyBB)
        let next = body(i, phis)
        precondition(next.count == carried.count, "loop body must return one value per carried value")
        let iNext = add(i, i64(step))
        let latch = LLVMGetInsertBlock(builder)!
        br(header)
        addIncoming(i, start, pre)
        addIncoming(i, iNext, latch)
        for (k, p) in phis.enumerated() {
            addIncoming(p, carried[k], pre)
            addIncoming(p, next[k], latch)
        }
        position(exit)
        return phis
    }
    func loop(_ start: Int, _ end: LLVMValueRef, step: Int = 1, _ body: (LLVMValueRef) -> Void) {
        loop(i64(start), end, step: step) { i, _ in body(i); return [] }
    }
    func loop(_ start: LLVMValueRef, _ end: LLVMValueRef, step: Int = 1, _ body: (LLVMValueRef) -> Void) {
        loop(start, end, step: step) { i, _ in body(i); return [] }
    }

    /// `if cond { then() }`.
    func ifThen(_ cond: LLVMValueRef, _ then: () -> Void) {
        let t = block("then"), m = block("endif")
        condBr(cond, t, m)
        position(t)
        then()
        br(m)
        position(m)
    }

    /// `cond ? then() : otherwise()` for control flow producing values (merged with phis).
    @discardableResult
    func ifElse(_ cond: LLVMValueRef, then: () -> [LLVMValueRef], otherwise: () -> [LLVMValueRef]) -> [LLVMValueRef] {
        let t = block("then"), e = block("else"), m = block("endif")
        condBr(cond, t, e)
        position(t)
        let tv = then()
        let tEnd = LLVMGetInsertBlock(builder)!
        br(m)
        position(e)
        let ev = otherwise()
        let eEnd = LLVMGetInsertBlock(builder)!
        br(m)
        position(m)
        precondition(tv.count == ev.count)
        return zip(tv, ev).map { a, b in
            let p = phi(LLVMTypeOf(a))
            addIncoming(p, a, tEnd)
            addIncoming(p, b, eEnd)
            return p
        }
    }

    /// `switch value { case k: cases[k]() }` over 0..<cases.count, default does nothing.
    func switchOn(_ value: LLVMValueRef, cases: [(Int, () -> Void)]) {
        let done = block("sw.end")
        let sw = LLVMBuildSwitch(builder, value, done, UInt32(cases.count))!
        for (k, body) in cases {
            let b = block("sw.\(k)")
            LLVMAddCase(sw, LLVMConstInt(LLVMTypeOf(value), UInt64(k), 0), b)
            position(b)
            body()
            br(done)
        }
        position(done)
    }
}
