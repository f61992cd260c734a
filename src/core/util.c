/*
 * util.c - allocation, growable buffers, UTF-8 and number parsing, the clocks.
 *
 * Entry points are declared in util.h. Allocation failures are fatal.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        fatal("%s: malloc(%zu) failed", __func__, size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        fatal("%s: calloc(%zu, %zu) failed", __func__, n, size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);

    if (p == NULL)
        fatal("%s: realloc(%zu) failed", __func__, size);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Measured with vsnprintf and allocated here rather than by vasprintf(3):
 * the allocation is then made from a frame of ours, so a leak report's
 * stack (LeakSanitizer's fast unwinder follows frame pointers, which glibc
 * lacks) names the caller instead of stopping in libc. */
char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fatal("%s: vsnprintf() failed", __func__);
    s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void talas_buf_reserve(struct talas_buf *buf, size_t extra)
{
    size_t want;

    if (buf->cap - buf->len > extra)
        return;
    want = buf->cap ? buf->cap : 256;
    while (want - buf->len <= extra)
        want *= 2;
    buf->data = xrealloc(buf->data, want);
    buf->cap = want;
}

void talas_buf_append(struct talas_buf *buf, const void *data, size_t len)
{
    talas_buf_reserve(buf, len);
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void talas_buf_puts(struct talas_buf *buf, const char *s)
{
    talas_buf_append(buf, s, strlen(s));
}

void talas_buf_printf(struct talas_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int n;

    talas_buf_reserve(buf, 64);
    va_start(ap, fmt);
    n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= buf->cap - buf->len) {
        talas_buf_reserve(buf, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
        va_end(ap);
    }
    buf->len += (size_t)n;
}

void talas_buf_free(struct talas_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

/* Length of the well-formed UTF-8 sequence at S (at most LEN bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return len >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && s[1] >= 0xa0) /* surrogates */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

int talas_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    while (len > 0) {
        if ((n = utf8_seq_len(p, len)) == 0)
            return 0;
        p += n;
        len -= n;
    }
    return 1;
}

char *talas_utf8_sanitize(const char *s, size_t len)
{
    struct talas_buf out = {0};
    const unsigned char *p = (const unsigned char *)s;
    int valid = talas_utf8_valid(s, len);

    talas_buf_reserve(&out, len * 2);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == 0)
            continue;
        if (valid || c < 0x80) {
            out.data[out.len++] = (char)c;
        } else {
            /* ISO-8859-1 maps byte values straight onto U+0080..U+00FF */
            out.data[out.len++] = (char)(0xc0 | (c >> 6));
            out.data[out.len++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out.data[out.len] = '\0';
    return out.data;
}

struct unit {
    const char *suffix;
    uint64_t mult;
};

/* A decimal number and one of UNITS' suffixes (compared without regard to
 * case), optionally separated by spaces; overflow is an error. */
static int parse_with_unit(const char *s, const struct unit *units, size_t count, uint64_t *v_r)
{
    unsigned long long v;
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < count; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *v_r = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int talas_parse_size(const char *s, uint64_t *size_r)
{
    static const struct unit units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ULL << 10},
        {"kb", 1000ULL},
        {"kib", 1ULL << 10},
        {"m", 1ULL << 20},
        {"mb", 1000ULL * 1000},
        {"mib", 1ULL << 20},
        {"g", 1ULL << 30},
        {"gb", 1000ULL * 1000 * 1000},
        {"gib", 1ULL << 30},
        {"t", 1ULL << 40},
        {"tb", 1000ULL * 1000 * 1000 * 1000},
        {"tib", 1ULL << 40},
    };

    return parse_with_unit(s, units, TALAS_ARRAY_SIZE(units), size_r);
}

int talas_parse_duration_ms(const char *s, uint64_t *ms_r)
{
    /* "m" is minutes here: sizes are where "m" means MiB */
    static const struct unit units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};

    return parse_with_unit(s, units, TALAS_ARRAY_SIZE(units), ms_r);
}

uint64_t talas_now_ms(void)
{
    return talas_now_us() / 1000;
}

uint64_t talas_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t talas_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
