/*
 * track_file.c - the last line of the "ids never reach outside the library"
 * defence, at serve time.
 *
 * The scanner follows a symbolic link only when its target lies inside a
 * library folder, and records every file under its resolved path. Between
 * two scans an administrator, or anyone who can write in the library, may
 * replace a file or a directory on its path with a link to /etc: the
 * catalog's path would then open a file outside the library. Rather than
 * resolving the path component by component before opening (a race), the
 * file is opened and the kernel is asked what was opened (/proc/self/fd):
 * a resolved path that opens as another path went through a link. The
 * open does not wait (O_NONBLOCK): a FIFO swapped in would otherwise hold
 * the caller, an event loop, until some writer came.
 *
 * Entry points: talas_track_fd_check(), talas_track_open(). Logs nothing:
 * the callers log with their context.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/track_file.h"

#define DELETED " (deleted)"

int talas_track_fd_check(int fd, const char *path)
{
    char proc[64], real[4096 + sizeof(DELETED)];
    size_t plen = strlen(path);
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if ((n = readlink(proc, real, sizeof(real) - 1)) < 0)
        return -1;
    real[n] = '\0';
    if ((size_t)n == plen && memcmp(real, path, plen) == 0)
        return 0;
    if ((size_t)n == plen + sizeof(DELETED) - 1 && memcmp(real, path, plen) == 0 &&
        strcmp(real + plen, DELETED) == 0)
        return 0;
    errno = ELOOP;
    return -1;
}

int talas_track_open(const char *path, struct stat *sb_r)
{
    struct stat sb;
    int fd, flags, saved;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
        return -1;
    if (talas_track_fd_check(fd, path) != 0)
        goto fail;
    if (fstat(fd, &sb) == -1)
        goto fail;
    if (!S_ISREG(sb.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if ((flags = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
        goto fail;
    if (sb_r != NULL)
        *sb_r = sb;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
