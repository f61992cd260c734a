/*
 * fuzz_query.c - query strings (talas_http_query_find and
 * talas_http_percent_decode, behind talas_http_query_param and ?token=) and
 * the "Authorization: Bearer" extraction (talas_http_bearer, behind
 * talas_http_token).
 *
 * Input: a query string; the same bytes are also read as an Authorization
 * value. Checks that a found value lies inside the query, that decoding
 * never writes more than the value's length plus the NUL, and that a Bearer
 * token lies inside the header with no space around it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lookup(const char *q, size_t len, const char *name)
{
    const char *v = NULL;
    size_t vlen = 0;
    ssize_t n;
    char *out;

    if (talas_http_query_find(q, len, name, &v, &vlen) == 0)
        return;
    if (v < q || v + vlen > q + len)
        abort();
    out = malloc(vlen + 1);
    n = talas_http_percent_decode(v, vlen, out);
    if (n != -1 && ((size_t)n > vlen || out[n] != '\0'))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = memcpy(malloc(size + 1), data, size);
    const char *t;
    size_t tlen;

    lookup(q, size, "token");
    lookup(q, size, "format");
    lookup(q, size, "t");
    lookup(q, size, "");
    if (talas_http_bearer(q, size, &t, &tlen)) {
        if (t < q + 7 || t + tlen > q + size || (tlen > 0 && (t[0] == ' ' || t[tlen - 1] == ' ')))
            abort();
    }
    free(q);
    return 0;
}
