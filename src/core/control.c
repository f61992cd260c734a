/*
 * control.c - addressing the control socket, for talas-master
 * (master_ctl.c) and talasctl (control.h). Logs nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/control.h"

int talas_control_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *len_r, int *dirfd_r)
{
    const char *slash;
    char *dir;
    int n;

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    *dirfd_r = -1;
    if (strlen(path) < sizeof(sun->sun_path)) {
        memcpy(sun->sun_path, path, strlen(path) + 1);
        *len_r = (socklen_t)sizeof(*sun);
        return 0;
    }
    /* too long for sun_path: name it through /proc/self/fd/N/NAME, which
     * the kernel resolves like any path */
    if ((slash = strrchr(path, '/')) == NULL || strlen(slash) > 64) {
        errno = ENAMETOOLONG;
        return -1;
    }
    dir = strndup(path, (size_t)(slash - path) + 1);
    if (dir == NULL)
        return -1;
    *dirfd_r = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (*dirfd_r == -1)
        return -1;
    n = snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d%s", *dirfd_r, slash);
    if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
        close(*dirfd_r);
        *dirfd_r = -1;
        errno = ENAMETOOLONG;
        return -1;
    }
    *len_r = (socklen_t)sizeof(*sun);
    return 0;
}

int talas_control_connect(const char *path)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, dirfd, rc, saved;

    if (talas_control_sockaddr(path, &sun, &len, &dirfd) != 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        saved = errno;
        if (dirfd != -1)
            close(dirfd);
        errno = saved;
        return -1;
    }
    rc = connect(fd, (struct sockaddr *)&sun, len);
    saved = errno;
    if (dirfd != -1)
        close(dirfd);
    if (rc == -1) {
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
