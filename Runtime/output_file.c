// The output policy for compiled programs (include/tfc_output_file.h).
#define _GNU_SOURCE
#include "tfc_output_file.h"
#include "tfc_cleanup.h"
#include "error_text.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum method { CREATE, REPLACE, IN_PLACE };

// What the check decided, for the write.
typedef struct {
    char destination[PATH_MAX];  // PATH with symbolic links followed
    char directory[PATH_MAX];
    enum method method;
    struct stat existing;        // valid unless CREATE
} plan;

// Writes the message and gives this file's failure return (-1).
#define failf(err, errlen, ...) tfc_error_text(-1, err, errlen, __VA_ARGS__)

static void directory_of(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, n, ".");
    else if (slash == path) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(slash - path), path);
}

// Follows symbolic links in the last component; 0, or -1 (a loop, a name too long).
static int follow_links(const char *path, char *out, size_t n) {
    if (snprintf(out, n, "%s", path) >= (int)n) return -1;
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(out, &st) != 0 || !S_ISLNK(st.st_mode)) return 0;
        char target[PATH_MAX];
        ssize_t len = readlink(out, target, sizeof target - 1);
        if (len < 0) return 0;
        target[len] = 0;
        if (target[0] == '/') {
            if (snprintf(out, n, "%s", target) >= (int)n) return -1;
        } else {
            char dir[PATH_MAX];
            directory_of(out, dir, sizeof dir);
            if (snprintf(out, n, "%s/%s", dir, target) >= (int)n) return -1;
        }
    }
    return -1;
}

static int decide(plan *p, const char *flag, const char *path, const tfc_output_input *inputs, int ninputs, char *err, size_t errlen) {
    if (!*path) return failf(err, errlen, "%s: an empty file name", flag);
    if (stat(path, &p->existing) == 0) {  // through every link, /dev/stdout's too
        for (int i = 0; i < ninputs; i++) {
            struct stat in;
            if (inputs[i].path && stat(inputs[i].path, &in) == 0 && in.st_dev == p->existing.st_dev && in.st_ino == p->existing.st_ino) {
                if (strcmp(inputs[i].path, path) == 0)
                    return failf(err, errlen, "%s: %s is the input %s; write to another file", path, flag, inputs[i].what);
                return failf(err, errlen, "%s: %s is the input %s %s (the same file); write to another file", path, flag, inputs[i].what, inputs[i].path);
            }
        }
        mode_t mode = p->existing.st_mode;
        if (S_ISDIR(mode)) return failf(err, errlen, "%s: %s names a directory; give a file name", path, flag);
        if (S_ISSOCK(mode)) return failf(err, errlen, "%s: %s names a socket; cannot write to it", path, flag);
        if ((mode & 0222) == 0 || access(path, W_OK) != 0)
            return failf(err, errlen, "%s: %s is read-only; not overwritten (write to another file, or make it writable)", path, flag);
        // A regular file with one name is replaced by rename, at the end of its links; anything else
        // (a device, a FIFO, more names, a file only a /proc link reaches) is written in place.
        struct stat real;
        if (!S_ISREG(mode) || p->existing.st_nlink > 1 || follow_links(path, p->destination, sizeof p->destination) != 0 ||
            lstat(p->destination, &real) != 0 || real.st_dev != p->existing.st_dev || real.st_ino != p->existing.st_ino) {
            p->method = IN_PLACE;
            snprintf(p->destination, sizeof p->destination, "%s", path);
            return 0;
        }
        p->method = REPLACE;
        directory_of(p->destination, p->directory, sizeof p->directory);
    } else {
        if (follow_links(path, p->destination, sizeof p->destination) != 0)
            return failf(err, errlen, "%s: %s: too many levels of symbolic links", path, flag);
        p->method = CREATE;  // a link to nothing: its target is created
        directory_of(p->destination, p->directory, sizeof p->directory);
        struct stat dir;
        if (stat(p->directory, &dir) != 0) return failf(err, errlen, "%s: %s: the directory %s does not exist", path, flag, p->directory);
        if (!S_ISDIR(dir.st_mode)) return failf(err, errlen, "%s: %s: %s is not a directory", path, flag, p->directory);
    }
    if (access(p->directory, W_OK | X_OK) != 0)
        return failf(err, errlen, "%s: %s: cannot create a file in %s: %s", path, flag, p->directory, strerror(errno));
    return 0;
}

