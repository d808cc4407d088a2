import CLLVM

/// An error from LLVM (verification, optimisation, JIT, object emission).
public struct CodegenError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "codegen: \(message)" }
}

/// Converts an `LLVMErrorRef` into a thrown `CodegenError` (no-op for success).
func check(_ err: LLVMErrorRef?, _ what: String) throws {
    guard let err else { return }
    let cmsg = LLVMGetErrorMessage(err)
    let msg = cmsg.map { String(cString: $0) } ?? "unknown error"
    LLVMDisposeErrorMessage(cmsg)
    throw CodegenError("\(what): \(msg)")
}

func takeMessage(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    defer { LLVMDisposeMessage(p) }
    return String(cString: p)
}

/// LLVM's native target, initialised once per process.
enum LLVMNative {
    static let initialized: Bool = {
        tfc_llvm_initialize_native() == 0
    }()
    static func ensure() throws {
        guard initialized else { throw CodegenError("LLVM native target initialisation failed") }
    }
}

/// The machine code is generated for: triple, CPU, feature string, and the vector target the
/// kernels are written against. `host` is the machine tfc runs on (e.g. `x86_64-pc-linux-gnu`,
/// `znver3`, `+avx2,+fma,...`) with its best vector target.
public struct TargetHost: Hashable, CustomStringConvertible, Sendable {
    public var triple: String
    public var cpu: String
    public var features: String
    public var vector: VectorTarget

    /// `vector` defaults to the best one `features` allow.
    public init(triple: String, cpu: String, features: String, vector: VectorTarget? = nil) {
        self.triple = triple
        self.cpu = cpu
        self.features = features
        self.vector = vector ?? VectorTarget.best(has: { name in features.split(separator: ",").contains { $0 == "+\(name)" } })
    }

    /// The host machine as LLVM detects it, with its best vector target.
    public static let host: TargetHost = {
        _ = LLVMNative.initialized
        return TargetHost(triple: takeMessage(tfc_llvm_host_triple()),
                          cpu: takeMessage(tfc_llvm_host_cpu()),
                          features: takeMessage(tfc_llvm_host_features()))
    }()

    /// The host CPU generating code for `vector` (the JIT's target): for AVX2 on an AVX-512
    /// machine the AVX-512 features are turned off, so LLVM's own vectoriser stays 256-bit too.
    /// The caller checks the host can run `vector` (`VectorTarget.resolve`).
    public static func host(_ vector: VectorTarget) -> TargetHost {
        var t = host
        if vector.isa == .avx2 {
            t.features = t.features.split(separator: ",").map { f in
                f.hasPrefix("+avx512") ? "-" + f.dropFirst() : String(f)
            }.joined(separator: ",")
        }
        t.vector = vector
        return t
    }

    /// Code for `vector` on any CPU that has its features: the x86-64 level's CPU name
    /// (`x86-64-v3`, `x86-64-v4`), whatever this machine is (ahead-of-time builds, and emitting the
    /// code of targets this CPU cannot run).
    public static func portable(_ vector: VectorTarget) -> TargetHost {
        TargetHost(triple: host.triple, cpu: vector.portableCPU, features: "", vector: vector)
    }

    /// Whether the feature string enables `name` (e.g. "avx2", "fma").
    public func has(_ name: String) -> Bool {
        features.split(separator: ",").contains { $0 == "+\(name)" }
    }

    public var description: String {
        let interesting = ["avx", "avx2", "fma", "avx512f"].filter(has)
        return "\(triple) cpu=\(cpu) [\(interesting.joined(separator: " "))] vector=\(vector.name)"
    }

    /// The LLVM version tfc's code generator was built against.
    public static var llvmVersion: String { String(cString: tfc_llvm_version_string()) }

    /// A new target machine (caller owns it: `LLVMDisposeTargetMachine`).
    func makeTargetMachine(optLevel: LLVMCodeGenOptLevel = LLVMCodeGenLevelAggressive,
                           relocMode: LLVMRelocMode = LLVMRelocPIC) throws -> LLVMTargetMachineRef {
        try LLVMNative.ensure()
        var target: LLVMTargetRef?
        var errMsg: UnsafeMutablePointer<CChar>?
        if LLVMGetTargetFromTriple(triple, &target, &errMsg) != 0 {
            throw CodegenError("no LLVM target for \(triple): \(takeMessage(errMsg))")
        }
        guard let tm = LLVMCreateTargetMachine(target, triple, cpu, features, optLevel, relocMode, LLVMCodeModelDefault) else {
            throw CodegenError("could not create a target machine for \(triple) \(cpu)")
        }
        return tm
    }

    /// The data layout string for this target.
    func dataLayout() throws -> String {
        let tm = try makeTargetMachine()
        defer { LLVMDisposeTargetMachine(tm) }
        let dl = LLVMCreateTargetDataLayout(tm)
        defer { LLVMDisposeTargetData(dl) }
        return takeMessage(LLVMCopyStringRepOfTargetData(dl))
    }
}
