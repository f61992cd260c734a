/*
 * login_limits.h - failed logins per client address and name, on one
 * worker, in tables of their own: the Subsonic API's users
 * (subsonic.max_failed_logins in each subsonic.failed_login_window), the
 * passwords of private links (http_shares.c: per address and link). Past it, the pair is refused without its
 * password being checked until the window ends, so guessing a password
 * from one address costs a window per max_failed_logins tries.
 *
 * A fixed window per pair, starting at its first failure; a success
 * forgets the pair. The counts are this worker's, like
 * http.max_connections_per_ip: with N workers an address may try up to N
 * times as often. Each table is the worker's own, used on its loop only;
 * it holds at most TALAS_LOGIN_LIMITS_MAX pairs (past it, windows that
 * ended are swept, and new pairs go uncounted until there is room:
 * logged).
 */
#ifndef TALAS_LOGIN_LIMITS_H
#define TALAS_LOGIN_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define TALAS_LOGIN_LIMITS_MAX 65536

/* One table with its limit: MAX_FAILURES in each WINDOW_MS (0: no limit);
 * WHAT names it in the log ("subsonic", "shares"). The caller owns it. */
struct talas_login_limits;
struct talas_login_limits *talas_login_limits_new(const char *what, int max_failures, uint64_t window_ms);
void talas_login_limits_free(struct talas_login_limits *t);

/* 1 when ADDRESS and USER have used their failures of the window at
 * NOW_MS (monotonic), with the time left in *retry_ms_r; else 0. Always 0
 * when the limit is 0 or T is NULL. */
int talas_login_limits_blocked(struct talas_login_limits *t, const char *address, const char *user,
                               uint64_t now_ms, uint64_t *retry_ms_r);

/* Counts a failed login of ADDRESS and USER at NOW_MS. */
void talas_login_limits_failed(struct talas_login_limits *t, const char *address, const char *user,
                               uint64_t now_ms);

/* A login of ADDRESS and USER succeeded: their count starts again. */
void talas_login_limits_succeeded(struct talas_login_limits *t, const char *address, const char *user);

/* The pairs in the table (tests). */
size_t talas_login_limits_count(const struct talas_login_limits *t);

#endif
