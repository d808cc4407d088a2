// The interrupt-cleanup registry (include/tfc_cleanup.h). Paths live in fixed static slots so
// the signal handler reads them without locks or allocation; a slot is published (state 2) only
// once its path is complete, and retired (state 0) before it can be reused.
#define _GNU_SOURCE
#include "tfc_cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 64
#define PATH_BYTES 4096
#define CHILDREN 8

enum { FREE = 0, FILLING = 1, LIVE = 2 };

static struct {
    int state;
    int is_directory;
    char path[PATH_BYTES];
} g_slots[SLOTS];
static pid_t g_children[CHILDREN];
static int g_spawning;  // children being started (tfc_cleanup_spawning)
static volatile sig_atomic_t g_terminating;  // the handler has started: the process is dying

static const int g_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
#define SIGNAL_COUNT (int)(sizeof g_signals / sizeof g_signals[0])
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

// Unlinks every file directly in `dir`, registered or not: a tool tfc runs (the C compiler's
// driver) keeps its own temporary files there, and may not have removed them when it was
// stopped. Raw getdents64 and unlinkat only, which are async-signal-safe (opendir is not).
static void empty_directory(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    static char buffer[8192];  // only the handler uses it, and it runs once
    for (int round = 0; round < 64; round++) {
        long n = syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (n <= 0) break;
        for (long at = 0; at < n;) {
            struct linux_dirent64 {
                unsigned long long d_ino;
                long long d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *entry = (struct linux_dirent64 *)(buffer + at);
            const char *name = entry->d_name;
            if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))) unlinkat(fd, name, 0);
            at += entry->d_reclen;
        }
    }
    close(fd);
}

static void remove_all(void) {
    // Files first, newest first; then the directories that held them, with any other file in them.
    for (int pass = 0; pass < 2; pass++) {
        for (int i = SLOTS - 1; i >= 0; i--) {
            if (__atomic_load_n(&g_slots[i].state, __ATOMIC_ACQUIRE) != LIVE) continue;
            if (g_slots[i].is_directory != pass) continue;
            if (pass == 0) {
                unlink(g_slots[i].path);
            } else {
                empty_directory(g_slots[i].path);
                rmdir(g_slots[i].path);
            }
        }
    }
}

static void pause_10ms(void) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

// Stops the registered children and waits (up to ten seconds: on a loaded machine the C
// compiler's driver needs a while to remove its own temporary files once its tools are
// stopped) until they and the tools they started are gone, so none of them leaves or creates a
// file after remove_all.
static void stop_children(int sig) {
    // A child being started on another thread is registered within moments.
    for (int i = 0; i < 100 && __atomic_load_n(&g_spawning, __ATOMIC_ACQUIRE) > 0; i++) pause_10ms();
    pid_t pids[CHILDREN];
    int n = 0;
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = __atomic_load_n(&g_children[i], __ATOMIC_ACQUIRE);
        if (pid <= 0) continue;
        if (kill(-pid, sig) != 0) kill(pid, sig);  // its process group, else the process
        pids[n++] = pid;
    }
    for (int tries = 0; n > 0 && tries < 1000; tries++) {
        int alive = 0;
        for (int i = 0; i < n; i++) {
            waitpid(pids[i], NULL, WNOHANG);  // reap our child, so it stops counting as a member
            if (kill(-pids[i], 0) == 0 || (errno != ESRCH && kill(pids[i], 0) == 0)) alive = 1;
        }
        if (!alive) break;
        pause_10ms();
    }
}

static void on_signal(int sig) {
    int saved = errno;
    g_terminating = 1;
    stop_children(sig);
    remove_all();
    // Die of the signal as if there were no handler: default action, re-raised. It is blocked
    // while the handler runs, so it is delivered (and kills) as soon as the handler returns.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
    errno = saved;
}

static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < SIGNAL_COUNT; i++) sigaddset(&sa.sa_mask, g_signals[i]);
    for (int i = 0; i < SIGNAL_COUNT; i++) {
        struct sigaction old;
        if (sigaction(g_signals[i], NULL, &old) != 0) continue;
        if (old.sa_handler == SIG_IGN) continue;  // nohup, or a parent's choice: keep it
        sigaction(g_signals[i], &sa, NULL);
    }
}

int tfc_cleanup_add(const char *path, int is_directory) {
    pthread_once(&g_once, install);
    size_t n = strlen(path);
    if (n >= PATH_BYTES) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expected = FREE;
        if (!__atomic_compare_exchange_n(&g_slots[i].state, &expected, FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
        memcpy(g_slots[i].path, path, n + 1);
        g_slots[i].is_directory = is_directory != 0;
        __atomic_store_n(&g_slots[i].state, LIVE, __ATOMIC_RELEASE);
        return i;
    }
    return -1;
}

void tfc_cleanup_remove(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    __atomic_store_n(&g_slots[slot].state, FREE, __ATOMIC_RELEASE);
}

int tfc_cleanup_add_child(pid_t pid) {
    pthread_once(&g_once, install);
    for (int i = 0; i < CHILDREN; i++) {
        pid_t expected = 0;
        if (__atomic_compare_exchange_n(&g_children[i], &expected, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return i;
    }
    return -1;
}

void tfc_cleanup_remove_child(int slot) {
    if (slot < 0 || slot >= CHILDREN) return;
    __atomic_store_n(&g_children[slot], 0, __ATOMIC_RELEASE);
}

void tfc_cleanup_spawning(int starting) {
    pthread_once(&g_once, install);
    __atomic_add_fetch(&g_spawning, starting ? 1 : -1, __ATOMIC_ACQ_REL);
}

int tfc_cleanup_terminating(void) { return g_terminating; }

void tfc_cleanup_await_termination(void) {
    for (;;) pause_10ms();  // the handler, on another thread, ends the process
}
