/*
 * test_subsonic_args.c - the pure Subsonic request parser of
 * workers/subsonic/subsonic_args.c: form fields (query and body, repeats,
 * bare names, bad escapes and NUL bytes, the field cap), integers, method
 * names from /rest/ paths, the answer's format and jsonp callbacks, and
 * the credentials: each mechanism, each error code, enc: passwords and
 * md5 tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "subsonic/subsonic_args.h"

static int parse(struct talas_subsonic_args *a, const char *s)
{
    size_t n = strlen(s);
    char *copy = malloc(n > 0 ? n : 1); /* no NUL: reading past it is seen */
    int rc;

    assert_non_null(copy);
    memcpy(copy, s, n);
    rc = talas_subsonic_args_parse(a, copy, n);
    free(copy);
    return rc;
}

static void test_fields(void **state)
{
    struct talas_subsonic_args a = {0};
    const char *ids[4];

    assert_int_equal(parse(&a, "u=al%20ice&p=a+b&&songId=1&songId=2&flag&empty="), 0);
    assert_int_equal(parse(&a, "songId=3&u=bob"), 0); /* a body after the query */
    assert_string_equal(talas_subsonic_arg(&a, "u"), "al ice");
    assert_string_equal(talas_subsonic_arg(&a, "p"), "a b");
    assert_string_equal(talas_subsonic_arg(&a, "flag"), "");
    assert_string_equal(talas_subsonic_arg(&a, "empty"), "");
    assert_null(talas_subsonic_arg(&a, "missing"));
    assert_int_equal(talas_subsonic_arg_all(&a, "songId", ids, 2), 3);
    assert_string_equal(ids[0], "1");
    assert_string_equal(ids[1], "2");
    talas_subsonic_args_free(&a);

    assert_int_equal(parse(&a, "a=%zz"), -1);
    talas_subsonic_args_free(&a);
    assert_int_equal(parse(&a, "a=%4"), -1);
    talas_subsonic_args_free(&a);
    assert_int_equal(parse(&a, "a=x%00y"), -1);
    talas_subsonic_args_free(&a);
    assert_int_equal(parse(&a, "a%00=1"), -1);
    talas_subsonic_args_free(&a);
    assert_int_equal(parse(&a, ""), 0);
    assert_int_equal(a.count, 0);
    talas_subsonic_args_free(&a);
}

static void test_field_cap(void **state)
{
    struct talas_subsonic_args a = {0};
    size_t n = TALAS_SUBSONIC_MAX_PARAMS + 1;
    char *s = malloc(n * 4 + 1), *p = s;

    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "a=1&");
    assert_int_equal(talas_subsonic_args_parse(&a, s, (size_t)(p - s) - 4 * 1), 0);
    assert_int_equal(a.count, TALAS_SUBSONIC_MAX_PARAMS);
    assert_int_equal(talas_subsonic_args_parse(&a, "b=2", 3), -1);
    talas_subsonic_args_free(&a);
    free(s);
}

static void test_int(void **state)
{
    struct talas_subsonic_args a = {0};
    const char *error = NULL;
    int64_t v;

    assert_int_equal(parse(&a, "size=20&offset=-1&big=99999999999999999999&x=1a&e="), 0);
    assert_int_equal(talas_subsonic_arg_int(&a, "size", 0, 500, 10, &v, &error), 0);
    assert_int_equal(v, 20);
    assert_int_equal(talas_subsonic_arg_int(&a, "none", 0, 500, 10, &v, &error), 0);
    assert_int_equal(v, 10);
    assert_int_equal(talas_subsonic_arg_int(&a, "e", 0, 500, 7, &v, &error), 0);
    assert_int_equal(v, 7);
    assert_int_equal(talas_subsonic_arg_int(&a, "offset", 0, 500, 0, &v, &error), -1);
    assert_non_null(error);
    assert_int_equal(talas_subsonic_arg_int(&a, "offset", -5, 500, 0, &v, &error), 0);
    assert_int_equal(v, -1);
    assert_int_equal(talas_subsonic_arg_int(&a, "size", 0, 19, 0, &v, &error), -1);
    assert_int_equal(talas_subsonic_arg_int(&a, "big", 0, INT64_MAX, 0, &v, &error), -1);
    assert_int_equal(talas_subsonic_arg_int(&a, "x", 0, 500, 0, &v, &error), -1);
    talas_subsonic_args_free(&a);
}

static void test_method(void **state)
{
    char name[TALAS_SUBSONIC_METHOD_MAX + 1];
    char longp[100];

    assert_int_equal(talas_subsonic_method("/rest/ping", 10, name), 0);
    assert_string_equal(name, "ping");
    assert_int_equal(talas_subsonic_method("/rest/getAlbumList2.view", 24, name), 0);
    assert_string_equal(name, "getAlbumList2");
    assert_int_equal(talas_subsonic_method("/rest/", 6, name), -1);
    assert_int_equal(talas_subsonic_method("/rest/.view", 11, name), -1);
    assert_int_equal(talas_subsonic_method("/rest/a/b", 9, name), -1);
    assert_int_equal(talas_subsonic_method("/rest/a.b", 9, name), -1);
    assert_int_equal(talas_subsonic_method("/api/ping", 9, name), -1);
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "/rest/", 6);
    assert_int_equal(talas_subsonic_method(longp, 6 + 63, name), 0);
    assert_int_equal(talas_subsonic_method(longp, 6 + 64, name), -1);
}

