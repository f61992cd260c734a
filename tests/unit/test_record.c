/*
 * test_record.c - the record codec (src/core/record.c): round trips over a
 * growable and a fixed buffer, the exact bytes of each put, every
 * short-read boundary, and lengths that lie.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/record.h"

/* One of everything, in a fixed order. */
static void put_all(struct talas_record_writer *w)
{
    talas_record_put_u8(w, 0xa1);
    talas_record_put_u16(w, 0xb2c3);
    talas_record_put_u32(w, 0xd4e5f607u);
    talas_record_put_u64(w, 0x0102030405060708ull);
    talas_record_put_i64(w, -42);
    talas_record_put_f64(w, 1.5);
    talas_record_put_u16be(w, 0x5566);
    talas_record_put_u32be(w, 0x11223344u);
    talas_record_put_u64be(w, 0x8877665544332211ull);
    talas_record_put_zero(w, 3);
    talas_record_put_str(w, "héllo");
    talas_record_put_str(w, NULL);
    talas_record_put_strn(w, "abcdef", 4); /* as a char[4] that lost its NUL */
    talas_record_put_blob(w, "a\0b", 3);
    talas_record_put_bytes(w, "xyz", 3);
}

/* Reads what put_all wrote; returns the reader's _end. */
static int get_all(const void *data, size_t len, int check)
{
    struct talas_record_reader r;
    const char *s;
    const void *b;
    size_t n = 99;

    talas_record_reader_init(&r, data, len);
    uint8_t u8 = talas_record_get_u8(&r);
    uint16_t u16 = talas_record_get_u16(&r);
    uint32_t u32 = talas_record_get_u32(&r);
    uint64_t u64 = talas_record_get_u64(&r);
    int64_t i64 = talas_record_get_i64(&r);
    double f64 = talas_record_get_f64(&r);
    uint16_t b16 = talas_record_get_u16(&r);
    uint32_t b32 = talas_record_get_u32be(&r);
    uint64_t b64 = talas_record_get_u64be(&r);
    talas_record_get_zero(&r, 3);
    if (check) {
        assert_int_equal(u8, 0xa1);
        assert_int_equal(u16, 0xb2c3);
        assert_int_equal(u32, 0xd4e5f607u);
        assert_true(u64 == 0x0102030405060708ull);
        assert_true(i64 == -42);
        assert_true(f64 == 1.5);
        assert_int_equal(b16, 0x6655); /* read back little-endian */
        assert_int_equal(b32, 0x11223344u);
        assert_true(b64 == 0x8877665544332211ull);
    }
    s = talas_record_get_str(&r, &n);
    if (check) {
        assert_non_null(s);
        assert_string_equal(s, "héllo");
        assert_int_equal(n, strlen("héllo"));
    }
    s = talas_record_get_str(&r, NULL);
    if (check)
        assert_string_equal(s, "");
    s = talas_record_get_str(&r, NULL);
    if (check)
        assert_string_equal(s, "abc");
    b = talas_record_get_blob(&r, &n);
    if (check) {
        assert_int_equal(n, 3);
        assert_memory_equal(b, "a\0b", 3);
    }
    b = talas_record_get_bytes(&r, 3);
    if (check)
        assert_memory_equal(b, "xyz", 3);
    return talas_record_reader_end(&r);
}

static void test_round_trip_buf(void **state)
{
    struct talas_buf buf = {0};
    struct talas_record_writer w;

    (void)state;
    talas_buf_append(&buf, "PRE", 3); /* a writer appends: what was there stays */
    talas_record_writer_buf(&w, &buf);
    put_all(&w);
    assert_int_equal(talas_record_writer_end(&w), 0);
    assert_int_equal(w.len, buf.len - 3);
    assert_memory_equal(buf.data, "PRE", 3);
    assert_int_equal(get_all(buf.data + 3, buf.len - 3, 1), 0);
    talas_buf_free(&buf);
}

