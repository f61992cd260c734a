/*
 * test_json.c - the JSON writer and the UTF-8 helpers it relies on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "core/util.h"

static void test_structure(void **state)
{
    struct talas_buf out = {0};
    struct talas_json j;

    talas_json_init(&j, &out);
    talas_json_object_begin(&j);
    talas_json_key(&j, "a");
    talas_json_int(&j, -3);
    talas_json_key(&j, "list");
    talas_json_array_begin(&j);
    talas_json_uint(&j, 18446744073709551615ULL);
    talas_json_bool(&j, 1);
    talas_json_null(&j);
    talas_json_object_begin(&j);
    talas_json_object_end(&j);
    talas_json_array_end(&j);
    talas_json_key(&j, "s");
    talas_json_string(&j, NULL);
    talas_json_key(&j, "d");
    talas_json_double(&j, 0.5);
    talas_json_object_end(&j);
    assert_string_equal(out.data, "{\"a\":-3,\"list\":[18446744073709551615,true,null,{}],\"s\":null,\"d\":0.5}");
    talas_buf_free(&out);
}

static void test_escape(void **state)
{
    struct talas_buf out = {0};

    talas_json_escape(&out, "a\"b\\c\n\t\x01\x7f", 9);
    assert_string_equal(out.data, "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\"");
    out.len = 0;
    /* valid UTF-8 passes through; a lone byte becomes U+FFFD */
    talas_json_escape(&out, "caf\xc3\xa9 \xe9t\xe9", 9);
    assert_string_equal(out.data, "\"caf\xc3\xa9 \xef\xbf\xbdt\xef\xbf\xbd\"");
    out.len = 0;
    /* a NUL inside a string is escaped, not a terminator */
    talas_json_escape(&out, "a\0b", 3);
    assert_string_equal(out.data, "\"a\\u0000b\"");
    talas_buf_free(&out);
}

static void test_utf8(void **state)
{
    char *s;

    assert_true(talas_utf8_valid("h\xc3\xa9llo \xf0\x9f\x8e\xb5", 11));
    assert_false(talas_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(talas_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(talas_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(talas_utf8_valid("\xe2\x82", 2));         /* truncated */
    s = talas_utf8_sanitize("Caf\xe9", 4);
    assert_string_equal(s, "Caf\xc3\xa9");
    free(s);
    s = talas_utf8_sanitize("d\xc3\xa9j\xc3\xa0", 7);
    assert_string_equal(s, "d\xc3\xa9j\xc3\xa0");
    free(s);
}

static void test_parse_units(void **state)
{
    uint64_t v;

    assert_int_equal(talas_parse_size("4GiB", &v), 0);
    assert_int_equal(v, 4ULL << 30);
    assert_int_equal(talas_parse_size("500MB", &v), 0);
    assert_int_equal(v, 500000000ULL);
    assert_int_equal(talas_parse_size("64k", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(talas_parse_size("12 parsecs", &v), -1);
    assert_int_equal(talas_parse_size("-1", &v), -1);
    assert_int_equal(talas_parse_size("99999999999999TiB", &v), -1);
    assert_int_equal(talas_parse_duration_ms("30s", &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(talas_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(talas_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(talas_parse_duration_ms("10", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(talas_parse_duration_ms("1y", &v), -1);
}

static void test_double_digits(void **state)
{
    static const struct {
        double v;
        int digits;
        const char *text;
    } cases[] = {
        {-20.420000000000002, 2, "-20.42"}, {120.0, 2, "120"},   {0.5, 6, "0.5"}, {-0.001, 2, "0"},
        {1.0 / 0.0, 2, "null"},             {-1.0 / 0.0, 2, "null"}, {3.14159, 0, "3"}, {-23.456, 1, "-23.5"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct talas_buf out = {0};
        struct talas_json j;

        talas_json_init(&j, &out);
        talas_json_double_digits(&j, cases[i].v, cases[i].digits);
        talas_buf_append(&out, "", 1);
        assert_string_equal(out.data, cases[i].text);
        talas_buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double_digits),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_parse_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
