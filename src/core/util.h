/*
 * util.h - small helpers shared by every module: allocation that never
 * returns NULL, a growable byte buffer, UTF-8 checks, number parsing, and
 * the millisecond clocks (monotonic and wall).
 */
#ifndef TALAS_UTIL_H
#define TALAS_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define TALAS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation failures are fatal: a daemon that cannot allocate a few bytes
 * has no sane way to go on (Postfix mymalloc). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable buffer. Zero-initialise it ({0}); free with talas_buf_free. */
struct talas_buf {
    char *data;
    size_t len;
    size_t cap;
};
void talas_buf_reserve(struct talas_buf *buf, size_t extra);
void talas_buf_append(struct talas_buf *buf, const void *data, size_t len);
void talas_buf_puts(struct talas_buf *buf, const char *s);
void talas_buf_printf(struct talas_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void talas_buf_free(struct talas_buf *buf);

/* Returns 1 when the LEN bytes at S are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. */
int talas_utf8_valid(const char *s, size_t len);
/* Returns a malloc'd, NUL-terminated UTF-8 copy of S: unchanged when it is
 * valid UTF-8, else read as ISO-8859-1 (what ID3v1 and most legacy tags use).
 * NUL bytes inside S are dropped. */
char *talas_utf8_sanitize(const char *s, size_t len);

/* Parses "4GiB", "512MiB", "64k", "1048576": binary (KiB, MiB...) and
 * decimal (kB, MB...) units, K/M/G/T read as binary. Returns 0 or -1. */
int talas_parse_size(const char *s, uint64_t *size_r);
/* Parses "30s", "500ms", "2m", "1h", "10" (seconds) into milliseconds. */
int talas_parse_duration_ms(const char *s, uint64_t *ms_r);

/* The clocks: no other file calls clock_gettime() (time(NULL) stays where
 * whole seconds are the unit: JWT claims, scan dates, log lines).
 * Monotonic milliseconds (microseconds): for timeouts and durations
 * within one process. */
uint64_t talas_now_ms(void);
uint64_t talas_now_us(void);
/* The wall clock in ms since the epoch: for what is stored or compared
 * across processes (sessions, cache claims, playback positions), where
 * the monotonic clock of talas_now_ms() means nothing. */
uint64_t talas_wall_ms(void);

#endif
