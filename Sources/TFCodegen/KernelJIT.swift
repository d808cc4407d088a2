import CLLVM
import TFRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The C signature of every exported kernel: `void f(void *const *args, int64_t T, int64_t p0)`.
public typealias KernelEntryPoint = @convention(c) (UnsafePointer<UnsafeMutableRawPointer?>?, Int64, Int64) -> Void

/// An in-process ORC LLJIT for kernel modules, targeting the host CPU with LLVM's aggressive
/// code generation level. The runtime symbols generated code calls (`tfc_parallel_for`,
/// `tfc_get_num_threads`, `tfc_thread_scratch`, ...) are defined as absolute symbols taken
/// from this binary, and every other process symbol (libm, libc) is visible through a
/// dynamic-library search generator.
///
/// Compiled code stays valid as long as the `KernelJIT` lives. Not thread-safe: add modules
/// and look up symbols from one thread at a time (calling compiled kernels is thread-safe).
public final class KernelJIT {
    let jit: LLVMOrcLLJITRef
    public let target: TargetHost
    /// Seconds spent in `add` (optimisation + machine code generation).
    public private(set) var compileSeconds = 0.0

    /// `target` as for `KernelModule` (default: the host with AVX2-shaped code).
    public init(target: TargetHost = .host(.avx2)) throws {
        try LLVMNative.ensure()
        self.target = target
        let builder = LLVMOrcCreateLLJITBuilder()!
        let tm = try target.makeTargetMachine()
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm))
        var j: LLVMOrcLLJITRef?
        try check(LLVMOrcCreateLLJIT(&j, builder), "creating the JIT")
        guard let j else { throw CodegenError("creating the JIT: no instance") }
        jit = j
        let dylib = LLVMOrcLLJITGetMainJITDylib(jit)
        var gen: LLVMOrcDefinitionGeneratorRef?
        try check(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), nil, nil),
                  "creating the process symbol generator")
        LLVMOrcJITDylibAddGenerator(dylib, gen)
        try defineAbsolute(KernelJIT.runtimeSymbols())
    }

    deinit { LLVMOrcDisposeLLJIT(jit) }

    /// The runtime functions generated code may call, with their addresses in this process.
    static func runtimeSymbols() -> [(String, UInt64)] {
        func addr<T>(_ f: T) -> UInt64 { UInt64(UInt(bitPattern: unsafeBitCast(f, to: Int.self))) }
        let parallelFor: @convention(c) (
            (@convention(c) (UnsafeMutableRawPointer?, Int64) -> Void)?, UnsafeMutableRawPointer?, Int64) -> Void = tfc_parallel_for
        let getThreads: @convention(c) () -> Int32 = tfc_get_num_threads
        let scratch: @convention(c) (Int) -> UnsafeMutableRawPointer? = tfc_thread_scratch
        let threadIndex: @convention(c) () -> Int32 = tfc_thread_index
        let cosf64: @convention(c) (Double) -> Double = cos
        let sinf64: @convention(c) (Double) -> Double = sin
        let erff32: @convention(c) (Float) -> Float = erff
        let expf32: @convention(c) (Float) -> Float = expf
        return [("tfc_parallel_for", addr(parallelFor)), ("tfc_get_num_threads", addr(getThreads)),
                ("tfc_thread_scratch", addr(scratch)), ("tfc_thread_index", addr(threadIndex)),
                ("cos", addr(cosf64)), ("sin", addr(sinf64)), ("erff", addr(erff32)), ("expf", addr(expf32))]
    }

    /// Defines `symbols` (name, address) in the main JITDylib.
    public func defineAbsolute(_ symbols: [(String, UInt64)]) throws {
        var pairs: [LLVMJITCSymbolMapPair] = symbols.map { name, address in
            let flags = LLVMJITSymbolFlags(GenericFlags: UInt8(LLVMJITSymbolGenericFlagsExported.rawValue | LLVMJITSymbolGenericFlagsCallable.rawValue), TargetFlags: 0)
            return LLVMJITCSymbolMapPair(Name: LLVMOrcLLJITMangleAndIntern(jit, name), Sym: LLVMJITEvaluatedSymbol(Address: address, Flags: flags))
        }
        let mu = pairs.withUnsafeMutableBufferPointer { LLVMOrcAbsoluteSymbols($0.baseAddress, $0.count) }
        if let err = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(jit), mu) {
            LLVMOrcDisposeMaterializationUnit(mu)
            try check(err, "defining runtime symbols")
        }
    }

    /// Optimises `module` (if not yet) and adds it to the JIT; the module cannot be used
    /// afterwards except through `address(of:)`. Machine code is generated on first lookup.
    ///
    /// Kernel symbols are global to the JIT: a module whose kernels are all defined already
    /// (the same specs compiled before) is skipped; one that redefines only some of them is
    /// an error.
    public func add(_ module: KernelModule) throws {
        let names = Set(module.kernelNames)
        let known = names.intersection(symbols)
        if !known.isEmpty {
            if known == names { return }
            throw CodegenError("module \(module.name) redefines kernels already in the JIT: \(known.sorted().joined(separator: ", "))")
        }
        let start = monotonicSeconds()
        try module.optimize()
        let tsm = try module.takeModule()
        // The JIT owns the module from here on, even when adding fails.
        try check(LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm), "adding module \(module.name) to the JIT")
        symbols.formUnion(names)
        compileSeconds += monotonicSeconds() - start
    }

    /// The kernel symbols added so far.
    public private(set) var symbols: Set<String> = []

    func noteSymbols(_ names: [String]) { symbols.formUnion(names) }

    /// The address of a JIT-compiled symbol (compiles its module on first use).
    public func address(of symbol: String) throws -> UnsafeRawPointer {
        let start = monotonicSeconds()
        defer { compileSeconds += monotonicSeconds() - start }
        var addr: LLVMOrcExecutorAddress = 0
        try check(LLVMOrcLLJITLookup(jit, &addr, symbol), "looking up \(symbol)")
        guard let p = UnsafeRawPointer(bitPattern: UInt(addr)) else { throw CodegenError("\(symbol) has address 0") }
        return p
    }

    /// The entry point of an exported kernel.
    public func kernel(_ symbol: String) throws -> KernelEntryPoint {
        unsafeBitCast(try address(of: symbol), to: KernelEntryPoint.self)
    }
}

