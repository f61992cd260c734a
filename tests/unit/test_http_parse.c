/*
 * test_http_parse.c - the pure request parsers of workers/http/http_parse.c:
 * query parameters (first of several, bare names, names that are prefixes
 * of others), percent-decoding (plus, NUL bytes, bad escapes), Bearer
 * credentials (case, trimming, other schemes) and entity-tag lists (strong
 * and weak comparison, "*", malformed lists). Every input is given with its
 * length and no terminating NUL where one would be read past.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http_parse.h"

/* A copy of S without its NUL, in a buffer of exactly its length, so that
 * reading one byte past it is a heap overflow the sanitizers see. */
static char *bytes(const char *s)
{
    size_t n = strlen(s);
    char *b = malloc(n > 0 ? n : 1);

    assert_non_null(b);
    memcpy(b, s, n);
    return b;
}

static int find(const char *query, const char *name, char *value, size_t size)
{
    char *q = bytes(query);
    const char *v = NULL;
    size_t vlen = 0;
    int n = talas_http_query_find(q, strlen(query), name, &v, &vlen);

    value[0] = '\0';
    if (n > 0) {
        assert_non_null(v);
        assert_true(vlen < size);
        /* the value points into the query */
        assert_true(v >= q && v + vlen <= q + strlen(query));
        memcpy(value, v, vlen);
        value[vlen] = '\0';
    }
    free(q);
    return n;
}

