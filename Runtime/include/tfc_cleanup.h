// Files to remove when the process is killed by a signal: the temporary files of outputs being
// written and tfc compile's work directory, so an interrupted command (Ctrl-C, kill) leaves
// nothing behind. The handler (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE) removes every
// registered path, signals the registered child processes, restores the default action and
// re-raises the signal, so the process still dies of it. Signals the process ignores (nohup)
// stay ignored. Registering is thread-safe; the handler only makes async-signal-safe calls.
#pragma once
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// Registers a file (or, with is_directory, a directory: removed after the files, with any
// unregistered file directly in it, such as a C compiler's temporary files)
// and returns its slot, or -1 when the registry is full or the path too long (the path is then
// simply not cleaned up). Installs the signal handlers on first use.
int tfc_cleanup_add(const char *path, int is_directory);

// Forgets a slot from tfc_cleanup_add (the file was renamed into place or removed). -1: no-op.
void tfc_cleanup_remove(int slot);

// A child process to send the same signal to (a C compiler writing into a registered path): to
// its process group when it leads one (so the tools it started stop too), else to it alone.
// Returns its slot, or -1.
int tfc_cleanup_add_child(pid_t pid);
void tfc_cleanup_remove_child(int slot);

// Brackets starting a child: tfc_cleanup_spawning(1) before fork/spawn, (0) once it is
// registered (or failed to start). A signal meanwhile waits for it; the handler then stops the
// children's process groups and waits (up to a second) for them to end before removing files.
void tfc_cleanup_spawning(int starting);

// Whether a handled signal arrived (the handler, on some thread, is cleaning up and the process is
// about to die of it). An output is not put in place then: the writer calls
// tfc_cleanup_await_termination, which never returns.
int tfc_cleanup_terminating(void);
void tfc_cleanup_await_termination(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif
