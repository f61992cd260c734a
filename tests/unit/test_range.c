/*
 * test_range.c - the Range / If-Range parser against nginx's answers.
 *
 * The expected verdicts and ranges are what nginx 1.22's range filter
 * answers for a 1000-byte file (checked against a running nginx by
 * tests/integration/test_range_nginx.py); here they pin the parser alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/range.h"

struct range_case {
    const char *header;
    enum talas_range_verdict verdict;
    size_t count;
    struct talas_range ranges[3];
};

static const struct range_case cases[] = {
    {"bytes=0-0", TALAS_RANGE_PARTIAL, 1, {{0, 1}}},
    {"bytes=0-99", TALAS_RANGE_PARTIAL, 1, {{0, 100}}},
    {"bytes=100-", TALAS_RANGE_PARTIAL, 1, {{100, 1000}}},
    {"bytes=-100", TALAS_RANGE_PARTIAL, 1, {{900, 1000}}},
    {"bytes=-0", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=0-5000", TALAS_RANGE_PARTIAL, 1, {{0, 1000}}},
    {"bytes=999-", TALAS_RANGE_PARTIAL, 1, {{999, 1000}}},
    {"bytes=1000-", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=1005-", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=5-3", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=-2000", TALAS_RANGE_PARTIAL, 1, {{0, 1000}}},
    {"bytes=0-10,20-30", TALAS_RANGE_PARTIAL, 2, {{0, 11}, {20, 31}}},
    {"bytes=0-10,5-15", TALAS_RANGE_PARTIAL, 2, {{0, 11}, {5, 16}}},
    {"bytes=0-0,-1", TALAS_RANGE_PARTIAL, 2, {{0, 1}, {999, 1000}}},
    {"bytes=0-,0-", TALAS_RANGE_IGNORE, 0, {{0, 0}}},
    {"bytes=x-y", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=", TALAS_RANGE_IGNORE, 0, {{0, 0}}},
    {"bites=0-1", TALAS_RANGE_IGNORE, 0, {{0, 0}}},
    {"Bytes=0-1", TALAS_RANGE_PARTIAL, 1, {{0, 2}}},
    {"bytes=0-1 ,  3-4", TALAS_RANGE_PARTIAL, 2, {{0, 2}, {3, 5}}},
    {"bytes= 1-2", TALAS_RANGE_PARTIAL, 1, {{1, 3}}},
    {"bytes=1-2,", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=99999999999999999999999-", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    /* past off_t: clamped as RFC 9110 says (nginx answers 416) */
    {"bytes=-9223372036854775808", TALAS_RANGE_PARTIAL, 1, {{0, 1000}}},
    {"bytes=0-18446744073709551616", TALAS_RANGE_PARTIAL, 1, {{0, 1000}}},
    {"bytes=5-99999999999999999999999999", TALAS_RANGE_PARTIAL, 1, {{5, 1000}}},
    {"bytes=-9223372036854775807", TALAS_RANGE_PARTIAL, 1, {{0, 1000}}},
    {"bytes=0-1;x", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
    {"bytes=1500-2000,0-0", TALAS_RANGE_PARTIAL, 1, {{0, 1}}},
    /* an empty range at 0 (past the end of nothing) makes nginx ignore all */
    {"bytes=0--1", TALAS_RANGE_UNSATISFIABLE, 0, {{0, 0}}},
};

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct range_case *c = &cases[i];
        struct talas_range got[TALAS_RANGE_MAX];
        size_t count = 99;
        enum talas_range_verdict v = talas_range_parse(c->header, strlen(c->header), 1000, got, &count);

        print_message("%s\n", c->header);
        assert_int_equal(v, c->verdict);
        if (v != TALAS_RANGE_PARTIAL)
            continue;
        assert_int_equal(count, c->count);
        for (size_t k = 0; k < count; k++) {
            assert_int_equal(got[k].start, c->ranges[k].start);
            assert_int_equal(got[k].end, c->ranges[k].end);
        }
    }
}

