/*
 * http_parse.h - pure parsers of the request parts Talas reads itself: the
 * query string, "Authorization: Bearer" and entity-tag lists (If-Match,
 * If-None-Match). Range, If-Range and HTTP dates are in range.h.
 *
 * No h2o, no allocation, no I/O: each takes bytes and a length (never
 * NUL-terminated) and is safe on any input, so that tests/fuzz can drive
 * them directly. The h2o-facing wrappers are in http_response.c (query
 * parameters), http_authorize.c (the token) and http_source.c
 * (preconditions).
 */
#ifndef TALAS_HTTP_PARSE_H
#define TALAS_HTTP_PARSE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Looks up parameter NAME in QUERY (LEN bytes, after the '?'): "NAME=value"
 * or a bare "NAME". Returns how many times it appears, and when it does,
 * the raw (still percent-encoded) value of the first occurrence in
 * *value_r / *value_len_r (pointing into QUERY; empty for a bare NAME).
 */
int talas_http_query_find(const char *query, size_t len, const char *name, const char **value_r,
                          size_t *value_len_r);

/*
 * Percent-decodes IN (LEN bytes; "+" reads as a space) into OUT, which has
 * room for LEN + 1 bytes, and NUL-terminates it. Returns the decoded length
 * (the value may hold NUL bytes), or -1 for a '%' not followed by two hex
 * digits.
 */
ssize_t talas_http_percent_decode(const char *in, size_t len, char *out);

/* The value of hex digit C (either case), or -1. */
int talas_http_hex_value(char c);

/*
 * Reads an Authorization header VALUE (LEN bytes). Returns 1 when its
 * scheme is Bearer (any case), with the credentials, spaces and tabs around
 * them trimmed, in *token_r / *token_len_r (pointing into VALUE; possibly
 * empty); 0 for any other scheme.
 */
int talas_http_bearer(const char *value, size_t len, const char **token_r, size_t *token_len_r);

/*
 * Compares entity tag ETAG (ETAG_LEN bytes, quotes included) with the
 * If-Match / If-None-Match list LIST (LEN bytes): 1 when one member matches
 * or the list is "*", else 0. WEAK selects the weak comparison of RFC 9110
 * 8.8.3.2 (If-None-Match); with the strong one a W/ member never matches.
 * A malformed list matches nothing it has not matched before the error.
 */
int talas_http_etag_match(const char *list, size_t len, const char *etag, size_t etag_len, int weak);

#endif