/// A JIT-compiled kernel: its symbol and entry point.
public struct CompiledKernel {
    public let name: String
    public let entry: KernelEntryPoint

    public init(name: String, entry: @escaping KernelEntryPoint) {
        self.name = name
        self.entry = entry
    }

    /// Calls the kernel with `args` (its pointer list), `rows` (T) and `position` (p0).
    public func callAsFunction(_ args: [UnsafeMutableRawPointer?], rows: Int, position: Int = 0) {
        args.withUnsafeBufferPointer { entry($0.baseAddress, Int64(rows), Int64(position)) }
    }
}

extension KernelJIT {
    /// Compiles one kernel: returns it directly when a kernel of the same symbol was compiled
    /// before, otherwise emits it (`emit` adds it to a fresh module and returns its symbol).
    /// To compile many kernels at once (a whole model), add them to one `KernelModule`.
    public func compile(symbol: String, _ emit: (KernelModule) throws -> String) throws -> CompiledKernel {
        if !symbols.contains(symbol) {
            let m = try KernelModule(name: symbol, target: target)
            let s = try emit(m)
            precondition(s == symbol, "emitted \(s), expected \(symbol)")
            try add(m)
        }
        return CompiledKernel(name: symbol, entry: try kernel(symbol))
    }

    public func pattention(_ spec: PattentionKernelSpec) throws -> CompiledKernel {
        try compile(symbol: spec.symbol) { $0.addPattention(spec) }
    }
    public func attention(_ spec: AttentionKernelSpec) throws -> CompiledKernel {
        try compile(symbol: spec.symbol) { $0.addAttention(spec) }
    }
    public func gemm(_ spec: GemmKernelSpec) throws -> CompiledKernel {
        try compile(symbol: spec.symbol) { $0.addGemm(spec) }
    }
    public func layerNorm(_ spec: LayerNormKernelSpec) throws -> CompiledKernel {
        try compile(symbol: spec.symbol) { $0.addLayerNorm(spec) }
    }
}
