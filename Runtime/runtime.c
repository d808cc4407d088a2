#include "tfc_runtime.h"
