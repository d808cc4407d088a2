#pragma once
#include <llvm-c/Core.h>
