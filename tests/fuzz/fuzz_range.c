/*
 * fuzz_range.c - the Range header, If-Range and HTTP dates (workers/http/range.c).
 *
 * Input: 2 bytes choosing the representation length (small lengths, where
 * the edge cases are, and a 63-bit one), then the header value. Checks what
 * range.h promises of a 206: at most TALAS_RANGE_MAX ranges, each non-empty
 * and inside the representation, adding up to no more than it. A parsed
 * date must format back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_date(const char *value, size_t len)
{
    int64_t t = talas_http_date_parse(value, len);
    char buf[64];
    struct tm tm;
    time_t tt;

    if (t == -1)
        return;
    if (t < 0)
        abort(); /* dates before 1970 are refused: -1 is the only negative answer */
    tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL)
        return;
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (talas_http_date_parse(buf, strlen(buf)) != t)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t lengths[] = {0, 1, 2, 10, 100, 1000, 4096, 1000000, INT64_MAX};
    struct talas_range ranges[TALAS_RANGE_MAX];
    uint64_t content_length, total = 0;
    const char *value;
    size_t count, len;

    if (size < 2)
        return 0;
    content_length = lengths[data[0] % (sizeof(lengths) / sizeof(lengths[0]))] + (data[1] & 0x0f);
    if (content_length > INT64_MAX)
        content_length = INT64_MAX;
    /* a copy of exactly LEN bytes, so that ASan sees any read past the end */
    len = size - 2;
    value = memcpy(malloc(len + 1), data + 2, len);

    switch (talas_range_parse(value, len, content_length, ranges, &count)) {
    case TALAS_RANGE_PARTIAL:
        if (count == 0 || count > TALAS_RANGE_MAX)
            abort();
        for (size_t i = 0; i < count; i++) {
            if (ranges[i].start >= ranges[i].end || ranges[i].end > content_length)
                abort();
            total += ranges[i].end - ranges[i].start;
        }
        if (total > content_length)
            abort();
        break;
    case TALAS_RANGE_IGNORE:
    case TALAS_RANGE_UNSATISFIABLE:
        if (count != 0)
            abort();
        break;
    default:
        abort();
    }

    /* If-Range: an entity tag matches only itself, byte for byte */
    if (talas_range_if_range(value, len, value, len, -1) != (len >= 2 && value[len - 1] == '"'))
        abort();
    talas_range_if_range(value, len, "\"5f5e1000-3e8\"", 14, 1600000000);
    check_date(value, len);
    free((void *)value);
    return 0;
}