static void test_format(void **state)
{
    static const struct {
        const char *query;
        int rc;
        enum talas_subsonic_format format;
        const char *callback;
    } cases[] = {
        {"", 0, TALAS_SUBSONIC_XML, NULL},
        {"f=xml", 0, TALAS_SUBSONIC_XML, NULL},
        {"f=json", 0, TALAS_SUBSONIC_JSON, NULL},
        {"f=jsonp&callback=cb.x_1$", 0, TALAS_SUBSONIC_JSONP, "cb.x_1$"},
        {"f=jsonp", -1, TALAS_SUBSONIC_JSON, NULL},
        {"f=jsonp&callback=alert(1)", -1, TALAS_SUBSONIC_JSON, NULL},
        {"f=jsonp&callback=1a", -1, TALAS_SUBSONIC_JSON, NULL},
        {"f=yaml", -1, TALAS_SUBSONIC_XML, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct talas_subsonic_args a = {0};
        enum talas_subsonic_format f;
        const char *cb, *error = NULL;

        assert_int_equal(parse(&a, cases[i].query), 0);
        assert_int_equal(talas_subsonic_format(&a, &f, &cb, &error), cases[i].rc);
        assert_int_equal(f, cases[i].format);
        if (cases[i].callback != NULL)
            assert_string_equal(cb, cases[i].callback);
        if (cases[i].rc != 0)
            assert_non_null(error);
        talas_subsonic_args_free(&a);
    }
}

static void test_auth(void **state)
{
    static const struct {
        const char *query;
        int code;
        enum talas_subsonic_auth_mode mode;
    } cases[] = {
        {"u=alice&p=secret", 0, TALAS_SUBSONIC_AUTH_PASSWORD},
        {"u=alice&p=enc:736563726574", 0, TALAS_SUBSONIC_AUTH_PASSWORD},
        {"u=alice&t=26719a1196d2a940705a59634eb18eab&s=c19b2d", 0, TALAS_SUBSONIC_AUTH_TOKEN},
        {"apiKey=abc", 0, TALAS_SUBSONIC_AUTH_APIKEY},
        {"", TALAS_SUBSONIC_E_MISSING, 0},
        {"u=alice", TALAS_SUBSONIC_E_MISSING, 0},
        {"u=alice&t=26719a1196d2a940705a59634eb18eab", TALAS_SUBSONIC_E_MISSING, 0},
        {"u=alice&s=x", TALAS_SUBSONIC_E_MISSING, 0},
        {"p=secret", TALAS_SUBSONIC_E_AUTH_MECH, 0},
        {"apiKey=abc&u=alice", TALAS_SUBSONIC_E_AUTH_CONFLICT, 0},
        {"apiKey=abc&p=x", TALAS_SUBSONIC_E_AUTH_CONFLICT, 0},
        {"u=alice&p=x&t=26719a1196d2a940705a59634eb18eab&s=c", TALAS_SUBSONIC_E_AUTH_CONFLICT, 0},
        {"apiKey=", TALAS_SUBSONIC_E_APIKEY, 0},
        {"u=alice&p=enc:7", TALAS_SUBSONIC_E_CREDENTIALS, 0},
        {"u=alice&p=enc:zz", TALAS_SUBSONIC_E_CREDENTIALS, 0},
        {"u=alice&p=enc:6100", TALAS_SUBSONIC_E_CREDENTIALS, 0},
        {"u=alice&t=short&s=c", TALAS_SUBSONIC_E_CREDENTIALS, 0},
        {"u=alice&t=26719a1196d2a940705a59634eb18eaZ&s=c", TALAS_SUBSONIC_E_CREDENTIALS, 0},
        {"u=&p=x", TALAS_SUBSONIC_E_CREDENTIALS, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct talas_subsonic_args a = {0};
        struct talas_subsonic_auth auth;
        const char *error = NULL;
        int code;

        assert_int_equal(parse(&a, cases[i].query), 0);
        code = talas_subsonic_auth_parse(&a, &auth, &error);
        if (code != cases[i].code)
            fail_msg("%s: code %d, not %d", cases[i].query, code, cases[i].code);
        if (code == 0) {
            assert_int_equal(auth.mode, cases[i].mode);
            if (auth.mode == TALAS_SUBSONIC_AUTH_PASSWORD) {
                assert_string_equal(auth.password, "secret");
                assert_int_equal(auth.password_len, 6);
            }
            talas_subsonic_auth_free(&auth);
        } else {
            assert_non_null(error);
        }
        talas_subsonic_args_free(&a);
    }
}

static void test_token(void **state)
{
    /* the API's own example: md5("sesame" + "c19b2d") */
    assert_int_equal(talas_subsonic_token_ok("sesame", 6, "c19b2d", "26719a1196d2a940705a59634eb18eab"), 1);
    assert_int_equal(talas_subsonic_token_ok("sesame", 6, "c19b2d", "26719A1196D2A940705A59634EB18EAB"), 1);
    assert_int_equal(talas_subsonic_token_ok("sesame", 6, "c19b2e", "26719a1196d2a940705a59634eb18eab"), 0);
    assert_int_equal(talas_subsonic_token_ok("sesamf", 6, "c19b2d", "26719a1196d2a940705a59634eb18eab"), 0);
    assert_int_equal(talas_subsonic_token_ok("sesame", 6, "c19b2d", "26719a1196d2a940705a59634eb18ea"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields), cmocka_unit_test(test_field_cap), cmocka_unit_test(test_int),
        cmocka_unit_test(test_method), cmocka_unit_test(test_format),    cmocka_unit_test(test_auth),
        cmocka_unit_test(test_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
