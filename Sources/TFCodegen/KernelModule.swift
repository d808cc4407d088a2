import CLLVM

/// One LLVM module of generated kernels: add kernels (`addPattention`, `addAttention`,
/// `addGemm`, `addLayerNorm`, ...), then either hand it to a `KernelJIT` or emit it as
/// LLVM IR, assembly or an object file. Helpers shared between kernels (micro-kernels,
/// vector math) are emitted once per module.
///
/// Every exported kernel has the C signature
/// `void name(void *const *args, int64_t T, int64_t p0)`: `args` lists the kernel's
/// pointers (see each kernel's description), `T` is the number of rows (tokens) and `p0`
/// the absolute position of the first row (used by rotary and attention, ignored otherwise).
public final class KernelModule {
    public let name: String
    /// The machine and the vector target (`target.vector`) the kernels are emitted for.
    public let target: TargetHost
    /// The vector target (lanes, registers) emission is written against.
    public var vector: VectorTarget { target.vector }
    let tsc: LLVMOrcThreadSafeContextRef
    let context: LLVMContextRef
    private(set) var module: LLVMModuleRef?
    let gen: IRGen
    /// The exported kernel symbols, in the order they were added.
    public private(set) var kernelNames: [String] = []
    public private(set) var isOptimized = false
    /// Default of `optimize(llvmUnrolling:)` (env TFC_LLVM_UNROLL=1 turns it on).
    public static var llvmUnrollingDefault: Bool = getenv("TFC_LLVM_UNROLL").map { String(cString: $0) == "1" } ?? false
    /// Time spent emitting IR and optimising, in seconds.
    public private(set) var emitSeconds = 0.0
    public private(set) var optimizeSeconds = 0.0

    /// The default target is the host CPU with AVX2-shaped code (what tfc emitted before
    /// targets were a parameter); the fused backend passes the host's best (`TargetHost.host`).
    public init(name: String = "tfc_kernels", target: TargetHost = .host(.avx2)) throws {
        try LLVMNative.ensure()
        self.name = name
        self.target = target
        tsc = LLVMOrcCreateNewThreadSafeContext()
        context = LLVMOrcThreadSafeContextGetContext(tsc)
        let m = LLVMModuleCreateWithNameInContext(name, context)!
        LLVMSetTarget(m, target.triple)
        LLVMSetDataLayout(m, try target.dataLayout())
        module = m
        gen = IRGen(context: context, module: m, vector: target.vector)
    }

    deinit {
        gen.close()
        if let module { LLVMDisposeModule(module) }
        LLVMOrcDisposeThreadSafeContext(tsc)
    }

    func liveModule() throws -> LLVMModuleRef {
        guard let module else { throw CodegenError("module \(name) was already handed to a JIT") }
        return module
    }

    /// Whether an exported kernel called `symbol` exists already (kernels of identical
    /// shape are emitted once and reused).
    public func hasKernel(_ symbol: String) -> Bool { kernelNames.contains(symbol) }

    /// Emits an exported kernel `void symbol(void *const *args, i64 T, i64 p0)`.
    func defineKernel(_ symbol: String, body: (_ args: LLVMValueRef, _ T: LLVMValueRef, _ p0: LLVMValueRef) -> Void) {
        precondition(!kernelNames.contains(symbol), "kernel \(symbol) defined twice")
        let start = monotonicSeconds()
        let g = gen
        let ppi8 = LLVMPointerType(g.pi8, 0)!
        let f = g.define(symbol, g.voidT, [ppi8, g.i64, g.i64], linkage: LLVMExternalLinkage, attributes: ["nounwind"]) { fn in
            body(g.param(fn, 0), g.param(fn, 1), g.param(fn, 2))
            g.retVoid()
        }
        _ = f
        kernelNames.append(symbol)
        emitSeconds += monotonicSeconds() - start
    }

    /// Keeps only `renamed`'s kernels exported, under their new names; every other kernel
    /// becomes internal (for linking several modules of the same kernels into one program).
    public func exportOnly(_ renamed: [String: String]) throws {
        let m = try liveModule()
        precondition(!isOptimized, "rename before optimising")
        var names: [String] = []
        for name in kernelNames {
            guard let fn = LLVMGetNamedFunction(m, name) else { continue }
            if let new = renamed[name] {
                LLVMSetValueName2(fn, new, new.utf8.count)
                names.append(new)
            } else {
                LLVMSetLinkage(fn, LLVMInternalLinkage)
            }
        }
        kernelNames = names
    }