int tfc_output_check(const char *flag, const char *path, const tfc_output_input *inputs, int ninputs, char *err, size_t errlen) {
    plan p;
    return decide(&p, flag, path, inputs, ninputs, err, errlen);
}

static int write_all(int fd, const void *const *parts, const size_t *sizes, int nparts) {
    for (int i = 0; i < nparts; i++) {
        const char *q = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t n = write(fd, q, left < (1u << 30) ? left : (1u << 30));
            if (n < 0) {
                if (errno == EINTR) continue;
                return -1;
            }
            q += n;
            left -= (size_t)n;
        }
    }
    return 0;
}

int tfc_output_write(const char *flag, const char *path, const tfc_output_input *inputs, int ninputs,
                     const void *const *parts, const size_t *sizes, int nparts, char *err, size_t errlen) {
    plan p;
    if (decide(&p, flag, path, inputs, ninputs, err, errlen) != 0) return -1;
    if (tfc_cleanup_terminating()) tfc_cleanup_await_termination();
    if (p.method == IN_PLACE) {
        // A device or FIFO is written as it is (opening a FIFO waits for its reader).
        int fd = open(p.destination, O_WRONLY | O_CLOEXEC | (S_ISREG(p.existing.st_mode) ? O_TRUNC : 0));
        if (fd < 0) return failf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        int bad = write_all(fd, parts, sizes, nparts) != 0;
        int code = errno;
        if (close(fd) != 0 && !bad) { bad = 1; code = errno; }
        return bad ? failf(err, errlen, "%s: cannot write: %s", path, strerror(code)) : 0;
    }

    const char *base = strrchr(p.destination, '/');
    base = base ? base + 1 : p.destination;
    char temporary[PATH_MAX];
    static unsigned counter;
    int fd = -1, slot = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        if (snprintf(temporary, sizeof temporary, "%s/.%s.tmp-%d-%u", p.directory, base, (int)getpid(),
                     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED)) >= (int)sizeof temporary)
            return failf(err, errlen, "%s: %s: the file name is too long", path, flag);
        slot = tfc_cleanup_add(temporary, 0);  // before it exists: no moment in which a signal leaves it
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) break;
        int code = errno;
        tfc_cleanup_remove(slot);
        if (code != EEXIST) return failf(err, errlen, "%s: cannot create a file in %s: %s", path, p.directory, strerror(code));
    }
    if (fd < 0) return failf(err, errlen, "%s: cannot create a file in %s: %s", path, p.directory, strerror(EEXIST));
    int bad = write_all(fd, parts, sizes, nparts) != 0;
    int code = errno;
    if (!bad && p.method == REPLACE) {
        // The replaced file's permissions (exactly: not masked by the umask) and, as root, owner.
        if (fchmod(fd, p.existing.st_mode & 07777) != 0) { bad = 1; code = errno; }
        if (!bad && geteuid() == 0 && fchown(fd, p.existing.st_uid, p.existing.st_gid) != 0) { /* keep root's */ }
    }
    if (close(fd) != 0 && !bad) { bad = 1; code = errno; }
    if (tfc_cleanup_terminating()) tfc_cleanup_await_termination();  // interrupted: never put in place
    if (!bad && rename(temporary, p.destination) != 0) { bad = 1; code = errno; }
    if (bad) unlink(temporary);
    tfc_cleanup_remove(slot);
    return bad ? failf(err, errlen, "%s: cannot write: %s", path, strerror(code)) : 0;
}