static void test_exact_bytes(void **state)
{
    static const unsigned char want[] = {
        0xa1,                                                        /* u8 */
        0xc3, 0xb2,                                                  /* u16 */
        0x07, 0xf6, 0xe5, 0xd4,                                      /* u32 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,              /* u64 */
        0xd6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,              /* i64 -42 */
        0,    0,    0,    0,    0,    0,    0xf8, 0x3f,              /* f64 1.5 */
        0x55, 0x66,                                                  /* u16be */
        0x11, 0x22, 0x33, 0x44,                                      /* u32be */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,              /* u64be */
        0,    0,    0,                                               /* zero */
        6,    0,    0,    0,    'h',  0xc3, 0xa9, 'l',  'l', 'o', 0, /* str */
        0,    0,    0,    0,    0,                                   /* NULL str */
        3,    0,    0,    0,    'a',  'b',  'c',  0,                 /* strn */
        3,    0,    0,    0,    'a',  0,    'b',                     /* blob */
        'x',  'y',  'z',                                             /* bytes */
    };
    struct talas_buf buf = {0};
    struct talas_record_writer w;

    (void)state;
    talas_record_writer_buf(&w, &buf);
    put_all(&w);
    assert_int_equal(buf.len, sizeof(want));
    assert_memory_equal(buf.data, want, sizeof(want));
    talas_buf_free(&buf);
}

/* A fixed buffer of every size short of the record overflows, writes
 * nothing past its end, and one of the exact size does not. */
static void test_fixed_overflow(void **state)
{
    struct talas_buf ref = {0};
    struct talas_record_writer w;

    (void)state;
    talas_record_writer_buf(&w, &ref);
    put_all(&w);
    for (size_t cap = 0; cap <= ref.len; cap++) {
        unsigned char *mem = malloc(ref.len + 8);
        memset(mem, 0x5a, ref.len + 8);
        talas_record_writer_mem(&w, mem, cap);
        put_all(&w);
        if (cap < ref.len) {
            assert_int_equal(talas_record_writer_end(&w), -1);
            assert_true(w.len <= cap);
        } else {
            assert_int_equal(talas_record_writer_end(&w), 0);
            assert_int_equal(w.len, ref.len);
            assert_memory_equal(mem, ref.data, ref.len);
            assert_int_equal(get_all(mem, w.len, 1), 0);
        }
        for (size_t i = cap; i < ref.len + 8; i++)
            assert_int_equal(mem[i], 0x5a);
        free(mem);
    }
    talas_buf_free(&ref);
}

/* Every truncation fails, and gets past the end read 0. */
static void test_short_reads(void **state)
{
    struct talas_buf buf = {0};
    struct talas_record_writer w;

    (void)state;
    talas_record_writer_buf(&w, &buf);
    put_all(&w);
    for (size_t len = 0; len < buf.len; len++) {
        /* a copy of exactly LEN bytes, so that a read past it is caught
         * by the address sanitizer or valgrind too */
        unsigned char *copy = malloc(len > 0 ? len : 1);
        memcpy(copy, buf.data, len);
        assert_int_equal(get_all(copy, len, 0), -1);
        free(copy);
    }
    /* one byte more is trailing garbage */
    talas_buf_append(&buf, "", 1);
    assert_int_equal(get_all(buf.data, buf.len, 1), -1);
    talas_buf_free(&buf);
}

