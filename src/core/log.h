/*
 * log.h - the error log of every Talas process.
 *
 * Lines read "2026/11/21 05:38:01 [error] 1234#worker: message", like
 * nginx's. Until talas_log_open() is called (and whenever the process runs
 * in the foreground without a log file) lines go to stderr. Safe to call
 * from any process; not from signal handlers.
 */
#ifndef TALAS_LOG_H
#define TALAS_LOG_H

#include <stdarg.h>

enum talas_log_level { TALAS_LOG_DEBUG, TALAS_LOG_INFO, TALAS_LOG_WARN, TALAS_LOG_ERROR };

/* Names the process in every line ("master", "worker", "scanner", ...).
 * The string must outlive the process's use of the log. */
void talas_log_set_role(const char *role);
void talas_log_set_level(enum talas_log_level level);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int talas_log_level_parse(const char *name, enum talas_log_level *level_r);

/* Opens (or reopens, for SIGUSR1) PATH in append mode and makes it the
 * destination; NULL or "stderr" means stderr. The file is created 0640.
 * Returns 0, or -1 with errno set and the old destination kept. */
int talas_log_open(const char *path);
/* The fd lines go to, for handing stderr of children to the log. */
int talas_log_fd(void);

void talas_log(enum talas_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void talas_vlog(enum talas_log_level level, const char *fmt, va_list ap);

#define log_debug(...) talas_log(TALAS_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) talas_log(TALAS_LOG_INFO, __VA_ARGS__)
#define log_warn(...) talas_log(TALAS_LOG_WARN, __VA_ARGS__)
#define log_error(...) talas_log(TALAS_LOG_ERROR, __VA_ARGS__)

/* Logs at error level and exits with status 1. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs and aborts: for broken invariants only. */
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
