// The thread pool that generated kernels fan out on (pthreads only).
//
// One persistent pool per process. `tfc_parallel_for` runs `fn(ctx, i)` for every i in
// [0, count): the calling thread takes part, the other participants are pool workers, and
// indices are handed out one at a time from an atomic counter (so uneven work balances).
// Workers spin briefly after a job (the next parallel region of a forward pass usually
// follows within microseconds; 100 us, or TFC_SPIN_US from the environment) and then sleep
// on a condition variable.
//
// Calls from inside a running `fn` (nested parallelism), and calls made while another
// thread's job is running, execute serially on the calling thread: never deadlock, never
// oversubscribe.
#pragma once
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// The most threads (workers + caller) a job can use.
#define TFC_MAX_THREADS 256

// Sets the number of threads a job uses (the caller included). n <= 0 means one per online
// CPU; values above TFC_MAX_THREADS are clamped. Takes effect at the next job; workers are
// started lazily and never stopped (extra ones just idle).
void tfc_set_num_threads(int n);
// The current setting (>= 1). Defaults to the number of online CPUs, or to the environment
// variable TFC_NUM_THREADS when it is set to a positive integer.
int tfc_get_num_threads(void);

// Runs fn(ctx, index) for index in [0, count), in parallel, and returns when all are done.
// The order of calls is unspecified; fn must be safe to run concurrently for distinct indices.
void tfc_parallel_for(void (*fn)(void *ctx, int64_t index), void *ctx, int64_t count);

// The id of the calling thread within the current job: 0 for the caller of
// tfc_parallel_for (and for any thread outside a job), 1... for workers.
int tfc_thread_index(void);

// A per-thread scratch buffer of at least `bytes` bytes, 64-byte aligned. Its contents are
// not preserved when it grows; it stays valid until the same thread asks for more. Generated
// kernels use it for their cache-resident blocks (packed rows, score blocks). NULL when
// out of memory.
void *tfc_thread_scratch(size_t bytes);

#ifdef __cplusplus
}
#endif