static void test_short_values(void **state)
{
    static const unsigned char seven[7] = {1, 2, 3, 4, 5, 6, 7};
    struct talas_record_reader r;

    (void)state;
    talas_record_reader_init(&r, seven, 7);
    assert_true(talas_record_get_u64(&r) == 0);
    assert_int_equal(talas_record_reader_ok(&r), -1);
    /* once bad, even a get that would fit reads 0 */
    assert_int_equal(talas_record_get_u8(&r), 0);
    assert_null(talas_record_get_bytes(&r, 0));

    talas_record_reader_init(&r, seven, 3);
    assert_int_equal(talas_record_get_u16(&r), 0x0201);
    assert_int_equal(talas_record_get_u16(&r), 0);
    assert_int_equal(talas_record_reader_ok(&r), -1);

    talas_record_reader_init(&r, seven, 7);
    assert_int_equal(talas_record_get_u32be(&r), 0x01020304);
    assert_int_equal(talas_record_get_u32be(&r), 0);
    assert_int_equal(talas_record_reader_ok(&r), -1);

    /* an empty record: only empty takes succeed */
    talas_record_reader_init(&r, NULL, 0);
    assert_non_null(talas_record_get_bytes(&r, 0));
    assert_int_equal(talas_record_reader_end(&r), 0);
    assert_int_equal(talas_record_get_u8(&r), 0);
    assert_int_equal(talas_record_reader_end(&r), -1);
}

static void test_zero(void **state)
{
    static const unsigned char z[4] = {0, 0, 1, 0};
    struct talas_record_reader r;

    (void)state;
    talas_record_reader_init(&r, z, 4);
    talas_record_get_zero(&r, 2);
    assert_int_equal(talas_record_reader_ok(&r), 0);
    talas_record_get_zero(&r, 2);
    assert_int_equal(talas_record_reader_ok(&r), -1);
}

/* Builds u32 LEN then the N bytes at DATA. */
static size_t lying(unsigned char *out, uint32_t len, const void *data, size_t n)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, out, 64);
    talas_record_put_u32(&w, len);
    talas_record_put_bytes(&w, data, n);
    assert_int_equal(talas_record_writer_end(&w), 0);
    return w.len;
}

static void test_lying_lengths(void **state)
{
    unsigned char rec[64];
    struct talas_record_reader r;
    size_t n, len;

    (void)state;
    /* string lengths: past the end, at the end without room for the NUL,
     * the largest u32, a missing NUL, a NUL inside */
    static const uint32_t lies[] = {10, 3, UINT32_MAX, UINT32_MAX - 1};
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        len = lying(rec, lies[i], "abc", 3);
        talas_record_reader_init(&r, rec, len);
        assert_null(talas_record_get_str(&r, &n));
        assert_int_equal(talas_record_reader_ok(&r), -1);
    }
    len = lying(rec, 3, "abcd", 4);
    talas_record_reader_init(&r, rec, len);
    assert_null(talas_record_get_str(&r, NULL));
    len = lying(rec, 3, "a\0c", 4);
    talas_record_reader_init(&r, rec, len);
    assert_null(talas_record_get_str(&r, NULL));
    len = lying(rec, 3, "abc", 4);
    talas_record_reader_init(&r, rec, len);
    assert_string_equal(talas_record_get_str(&r, &n), "abc");
    assert_int_equal(n, 3);
    assert_int_equal(talas_record_reader_end(&r), 0);
    /* a length of 0 with no NUL after it */
    len = lying(rec, 0, "", 0);
    talas_record_reader_init(&r, rec, len);
    assert_null(talas_record_get_str(&r, NULL));

    /* blobs */
    len = lying(rec, 4, "abc", 3);
    talas_record_reader_init(&r, rec, len);
    assert_null(talas_record_get_blob(&r, &n));
    assert_int_equal(talas_record_reader_ok(&r), -1);
    len = lying(rec, UINT32_MAX, "abc", 3);
    talas_record_reader_init(&r, rec, len);
    assert_null(talas_record_get_blob(&r, &n));
    len = lying(rec, 0, "", 0);
    talas_record_reader_init(&r, rec, len);
    assert_non_null(talas_record_get_blob(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(talas_record_reader_end(&r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_buf), cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_fixed_overflow), cmocka_unit_test(test_short_reads),
        cmocka_unit_test(test_short_values),   cmocka_unit_test(test_zero),
        cmocka_unit_test(test_lying_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
