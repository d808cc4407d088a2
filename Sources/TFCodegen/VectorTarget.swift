/// The vector instruction set generated kernels are written against: how many fp32 lanes a
/// vector register holds, how many registers a micro-kernel may fill, and which CPU features the
/// code needs. Emission (`IRGen`), schedules (`GemmSchedule`), weight panels (`PanelLayout`)
/// and the KV-cache layout (`AttentionKernelSpec.keyBlock`) all take their widths from here.
///
/// - `avx2`: 8 lanes in 16 `ymm` registers, AVX2 + FMA. It is also the shape for CPUs without
///   AVX (LLVM splits the 8-wide vectors into SSE halves), so every x86-64 level gets one.
/// - `avx512`: 16 lanes in 32 `zmm` registers (AVX-512 F/BW/DQ/VL); tails use `k`-masks.
public struct VectorTarget: Hashable, Sendable, CustomStringConvertible {
    public enum ISA: String, CaseIterable, Hashable, Sendable {
        case avx2, avx512
    }

    public let isa: ISA
    /// fp32 lanes per vector register.
    public let lanes: Int
    /// Architectural vector registers (the most a register tile may use: `GemmSchedule.validate`).
    public let registers: Int
    /// Registers the cost model lets a chosen tile use: LLVM 14's allocator starts spilling
    /// accumulators of the unrolled AVX-512 k loop from about 28 live `zmm` (counted in the
    /// 150M's score GEMM: 14x32 (31 registers) 9 spills, 9x48 (31) 28, 6x64 (29) 8, 8x48 (28) 3,
    /// 12x32 (27) none); AVX2's 6x16 uses 15 of 16 as it always did.
    public let tileRegisters: Int
    /// LLVM feature names a CPU needs to run this target's code at full width.
    public let requiredFeatures: [String]
    /// The x86-64 level (psABI) whose CPU name an ahead-of-time build of this target uses.
    public let portableCPU: String

    public static let avx2 = VectorTarget(isa: .avx2, lanes: 8, registers: 16, tileRegisters: 16, requiredFeatures: ["avx", "avx2", "fma"],
                                          portableCPU: "x86-64-v3")
    public static let avx512 = VectorTarget(isa: .avx512, lanes: 16, registers: 32, tileRegisters: 27,
                                            requiredFeatures: ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"],
                                            portableCPU: "x86-64-v4")
    public static let all: [VectorTarget] = [.avx2, .avx512]

    public init(_ isa: ISA) {
        switch isa {
        case .avx2: self = .avx2
        case .avx512: self = .avx512
        }
    }

    private init(isa: ISA, lanes: Int, registers: Int, tileRegisters: Int, requiredFeatures: [String], portableCPU: String) {
        self.isa = isa
        self.lanes = lanes
        self.registers = registers
        self.tileRegisters = tileRegisters
        self.requiredFeatures = requiredFeatures
        self.portableCPU = portableCPU
    }

    public var name: String { isa.rawValue }
    public var description: String { "\(name) (\(lanes) fp32 lanes, \(registers) registers)" }
    /// Bits per vector register (LLVM's `prefer-vector-width`).
    public var bits: Int { lanes * 32 }

    /// The widest target whose features `has` reports (AVX-512 where present, AVX2 otherwise:
    /// the 8-wide shape is also what CPUs without AVX run, split by LLVM).
    public static func best(has: (String) -> Bool) -> VectorTarget {
        avx512.requiredFeatures.allSatisfy(has) ? .avx512 : .avx2
    }

    /// The targets `host` can execute (tests run generated code for each of them).
    public static func runnable(on host: TargetHost = .host) -> [VectorTarget] { all.filter { $0.missing(has: host.has).isEmpty } }

    /// The features in `requiredFeatures` that `has` does not report.
    public func missing(has: (String) -> Bool) -> [String] { requiredFeatures.filter { !has($0) } }

    /// The option values `--target-cpu` accepts for the JIT.
    public static let optionValues = ["native", "avx2", "avx512"]

    /// Resolves a `--target-cpu` value for code that runs on `host`: `native` (or `host`) is the
    /// host's best; a named target the host cannot execute is refused with a one-line reason.
    public static func resolve(_ name: String, on host: TargetHost = .host) throws -> VectorTarget {
        if name == "native" || name == "host" { return best(has: host.has) }
        guard let isa = ISA(rawValue: name) else {
            throw CodegenError("--target-cpu: unknown target '\(name)'; use \(optionValues.joined(separator: ", "))")
        }
        let target = VectorTarget(isa)
        let lacking = target.missing(has: host.has)
        if !lacking.isEmpty {
            throw CodegenError("--target-cpu \(name): this CPU (\(host.cpu)) lacks \(lacking.joined(separator: ", ")), so it cannot run \(name) code")
        }
        return target
    }
}
