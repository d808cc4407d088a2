// The runtime thread pool: see include/tfc_threadpool.h.
//
// Protocol. A job lives on the caller's stack. The caller publishes a pointer to it and bumps
// a generation counter; workers notice the new generation (spinning, or woken from a condition
// variable), register in `g_active`, load the job pointer and take indices from the job's
// atomic counter. The caller takes indices too, waits until every index is done, retracts the
// job pointer and then waits for `g_active` to drain, so no worker can touch the job after
// the caller returns. Registering before loading the pointer (both seq_cst) is what makes the
// last step safe: a worker that registers after the caller saw `g_active == 0` also loads the
// pointer after it was cleared.
#define _GNU_SOURCE
#include "tfc_threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TFC_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define TFC_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define TFC_CPU_RELAX() ((void)0)
#endif

typedef struct tfc_job {
    void (*fn)(void *ctx, int64_t index);
    void *ctx;
    int64_t count;
    int nthreads;                 // participants, the caller included
    _Atomic int64_t next;         // next index to hand out
    _Atomic int64_t done;         // indices finished
    _Atomic int caller_sleeping;  // the caller waits on g_done_cv
} tfc_job;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;      // sleeping and waking
static pthread_cond_t g_wake_cv = PTHREAD_COND_INITIALIZER;   // workers: a new generation
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;   // caller: the job is done
static pthread_mutex_t g_job_mu = PTHREAD_MUTEX_INITIALIZER;  // one job at a time

static _Atomic int g_num_threads = 0;  // 0: not read from the environment yet
static int g_nworkers = 0;             // started workers (guarded by g_job_mu)
static _Atomic(tfc_job *) g_job = NULL;
static _Atomic uint64_t g_generation = 0;
static _Atomic int g_active = 0;       // workers between registering and leaving a job
static _Atomic int g_sleepers = 0;     // workers blocked on g_wake_cv
static long g_spin_ns = 100000;        // how long a worker spins before sleeping

static __thread int t_index = 0;
static __thread int t_in_job = 0;

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > TFC_MAX_THREADS ? TFC_MAX_THREADS : (int)n);
}

static int clamp_threads(int n) {
    if (n <= 0) return online_cpus();
    return n > TFC_MAX_THREADS ? TFC_MAX_THREADS : n;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void tfc_set_num_threads(int n) { atomic_store(&g_num_threads, clamp_threads(n)); }

int tfc_get_num_threads(void) {
    int n = atomic_load_explicit(&g_num_threads, memory_order_relaxed);
    if (n > 0) return n;
    const char *env = getenv("TFC_NUM_THREADS");
    int want = env ? atoi(env) : 0;
    const char *spin = getenv("TFC_SPIN_US");
    if (spin && atoi(spin) >= 0) g_spin_ns = (long)atoi(spin) * 1000;
    int expected = 0;
    atomic_compare_exchange_strong(&g_num_threads, &expected, clamp_threads(want));
    return atomic_load(&g_num_threads);
}

int tfc_thread_index(void) { return t_index; }

// Runs indices of `job` until none is left. Returns after the thread's last index.
static void run_indices(tfc_job *job, bool is_caller) {
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (i >= job->count) return;
        job->fn(job->ctx, i);
        int64_t finished = atomic_fetch_add(&job->done, 1) + 1;
        if (finished == job->count && !is_caller && atomic_load(&job->caller_sleeping)) {
            pthread_mutex_lock(&g_mu);
            pthread_cond_broadcast(&g_done_cv);
            pthread_mutex_unlock(&g_mu);
        }
    }
}

