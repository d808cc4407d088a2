// Input files: regular files only, checked with stat(2) before open(2) (include/tfc_input_file.h).
#define _GNU_SOURCE
#include "tfc_input_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *reason) {
    if (err && errlen) snprintf(err, errlen, "%s", reason);
    return -1;
}

static const char *type_problem(mode_t mode) {
    if (S_ISREG(mode)) return NULL;
    if (S_ISDIR(mode)) return "is a directory";
    if (S_ISFIFO(mode)) return "is a FIFO (named pipe), not a regular file";
    if (S_ISCHR(mode)) return "is a character device, not a regular file";
    if (S_ISBLK(mode)) return "is a block device, not a regular file";
    if (S_ISSOCK(mode)) return "is a socket, not a regular file";
    return "is not a regular file";
}

static int stat_problem(const char *path, int code, char *err, size_t errlen) {
    struct stat link;
    switch (code) {
    case ENOENT:
        if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) return fail(err, errlen, "no such file (a symbolic link to nothing)");
        return fail(err, errlen, "no such file");
    case ENOTDIR: return fail(err, errlen, "no such file (a part of the path is not a directory)");
    case EACCES: return fail(err, errlen, "permission denied");
    case ELOOP: return fail(err, errlen, "too many levels of symbolic links");
    default: return fail(err, errlen, strerror(code));
    }
}

int tfc_input_check(const char *path, char *err, size_t errlen) {
    if (!path || !*path) return fail(err, errlen, "no such file (an empty path)");
    struct stat st;
    if (stat(path, &st) != 0) return stat_problem(path, errno, err, errlen);
    const char *problem = type_problem(st.st_mode);
    if (problem) return fail(err, errlen, problem);
    if (access(path, R_OK) != 0) return errno == EACCES ? fail(err, errlen, "permission denied") : fail(err, errlen, strerror(errno));
    return 0;
}

int tfc_input_open(const char *path, char *err, size_t errlen) {
    if (tfc_input_check(path, err, errlen) != 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int code = errno;
        return code == EACCES ? fail(err, errlen, "permission denied") : stat_problem(path, code, err, errlen);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int code = errno;
        close(fd);
        return fail(err, errlen, strerror(code));
    }
    const char *problem = type_problem(st.st_mode);
    if (problem) {
        close(fd);
        return fail(err, errlen, problem);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}
