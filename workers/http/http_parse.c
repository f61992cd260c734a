/*
 * http_parse.c - query strings, Bearer credentials and entity-tag lists
 * (see http_parse.h for the contract). Logs nothing.
 *
 * These were parts of the handlers' helpers; they live apart so that the
 * libFuzzer harnesses in tests/fuzz link them without h2o.
 */
#include <string.h>
#include <strings.h>

#include "http/http_parse.h"

int talas_http_query_find(const char *query, size_t len, const char *name, const char **value_r,
                          size_t *value_len_r)
{
    const char *p = query, *end = query + len;
    size_t name_len = strlen(name);
    int found = 0;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));

        if ((size_t)((eq != NULL ? eq : pair_end) - p) == name_len && memcmp(p, name, name_len) == 0 &&
            found++ == 0) {
            *value_r = eq != NULL ? eq + 1 : pair_end;
            *value_len_r = (size_t)(pair_end - *value_r);
        }
        p = pair_end + 1;
    }
    return found;
}

int talas_http_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t talas_http_percent_decode(const char *in, size_t len, char *out)
{
    const char *v = in, *end = in + len;
    size_t n = 0;

    for (; v < end; v++) {
        if (*v == '%') {
            int hi, lo;
            if (end - v < 3 || (hi = talas_http_hex_value(v[1])) < 0 || (lo = talas_http_hex_value(v[2])) < 0)
                return -1;
            out[n++] = (char)(hi << 4 | lo);
            v += 2;
        } else {
            out[n++] = *v == '+' ? ' ' : *v;
        }
    }
    out[n] = '\0';
    return (ssize_t)n;
}

int talas_http_bearer(const char *value, size_t len, const char **token_r, size_t *token_len_r)
{
    const char *t;
    size_t n;

    if (len < 7 || strncasecmp(value, "Bearer ", 7) != 0)
        return 0;
    t = value + 7;
    n = len - 7;
    while (n > 0 && t[0] == ' ') {
        t++;
        n--;
    }
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    *token_r = t;
    *token_len_r = n;
    return 1;
}

int talas_http_etag_match(const char *list, size_t len, const char *etag, size_t etag_len, int weak)
{
    const char *p = list, *end = list + len;

    while (p < end) {
        const char *item, *item_end;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        if (*p == '*')
            return 1;
        item = p;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
            /* a weak tag never matches strongly: skip it */
            item = weak ? p : NULL;
        }
        if (p < end && *p == '"') {
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            if (q == NULL)
                return 0;
            item_end = q + 1;
            p = item_end;
        } else {
            while (p < end && *p != ',')
                p++;
            item_end = p;
            item = NULL;
        }
        if (item != NULL && (size_t)(item_end - item) == etag_len && memcmp(item, etag, etag_len) == 0)
            return 1;
    }
    return 0;
}
