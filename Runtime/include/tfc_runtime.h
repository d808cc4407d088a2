// tfc runtime: the C library that generated code calls and that compiled models link against.
// Depends only on libc, libm and pthreads (no OpenBLAS, no LLVM), so `tfc compile` output runs anywhere.
#pragma once
#include "tfc_safetensors.h"
#include "tfc_memory.h"
#include "tfc_threadpool.h"
#include "tfc_random.h"
#include "tfc_sampling.h"
#include "tfc_input_file.h"
#include "tfc_output_file.h"
#include "tfc_cleanup.h"
