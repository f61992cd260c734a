/*
 * range.c - Range and If-Range parsing (see range.h for the contract).
 *
 * The algorithm follows nginx's ngx_http_range_parse step for step, because
 * the acceptance criterion is byte-for-byte agreement with nginx, including
 * where nginx is stricter than RFC 9110 (e.g. "bytes=5-3" is a 416, not an
 * ignored header). All arithmetic is overflow-checked against the 63-bit
 * range of off_t, as nginx's is. One deliberate difference: a last
 * position too large for off_t is clamped to the end (206), as RFC 9110
 * says, where nginx answers 416.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/range.h"

#define OFF_MAX ((uint64_t)INT64_MAX)

enum talas_range_verdict talas_range_parse(const char *value, size_t len, uint64_t content_length,
                                           struct talas_range *ranges, size_t *count_r)
{
    const uint64_t cutoff = OFF_MAX / 10, cutlim = OFF_MAX % 10;
    const char *p, *last;
    uint64_t start, end, size = 0;
    size_t n = 0;
    int suffix;

    *count_r = 0;
    if (len < 7 || strncasecmp(value, "bytes=", 6) != 0)
        return TALAS_RANGE_IGNORE;
    p = value + 6;
    last = value + len;

/* the header is not NUL-terminated: read past its end as NUL, like nginx */
#define CUR (p < last ? *p : '\0')

    for (;;) {
        start = 0;
        end = 0;
        suffix = 0;

        while (CUR == ' ')
            p++;

        if (CUR != '-') {
            if (CUR < '0' || CUR > '9')
                return TALAS_RANGE_UNSATISFIABLE;
            while (CUR >= '0' && CUR <= '9') {
                if (start >= cutoff && (start > cutoff || (uint64_t)(CUR - '0') > cutlim))
                    return TALAS_RANGE_UNSATISFIABLE;
                start = start * 10 + (uint64_t)(*p++ - '0');
            }
            while (CUR == ' ')
                p++;
            if (CUR != '-')
                return TALAS_RANGE_UNSATISFIABLE;
            p++;
            while (CUR == ' ')
                p++;
            if (CUR == ',' || CUR == '\0') {
                end = content_length;
                goto found;
            }
        } else {
            suffix = 1;
            p++;
        }

        if (CUR < '0' || CUR > '9')
            return TALAS_RANGE_UNSATISFIABLE;
        /* A last position (or suffix length) too large for off_t is still
         * only "past the end": RFC 9110 section 14.1.1 clamps it to the
         * representation, where nginx answers 416. It saturates here. */
        while (CUR >= '0' && CUR <= '9') {
            if (end >= cutoff && (end > cutoff || (uint64_t)(CUR - '0') > cutlim)) {
                end = OFF_MAX;
                p++;
                continue;
            }
            end = end * 10 + (uint64_t)(*p++ - '0');
        }
        while (CUR == ' ')
            p++;
        if (CUR != ',' && CUR != '\0')
            return TALAS_RANGE_UNSATISFIABLE;

        if (suffix) {
            start = end < content_length ? content_length - end : 0;
            end = content_length - 1;
        }
        /* from here on, end is one past the last byte */
        if (end >= content_length)
            end = content_length;
        else
            end++;

    found:
        if (start < end) {
            if (size > OFF_MAX - (end - start))
                return TALAS_RANGE_UNSATISFIABLE;
            size += end - start;
            if (n == TALAS_RANGE_MAX)
                return TALAS_RANGE_IGNORE;
            ranges[n].start = start;
            ranges[n].end = end;
            n++;
        } else if (start == 0) {
            return TALAS_RANGE_IGNORE;
        }

        if (CUR != ',')
            break;
        p++;
    }
#undef CUR

    if (n == 0)
        return TALAS_RANGE_UNSATISFIABLE;
    /* overlapping ranges that add up to more than the file: send it whole */
    if (size > content_length)
        return TALAS_RANGE_IGNORE;
    *count_r = n;
    return TALAS_RANGE_PARTIAL;
}

int talas_range_if_range(const char *value, size_t len, const char *etag, size_t etag_len, int64_t last_modified)
{
    int64_t t;

    if (len >= 2 && value[len - 1] == '"')
        return etag != NULL && etag_len == len && memcmp(etag, value, len) == 0;
    if (last_modified < 0)
        return 0;
    t = talas_http_date_parse(value, len);
    return t != -1 && t == last_modified;
}

static int month_index(const char *m)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

    for (int i = 0; i < 12; i++)
        if (memcmp(months + i * 3, m, 3) == 0)
            return i;
    return -1;
}

/* Days from 1970-01-01 to Y-M-D in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t talas_http_date_parse(const char *value, size_t len)
{
    char buf[64], mon[4] = {0}, tail[8] = {0};
    int day, year, hh, mm, ss, mi, consumed = 0;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';

    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(buf, "%*3[A-Za-z], %2d %3s %4d %2d:%2d:%2d %3s%n", &day, mon, &year, &hh, &mm, &ss, tail,
               &consumed) == 7 &&
        (size_t)consumed == len && strcmp(tail, "GMT") == 0)
        goto compute;
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    consumed = 0;
    if (sscanf(buf, "%*[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", &day, mon, &year, &hh, &mm, &ss, tail,
               &consumed) == 7 &&
        (size_t)consumed == len && strcmp(tail, "GMT") == 0) {
        year += year < 70 ? 2000 : 1900;
        goto compute;
    }
    /* asctime: Sun Nov  6 08:49:37 1994 */
    consumed = 0;
    if (sscanf(buf, "%*3[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", mon, &day, &hh, &mm, &ss, &year, &consumed) == 6 &&
        (size_t)consumed == len)
        goto compute;
    return -1;

compute:
    /* %2d also reads "-1": a negative field made a date before 1970 (fuzz_range) */
    if ((mi = month_index(mon)) == -1 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || year < 1970)
        return -1;
    return days_from_civil(year, mi + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
}
