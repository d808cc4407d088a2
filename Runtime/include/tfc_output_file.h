// The output policy, for compiled programs (docs/compile.md "Outputs"); tfc's commands follow the
// same rules (Sources/TFWeights/OutputPolicy.swift, README "Outputs"):
//   - an output that is one of the inputs (the same device and inode: through symbolic links
//     and hard links too) is refused, as are a directory, a socket and a read-only file;
//   - a symbolic link is written through to its target;
//   - a regular file is written under a temporary name beside it and renamed over it, keeping its
//     mode (and, as root, its owner); the temporary file is removed if the program is killed;
//   - a file with several hard links and a non-regular file (a device such as /dev/null, a FIFO)
//     are written in place, never renamed over.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// An input of the program an output must not replace: what it is ("weights file") and its path.
typedef struct {
    const char *what;
    const char *path;
} tfc_output_input;

// 0 if the program may write PATH (given with option FLAG, e.g. "--logits"); else -1 and a one-line
// reason in err, starting with the path.
int tfc_output_check(const char *flag, const char *path, const tfc_output_input *inputs, int ninputs, char *err, size_t errlen);

// Checks as tfc_output_check, then writes the concatenation of parts[0..nparts) to PATH by the
// policy above. 0, or -1 with the reason in err (nothing replaced).
int tfc_output_write(const char *flag, const char *path, const tfc_output_input *inputs, int ninputs,
                     const void *const *parts, const size_t *sizes, int nparts, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
