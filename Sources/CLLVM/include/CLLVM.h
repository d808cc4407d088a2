// The C shim over LLVM 14's C API (llvm-c) that TFCodegen builds on.
// The llvm-c headers below are all tfc uses; the functions declared here wrap what llvm-c
// only offers as static inline functions or macros (invisible to Swift).
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <llvm-c/Core.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#ifdef __cplusplus
extern "C" {
#endif

// LLVMInitializeNativeTarget + AsmPrinter + AsmParser (+ the disassembler when present).
// Returns 0 on success. Safe to call more than once.
int tfc_llvm_initialize_native(void);

// Every target LLVM was built with (for cross-compiling objects). Returns 0.
int tfc_llvm_initialize_all_targets(void);

// The host's target triple, CPU name and feature string; free with LLVMDisposeMessage.
char *tfc_llvm_host_triple(void);
char *tfc_llvm_host_cpu(void);
char *tfc_llvm_host_features(void);

// The LLVM version this shim was compiled against, e.g. "14.0.6".
const char *tfc_llvm_version_string(void);

#ifdef __cplusplus
}
#endif