static void test_empty_file(void **state)
{
    struct talas_range got[TALAS_RANGE_MAX];
    size_t count;

    /* nginx sends an empty file whole rather than a 416 for these */
    assert_int_equal(talas_range_parse("bytes=0-0", 9, 0, got, &count), TALAS_RANGE_IGNORE);
    assert_int_equal(talas_range_parse("bytes=-5", 8, 0, got, &count), TALAS_RANGE_IGNORE);
    assert_int_equal(talas_range_parse("bytes=3-", 8, 0, got, &count), TALAS_RANGE_UNSATISFIABLE);
}

static void test_not_nul_terminated(void **state)
{
    struct talas_range got[TALAS_RANGE_MAX];
    char buf[16];
    size_t count;

    /* the parser must stop at LEN even when digits follow in memory */
    memcpy(buf, "bytes=0-1999999", 15);
    assert_int_equal(talas_range_parse(buf, 9, 1000, got, &count), TALAS_RANGE_PARTIAL);
    assert_int_equal(count, 1);
    assert_int_equal(got[0].end, 2);
}

static void test_too_many_ranges(void **state)
{
    struct talas_range got[TALAS_RANGE_MAX];
    char header[2048] = "bytes=";
    size_t count;

    for (int i = 0; i < TALAS_RANGE_MAX; i++)
        sprintf(header + strlen(header), "%d-%d,", i * 2, i * 2);
    header[strlen(header) - 1] = '\0';
    assert_int_equal(talas_range_parse(header, strlen(header), 100000, got, &count), TALAS_RANGE_PARTIAL);
    assert_int_equal(count, TALAS_RANGE_MAX);
    strcat(header, ",500-500");
    assert_int_equal(talas_range_parse(header, strlen(header), 100000, got, &count), TALAS_RANGE_IGNORE);
}

static void test_if_range(void **state)
{
    const char *etag = "\"5f5e1000-3e8\"";
    int64_t lm = 1600000000; /* Sun, 13 Sep 2020 12:26:40 GMT */

    assert_true(talas_range_if_range(etag, strlen(etag), etag, strlen(etag), lm));
    assert_false(talas_range_if_range("\"other\"", 7, etag, strlen(etag), lm));
    assert_false(talas_range_if_range("W/\"5f5e1000-3e8\"", 16, etag, strlen(etag), lm));
    assert_true(talas_range_if_range("Sun, 13 Sep 2020 12:26:40 GMT", 29, etag, strlen(etag), lm));
    assert_false(talas_range_if_range("Sun, 13 Sep 2020 12:26:41 GMT", 29, etag, strlen(etag), lm));
    assert_false(talas_range_if_range("garbage", 7, etag, strlen(etag), lm));
}

static void test_http_date(void **state)
{
    assert_int_equal(talas_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29), 784111777);
    assert_int_equal(talas_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30), 784111777);
    assert_int_equal(talas_http_date_parse("Sun Nov  6 08:49:37 1994", 24), 784111777);
    assert_int_equal(talas_http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29), -1);
    assert_int_equal(talas_http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", 29), -1);
    assert_int_equal(talas_http_date_parse("", 0), -1);
    assert_int_equal(talas_http_date_parse("Sun, 29 Feb 2032 00:00:00 GMT", 29), 1961625600);
    /* negative fields (fuzz_range): a date before the epoch, or a time of day that is none */
    assert_int_equal(talas_http_date_parse("Thu, 01 Jan 1970 -1:00:00 GMT", 29), -1);
    assert_int_equal(talas_http_date_parse("Sun, 06 Nov 1994 08:-9:37 GMT", 29), -1);
    assert_int_equal(talas_http_date_parse("Sun Nov  6 08:49:-7 1994", 24), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_not_nul_terminated), cmocka_unit_test(test_too_many_ranges),
        cmocka_unit_test(test_if_range),       cmocka_unit_test(test_http_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
