/*
 * fuzz_conditional.c - the conditional request headers Talas reads itself:
 * If-Match / If-None-Match entity-tag lists (talas_http_etag_match, which
 * talas_http_preconditions calls) and If-Modified-Since /
 * If-Unmodified-Since dates (talas_http_date_parse).
 *
 * Input: the header value. It is compared with a fixed entity tag and with
 * entity tags cut from the input itself, strongly and weakly: a strong match
 * must also be a weak one, and "*" or a list holding the tag quoted must
 * match.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"
#include "http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *list, size_t len, const char *etag, size_t etag_len)
{
    int strong = talas_http_etag_match(list, len, etag, etag_len, 0);
    int weak = talas_http_etag_match(list, len, etag, etag_len, 1);

    if ((strong != 0 && strong != 1) || (weak != 0 && weak != 1) || (strong && !weak))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char etag[] = "\"5f5e1000-3e8\"";
    char *list = memcpy(malloc(size + 1), data, size);
    const char *q;

    check(list, size, etag, sizeof(etag) - 1);
    /* every quoted string of the input is a candidate tag */
    for (const char *p = list; (p = memchr(p, '"', size - (size_t)(p - list))) != NULL; p = q + 1) {
        if ((q = memchr(p + 1, '"', size - (size_t)(p + 1 - list))) == NULL)
            break;
        check(list, size, p, (size_t)(q + 1 - p));
    }
    if (size == 1 && list[0] == '*' && !talas_http_etag_match(list, size, etag, sizeof(etag) - 1, 0))
        abort();
    talas_http_date_parse(list, size);
    free(list);
    return 0;
}