static void test_query_find(void **state)
{
    char v[64];

    assert_int_equal(find("token=abc&t=12", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "abc");
    assert_int_equal(find("token=abc&t=12", "t", v, sizeof(v)), 1);
    assert_string_equal(v, "12");
    /* a name that is a prefix or an extension of another is not it */
    assert_int_equal(find("tokens=1&tok=2", "token", v, sizeof(v)), 0);
    assert_int_equal(find("xtoken=1", "token", v, sizeof(v)), 0);
    /* the first of several, and how many there are */
    assert_int_equal(find("a=1&b=2&a=3&a=4", "a", v, sizeof(v)), 3);
    assert_string_equal(v, "1");
    /* bare names, empty values, empty pairs */
    assert_int_equal(find("download&x=1", "download", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(find("x=1&download", "download", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(find("a=&b=2", "a", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(find("&&a=5&&", "a", v, sizeof(v)), 1);
    assert_string_equal(v, "5");
    /* the value is everything up to the next '&', '=' included */
    assert_int_equal(find("a=b=c&d", "a", v, sizeof(v)), 1);
    assert_string_equal(v, "b=c");
    /* still percent-encoded */
    assert_int_equal(find("q=a%20b", "q", v, sizeof(v)), 1);
    assert_string_equal(v, "a%20b");
    assert_int_equal(find("", "a", v, sizeof(v)), 0);
    assert_int_equal(find("=1", "a", v, sizeof(v)), 0);
    assert_int_equal(find("=1", "", v, sizeof(v)), 1);
    /* only LEN bytes are read */
    {
        const char *q = "a=12345&b=2", *val;
        size_t n;
        assert_int_equal(talas_http_query_find(q, 4, "a", &val, &n), 1);
        assert_int_equal(n, 2);
        assert_memory_equal(val, "12", 2);
        assert_int_equal(talas_http_query_find(q, 8, "b", &val, &n), 0);
    }
    assert_string_equal(v, "1");
}

static ssize_t decode(const char *in, char *out)
{
    char *b = bytes(in);
    ssize_t n = talas_http_percent_decode(b, strlen(in), out);

    free(b);
    return n;
}

static void test_percent_decode(void **state)
{
    char out[64];

    assert_int_equal(decode("abc", out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(decode("a%20b+c", out), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(decode("%2b%2B%41%7e", out), 4);
    assert_string_equal(out, "++A~");
    assert_int_equal(decode("", out), 0);
    assert_string_equal(out, "");
    /* a NUL byte is data: the length tells */
    assert_int_equal(decode("a%00b", out), 3);
    assert_memory_equal(out, "a\0b", 4);
    assert_int_equal(decode("%ff", out), 1);
    assert_int_equal((unsigned char)out[0], 0xff);
    /* a '%' without two hex digits */
    assert_int_equal(decode("%", out), -1);
    assert_int_equal(decode("abc%", out), -1);
    assert_int_equal(decode("abc%4", out), -1);
    assert_int_equal(decode("%4g", out), -1);
    assert_int_equal(decode("%g4", out), -1);
    assert_int_equal(decode("% 41", out), -1);
    /* only LEN bytes are read, even when the byte after them would
     * complete the escape */
    assert_int_equal(talas_http_percent_decode("abc%41", 5, out), -1);
    assert_int_equal(talas_http_percent_decode("abc%4", 4, out), -1);
    assert_int_equal(talas_http_percent_decode("a+b%41", 3, out), 3);
    assert_string_equal(out, "a b");
}

static int bearer(const char *value, char *token)
{
    char *b = bytes(value);
    const char *t = NULL;
    size_t n = 0;
    int rc = talas_http_bearer(b, strlen(value), &t, &n);

    token[0] = '\0';
    if (rc == 1) {
        assert_true(t >= b && t + n <= b + strlen(value));
        memcpy(token, t, n);
        token[n] = '\0';
    }
    free(b);
    return rc;
}

static void test_bearer(void **state)
{
    char t[64];

    assert_int_equal(bearer("Bearer abc.def.ghi", t), 1);
    assert_string_equal(t, "abc.def.ghi");
    assert_int_equal(bearer("bearer abc", t), 1);
    assert_string_equal(t, "abc");
    assert_int_equal(bearer("BEARER abc", t), 1);
    assert_string_equal(t, "abc");
    assert_int_equal(bearer("Bearer    abc \t ", t), 1);
    assert_string_equal(t, "abc");
    assert_int_equal(bearer("Bearer ", t), 1);
    assert_string_equal(t, "");
    assert_int_equal(bearer("Bearer     ", t), 1);
    assert_string_equal(t, "");
    assert_int_equal(bearer("Basic dXNlcjpwYXNz", t), 0);
    assert_int_equal(bearer("Bearer", t), 0);
    assert_int_equal(bearer("Bearerabc", t), 0);
    assert_int_equal(bearer("", t), 0);
    assert_int_equal(bearer("XBearer abc", t), 0);
    {
        const char *tok;
        size_t n;
        assert_int_equal(talas_http_bearer("Bearer abc  junk", 11, &tok, &n), 1);
        assert_int_equal(n, 3);
        assert_memory_equal(tok, "abc", 3);
        assert_int_equal(talas_http_bearer("Bearer abc", 6, &tok, &n), 0);
    }
}

static int match(const char *list, const char *etag, int weak)
{
    char *l = bytes(list);
    int rc = talas_http_etag_match(l, strlen(list), etag, strlen(etag), weak);

    free(l);
    return rc;
}

static void test_etag_match(void **state)
{
    const char *e = "\"5f5e1000-3e8\"";

    /* strong comparison (If-Match) */
    assert_int_equal(match("\"5f5e1000-3e8\"", e, 0), 1);
    assert_int_equal(match("\"a\", \"5f5e1000-3e8\"", e, 0), 1);
    assert_int_equal(match("\"a\",\"b\"", e, 0), 0);
    assert_int_equal(match("W/\"5f5e1000-3e8\"", e, 0), 0);
    assert_int_equal(match("*", e, 0), 1);
    assert_int_equal(match(" \t, *", e, 0), 1);
    /* weak comparison (If-None-Match) */
    assert_int_equal(match("W/\"5f5e1000-3e8\"", e, 1), 1);
    assert_int_equal(match("\"x\", W/\"5f5e1000-3e8\"", e, 1), 1);
    assert_int_equal(match("\"5f5e1000-3e8\"", e, 1), 1);
    assert_int_equal(match("W/\"other\"", e, 1), 0);
    /* a tag without quotes is no tag; the quotes are part of the tag */
    assert_int_equal(match("5f5e1000-3e8", e, 0), 0);
    assert_int_equal(match("\"5f5e1000-3e8", e, 0), 0);
    assert_int_equal(match("\"5f5e1000-3e\"", e, 0), 0);
    /* a malformed list matches nothing after its error */
    assert_int_equal(match("\"unterminated, \"5f5e1000-3e8\"", e, 0), 0);
    assert_int_equal(match("\"5f5e1000-3e8\", \"unterminated", e, 0), 1);
    assert_int_equal(match("", e, 0), 0);
    assert_int_equal(match(" , ,", e, 0), 0);
    assert_int_equal(match("W/", e, 1), 0);
    /* only LEN bytes of the list are read */
    assert_int_equal(talas_http_etag_match("\"a\", \"5f5e1000-3e8\"", 5, e, strlen(e), 0), 0);
    assert_int_equal(talas_http_etag_match("\"5f5e1000-3e8\"", 13, e, strlen(e), 0), 0);
    assert_int_equal(talas_http_etag_match("\"a\", *", 3, e, strlen(e), 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_find),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_etag_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
