// Inputs are checked before they are opened: a FIFO would block forever and a device never
// ends, so only regular files are read. Shared by tfc (specs, weights, reports) and compiled
// programs (their weights).
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// 0 if PATH is a readable regular file (after symbolic links); else -1 and the reason, without
// the path, in err: "no such file", "is a directory", "is a FIFO (named pipe), not a regular
// file", "is a character device, not a regular file", "permission denied", ...
int tfc_input_check(const char *path, char *err, size_t errlen);

// tfc_input_check, then open(2) read-only without blocking and the type checked again on the
// open file (it may have been replaced in between). A file descriptor, or -1 with the reason.
int tfc_input_open(const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
