/*
 * log.c - the error log.
 *
 * Entry points: talas_log_open (also the SIGUSR1 reopen), talas_log,
 * fatal, panic. Each line is formatted into one buffer and written with a
 * single write(2) on an O_APPEND descriptor, so lines from the master and
 * all workers sharing the file never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int log_fd = STDERR_FILENO;
static const char *log_role = "talas";
static enum talas_log_level log_level = TALAS_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void talas_log_set_role(const char *role)
{
    log_role = role;
}

void talas_log_set_level(enum talas_log_level level)
{
    log_level = level;
}

int talas_log_level_parse(const char *name, enum talas_log_level *level_r)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level_r = (enum talas_log_level)i;
            return 0;
        }
    }
    return -1;
}

int talas_log_open(const char *path)
{
    int fd;

    if (path == NULL || strcmp(path, "stderr") == 0) {
        fd = STDERR_FILENO;
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd == -1)
            return -1;
    }
    if (log_fd != STDERR_FILENO && log_fd != fd)
        close(log_fd);
    log_fd = fd;
    return 0;
}

int talas_log_fd(void)
{
    return log_fd;
}

void talas_vlog(enum talas_log_level level, const char *fmt, va_list ap)
{
    char line[4096];
    struct tm tm;
    time_t now;
    size_t len;
    int n, saved_errno = errno;

    if (level < log_level)
        return;
    now = time(NULL);
    localtime_r(&now, &tm);
    len = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, " [%s] %d#%s: ", level_names[level], (int)getpid(), log_role);
    if (n > 0)
        len += (size_t)n;
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    if (n > 0)
        len += (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* One write per line: appends from several processes stay whole. */
    if (write(log_fd, line, len) == -1) {
        /* nowhere left to complain */
    }
    errno = saved_errno;
}

void talas_log(enum talas_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_vlog(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_vlog(TALAS_LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

void panic(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_vlog(TALAS_LOG_ERROR, fmt, ap);
    va_end(ap);
    abort();
}