// The generation current when each worker was started: a worker must not miss the job
// published right after its creation, even if it is scheduled only after that job began.
static uint64_t g_start_generation[TFC_MAX_THREADS];

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    t_index = id;
    uint64_t seen = g_start_generation[id];
    for (;;) {
        uint64_t gen = atomic_load(&g_generation);
        if (gen == seen) {
            int64_t deadline = now_ns() + g_spin_ns;
            int spins = 0;
            while ((gen = atomic_load(&g_generation)) == seen) {
                TFC_CPU_RELAX();
                if (++spins % 64 == 0 && now_ns() > deadline) {
                    pthread_mutex_lock(&g_mu);
                    atomic_fetch_add(&g_sleepers, 1);
                    while ((gen = atomic_load(&g_generation)) == seen)
                        pthread_cond_wait(&g_wake_cv, &g_mu);
                    atomic_fetch_sub(&g_sleepers, 1);
                    pthread_mutex_unlock(&g_mu);
                    break;
                }
            }
        }
        seen = gen;
        atomic_fetch_add(&g_active, 1);
        tfc_job *job = atomic_load(&g_job);
        if (job && id < job->nthreads) {
            t_in_job = 1;
            run_indices(job, false);
            t_in_job = 0;
        }
        atomic_fetch_sub(&g_active, 1);
    }
    return NULL;
}

// Starts workers 1..n-1 that do not exist yet. Called with g_job_mu held.
static void ensure_workers(int nthreads) {
    while (g_nworkers < nthreads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        g_start_generation[g_nworkers + 1] = atomic_load(&g_generation);
        int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)(g_nworkers + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        g_nworkers += 1;
    }
}

static void run_serially(void (*fn)(void *, int64_t), void *ctx, int64_t count) {
    for (int64_t i = 0; i < count; i++) fn(ctx, i);
}

void tfc_parallel_for(void (*fn)(void *ctx, int64_t index), void *ctx, int64_t count) {
    if (count <= 0) return;
    int nthreads = tfc_get_num_threads();
    if (count == 1 || nthreads <= 1 || t_in_job) {
        run_serially(fn, ctx, count);
        return;
    }
    if (pthread_mutex_trylock(&g_job_mu) != 0) {  // another thread's job is running
        run_serially(fn, ctx, count);
        return;
    }
    ensure_workers(nthreads);
    if (g_nworkers < nthreads - 1) nthreads = g_nworkers + 1;
    if (nthreads > count) nthreads = (int)count;

    tfc_job job;
    job.fn = fn;
    job.ctx = ctx;
    job.count = count;
    job.nthreads = nthreads;
    atomic_init(&job.next, 0);
    atomic_init(&job.done, 0);
    atomic_init(&job.caller_sleeping, 0);

    atomic_store(&g_job, &job);
    atomic_fetch_add(&g_generation, 1);
    if (atomic_load(&g_sleepers) > 0) {
        pthread_mutex_lock(&g_mu);
        pthread_cond_broadcast(&g_wake_cv);
        pthread_mutex_unlock(&g_mu);
    }

    int saved_index = t_index;
    t_index = 0;
    t_in_job = 1;
    run_indices(&job, true);
    t_in_job = 0;
    t_index = saved_index;

    // Wait for the indices other threads are still running.
    if (atomic_load(&job.done) < count) {
        int64_t deadline = now_ns() + g_spin_ns;
        int spins = 0;
        while (atomic_load(&job.done) < count) {
            TFC_CPU_RELAX();
            if (++spins % 64 == 0 && now_ns() > deadline) {
                pthread_mutex_lock(&g_mu);
                atomic_store(&job.caller_sleeping, 1);
                while (atomic_load(&job.done) < count) pthread_cond_wait(&g_done_cv, &g_mu);
                pthread_mutex_unlock(&g_mu);
                break;
            }
        }
    }
    // Retract the job and wait until no worker can still be looking at it.
    atomic_store(&g_job, NULL);
    for (int spins = 0; atomic_load(&g_active) > 0; spins++) {
        if (spins < 4096) TFC_CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&g_job_mu);
}

static __thread void *t_scratch = NULL;
static __thread size_t t_scratch_bytes = 0;

void *tfc_thread_scratch(size_t bytes) {
    if (bytes <= t_scratch_bytes) return t_scratch;
    // Large buffers: 2 MiB aligned and advised to use transparent huge pages (fewer TLB misses).
    size_t huge = (size_t)2 << 20;
    int large = bytes >= huge;
    size_t want = large ? (bytes + huge - 1) & ~(huge - 1) : (bytes + 65535) & ~(size_t)65535;
    void *p = NULL;
    if (posix_memalign(&p, large ? huge : 64, want) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (large) madvise(p, want, MADV_HUGEPAGE);
#endif
    free(t_scratch);
    t_scratch = p;
    t_scratch_bytes = want;
    return p;
}