    /// Checks the module with LLVM's verifier.
    public func verify() throws {
        let m = try liveModule()
        var msg: UnsafeMutablePointer<CChar>?
        if LLVMVerifyModule(m, LLVMReturnStatusAction, &msg) != 0 {
            throw CodegenError("module \(name) does not verify: \(takeMessage(msg))")
        } else { LLVMDisposeMessage(msg) }
    }

    /// Runs LLVM's `default<O3>` pipeline (loop and SLP vectorisation on) for the target.
    /// Idempotent; `KernelJIT.add` and the emitters call it when needed.
    /// LLVM's own loop unroller is off by default: the hot loops are unrolled by the emitter
    /// (`GemmSchedule.unroll`), and unrolling them again only costs compile time.
    public func optimize(pipeline: String = "default<O3>", llvmUnrolling: Bool = KernelModule.llvmUnrollingDefault) throws {
        if isOptimized { return }
        try verify()
        let start = monotonicSeconds()
        let m = try liveModule()
        let tm = try target.makeTargetMachine()
        defer { LLVMDisposeTargetMachine(tm) }
        let opts = LLVMCreatePassBuilderOptions()
        defer { LLVMDisposePassBuilderOptions(opts) }
        LLVMPassBuilderOptionsSetLoopVectorization(opts, 1)
        LLVMPassBuilderOptionsSetSLPVectorization(opts, 1)
        LLVMPassBuilderOptionsSetLoopUnrolling(opts, llvmUnrolling ? 1 : 0)
        LLVMPassBuilderOptionsSetLoopInterleaving(opts, 1)
        try check(LLVMRunPasses(m, pipeline, tm, opts), "optimising \(name)")
        isOptimized = true
        optimizeSeconds += monotonicSeconds() - start
    }

    /// The module as LLVM IR text (optimised if `optimize()` ran).
    public func llvmIR() throws -> String {
        takeMessage(LLVMPrintModuleToString(try liveModule()))
    }

    /// Native assembly for the target (optimises first).
    public func assembly() throws -> String {
        String(decoding: try emit(LLVMAssemblyFile), as: UTF8.self)
    }

    /// A native relocatable object file (ELF on Linux), optimised first. Kernels are
    /// external symbols; calls into the runtime (`tfc_parallel_for`, ...) are left undefined
    /// for the linker (link against the TFRuntime C sources and libm).
    public func objectFile() throws -> [UInt8] { try emit(LLVMObjectFile) }

    /// Writes `objectFile()` to `path`.
    public func writeObject(to path: String) throws {
        let bytes = try objectFile()
        guard let f = fopen(path, "wb") else { throw CodegenError("cannot open \(path) for writing") }
        defer { fclose(f) }
        if fwrite(bytes, 1, bytes.count, f) != bytes.count { throw CodegenError("short write to \(path)") }
    }

    private func emit(_ kind: LLVMCodeGenFileType) throws -> [UInt8] {
        try optimize()
        let m = try liveModule()
        // Code generation mutates the module; emit from a clone so the module stays usable.
        let clone = LLVMCloneModule(m)!
        defer { LLVMDisposeModule(clone) }
        let tm = try target.makeTargetMachine()
        defer { LLVMDisposeTargetMachine(tm) }
        var err: UnsafeMutablePointer<CChar>?
        var buf: LLVMMemoryBufferRef?
        if LLVMTargetMachineEmitToMemoryBuffer(tm, clone, kind, &err, &buf) != 0 {
            throw CodegenError("emitting \(name): \(takeMessage(err))")
        }
        guard let buf else { throw CodegenError("emitting \(name): no output") }
        defer { LLVMDisposeMemoryBuffer(buf) }
        let size = LLVMGetBufferSize(buf)
        let start = LLVMGetBufferStart(buf)!
        return start.withMemoryRebound(to: UInt8.self, capacity: size) { Array(UnsafeBufferPointer(start: $0, count: size)) }
    }

    /// Gives the module to LLJIT (internal: `KernelJIT.add`).
    func takeModule() throws -> LLVMOrcThreadSafeModuleRef {
        let m = try liveModule()
        module = nil
        return LLVMOrcCreateNewThreadSafeModule(m, tsc)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
