/*
 * daemon.c - daemonizing and the locked pid file (see daemon.h).
 *
 * Entry points: talas_daemonize, talas_pidfile_create, _remove,
 * _close_in_child.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/daemon.h"
#include "core/log.h"
#include "core/util.h"

static int pid_fd = -1;
static char *pid_path;

int talas_daemonize(void)
{
    pid_t pid;
    int fd;

    if ((pid = fork()) == -1)
        return -1;
    if (pid != 0)
        _exit(0);
    if (setsid() == -1)
        return -1;
    /* a second fork: the daemon can never reacquire a terminal */
    if ((pid = fork()) == -1)
        return -1;
    if (pid != 0)
        _exit(0);
    if (chdir("/") == -1)
        return -1;
    umask(027);
    if ((fd = open("/dev/null", O_RDWR)) == -1)
        return -1;
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
        close(fd);
    return 0;
}

int talas_pidfile_create(const char *path, char **error_r)
{
    char buf[32];
    int fd, n;

    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
        *error_r = xasprintf("open(\"%s\") failed: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        buf[r > 0 ? r : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        *error_r = xasprintf("another talas-master (pid %s) holds \"%s\"", buf[0] ? buf : "?", path);
        close(fd);
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n) {
        *error_r = xasprintf("writing \"%s\" failed: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    pid_fd = fd;
    pid_path = xstrdup(path);
    return 0;
}

void talas_pidfile_remove(void)
{
    if (pid_path == NULL)
        return;
    unlink(pid_path);
    close(pid_fd);
    pid_fd = -1;
    free(pid_path);
    pid_path = NULL;
}

void talas_pidfile_close_in_child(void)
{
    /* flock() locks belong to the open file description, which a child
     * shares: closing the child's copy does not drop the master's lock, but
     * a child that outlived the master must not keep it held. */
    if (pid_fd != -1) {
        close(pid_fd);
        pid_fd = -1;
    }
}

void talas_drop_privileges(const char *user, const char *group)
{
    struct passwd *pw;
    struct group *gr;
    gid_t gid;

    if (user == NULL || geteuid() != 0)
        return;
    if ((pw = getpwnam(user)) == NULL) {
        log_error("%s: unknown user \"%s\"", __func__, user);
        exit(2);
    }
    gid = pw->pw_gid;
    if (group != NULL) {
        if ((gr = getgrnam(group)) == NULL) {
            log_error("%s: unknown group \"%s\"", __func__, group);
            exit(2);
        }
        gid = gr->gr_gid;
    }
    if (initgroups(pw->pw_name, gid) == -1 || setgid(gid) == -1 || setuid(pw->pw_uid) == -1) {
        log_error("%s: switching to user \"%s\" failed: %s", __func__, user, strerror(errno));
        exit(2);
    }
    /* no way back: a process that could regain root was not confined */
    if (pw->pw_uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
        log_error("%s: root privileges still held after switching to \"%s\"", __func__, user);
        exit(2);
    }
}
