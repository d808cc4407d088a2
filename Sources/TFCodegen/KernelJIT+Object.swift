import CLLVM

extension KernelJIT {
    /// Adds an already compiled object file (from `KernelModule.objectFile()` or the disk cache)
    /// and records the kernel symbols it defines.
    public func addObject(_ bytes: [UInt8], name: String, symbols defined: [String]) throws {
        let buffer = bytes.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { LLVMCreateMemoryBufferWithMemoryRangeCopy($0.baseAddress, $0.count, name) }
        }
        // The JIT owns the buffer from here on, even when adding fails.
        try check(LLVMOrcLLJITAddObjectFile(jit, LLVMOrcLLJITGetMainJITDylib(jit), buffer), "adding object \(name) to the JIT")
        noteSymbols(defined)
    }
}
