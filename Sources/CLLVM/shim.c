#include "CLLVM.h"
#include <llvm/Config/llvm-config.h>

int tfc_llvm_initialize_native(void) {
    if (LLVMInitializeNativeTarget()) return 1;
    if (LLVMInitializeNativeAsmPrinter()) return 2;
    if (LLVMInitializeNativeAsmParser()) return 3;
    return 0;
}

int tfc_llvm_initialize_all_targets(void) {
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers();
    return 0;
}

char *tfc_llvm_host_triple(void) { return LLVMGetDefaultTargetTriple(); }
char *tfc_llvm_host_cpu(void) { return LLVMGetHostCPUName(); }
char *tfc_llvm_host_features(void) { return LLVMGetHostCPUFeatures(); }

const char *tfc_llvm_version_string(void) { return LLVM_VERSION_STRING; }
