/*
 * test_peaks.c - the stored waveforms of src/store/peaks.c: the record's
 * bytes (header fields, little-endian int16 pairs, full scale 32767,
 * clamping), damaged records refused by decode, get/put/drop on a
 * temporary LMDB environment (a look-up with another source identity finds
 * nothing), and downsampling (min of mins, max of maxes over each point's
 * buckets).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/peaks.h"
#include "store/storage.h"
#include "core/util.h"
#include "tmpdir.h"

static const struct talas_cache_source source = {123456789, 1700000000123456789LL};

static int16_t le16(const unsigned char *p)
{
    return (int16_t)(uint16_t)(p[0] | p[1] << 8);
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void encode(uint32_t buckets, const float *min, const float *max, struct talas_buf *out)
{
    out->len = 0;
    talas_peaks_encode(&source, 61234, buckets, min, max, out);
}

/* The record's layout, byte for byte, and values quantized to the nearest
 * step of 1/32767 with everything outside -1..1 (NaN too) clamped. */
static void test_encode_bytes(void **state)
{
    const float min[5] = {-1.0f, -0.5f, -3.0f, NAN, 0.25f};
    const float max[5] = {1.0f, 0.5f, 7.0f, 0.0f, -0.25f};
    const int16_t want_min[5] = {-32767, -16384, -32767, -32767, 8192};
    const int16_t want_max[5] = {32767, 16384, 32767, 0, -8192};
    struct talas_buf b = {0};
    const unsigned char *p;

    encode(5, min, max, &b);
    assert_int_equal(b.len, 32 + 5 * 4);
    p = (const unsigned char *)b.data;
    assert_int_equal(p[0], 1); /* version */
    assert_int_equal(p[1] | p[2] | p[3], 0);
    assert_int_equal(le(p + 4, 4), 5);
    assert_int_equal(le(p + 8, 8), source.size);
    assert_int_equal((int64_t)le(p + 16, 8), source.mtime_ns);
    assert_int_equal(le(p + 24, 8), 61234);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(le16(p + 32 + i * 4), want_min[i]);
        assert_int_equal(le16(p + 32 + i * 4 + 2), want_max[i]);
    }
    talas_buf_free(&b);
}

static void test_decode_round_trip(void **state)
{
    float min[300], max[300], out_min[300], out_max[300];
    struct talas_buf b = {0};
    struct talas_peaks pk;

    for (int i = 0; i < 300; i++) {
        min[i] = -(float)i / 300;
        max[i] = (float)(i % 17) / 17;
    }
    encode(300, min, max, &b);
    assert_int_equal(talas_peaks_decode(b.data, b.len, &pk), 0);
    assert_int_equal(pk.buckets, 300);
    assert_int_equal(pk.identity.size, source.size);
    assert_int_equal(pk.identity.mtime_ns, source.mtime_ns);
    assert_int_equal(pk.duration_ms, 61234);
    assert_ptr_equal(pk.data, (const unsigned char *)b.data + 32);
    /* as many points as buckets: the values themselves, within a step */
    talas_peaks_downsample(&pk, 300, out_min, out_max);
    for (int i = 0; i < 300; i++) {
        assert_true(fabsf(out_min[i] - min[i]) <= 0.5f / 32767 + 1e-7f);
        assert_true(fabsf(out_max[i] - max[i]) <= 0.5f / 32767 + 1e-7f);
    }
    talas_buf_free(&b);
}

static void test_decode_damaged(void **state)
{
    float min[4] = {0}, max[4] = {0};
    struct talas_buf b = {0};
    struct talas_peaks pk;
    unsigned char *p;

    encode(4, min, max, &b);
    p = (unsigned char *)b.data;
    assert_int_equal(talas_peaks_decode(p, b.len, &pk), 0);
    /* cut short, or a byte too many */
    assert_int_equal(talas_peaks_decode(p, b.len - 1, &pk), -1);
    assert_int_equal(talas_peaks_decode(p, 31, &pk), -1);
    assert_int_equal(talas_peaks_decode(p, 0, &pk), -1);
    talas_buf_append(&b, "", 1);
    p = (unsigned char *)b.data;
    assert_int_equal(talas_peaks_decode(p, b.len, &pk), -1);
    b.len--;
    /* another version */
    p[0] = 2;
    assert_int_equal(talas_peaks_decode(p, b.len, &pk), -1);
    p[0] = 1;
    /* a bucket count that does not match the length, 0, or too many */
    p[4] = 5;
    assert_int_equal(talas_peaks_decode(p, b.len, &pk), -1);
    p[4] = 0;
    assert_int_equal(talas_peaks_decode(p, 32, &pk), -1);
    talas_buf_free(&b);

    {
        static float big_min[TALAS_PEAKS_BUCKETS + 1], big_max[TALAS_PEAKS_BUCKETS + 1];
        encode(TALAS_PEAKS_BUCKETS, big_min, big_max, &b);
        assert_int_equal(talas_peaks_decode(b.data, b.len, &pk), 0);
        assert_int_equal(pk.buckets, TALAS_PEAKS_BUCKETS);
        encode(TALAS_PEAKS_BUCKETS + 1, big_min, big_max, &b);
        assert_int_equal(talas_peaks_decode(b.data, b.len, &pk), -1);
        talas_buf_free(&b);
    }
}

/* Point j covers buckets [j*B/P, (j+1)*B/P): with B = 10 and P = 3 they
 * are [0,3), [3,6), [6,10); with P > B each point gets at least one. */
static void test_downsample(void **state)
{
    float min[10], max[10], out_min[20], out_max[20];
    struct talas_buf b = {0};
    struct talas_peaks pk;

    for (int i = 0; i < 10; i++) {
        min[i] = -0.05f * (float)(i + 1);
        max[i] = 0.05f * (float)(i + 1);
    }
    /* a loud bucket in each span, not at its edge */
    min[1] = -0.9f;
    max[4] = 0.8f;
    max[9] = 0.95f;
    min[6] = -0.7f;
    encode(10, min, max, &b);
    assert_int_equal(talas_peaks_decode(b.data, b.len, &pk), 0);

    talas_peaks_downsample(&pk, 3, out_min, out_max);
    assert_float_equal(out_min[0], -0.9f, 1e-4);
    assert_float_equal(out_max[0], 0.15f, 1e-4);
    assert_float_equal(out_min[1], -0.30f, 1e-4);
    assert_float_equal(out_max[1], 0.8f, 1e-4);
    assert_float_equal(out_min[2], -0.7f, 1e-4);
    assert_float_equal(out_max[2], 0.95f, 1e-4);

    talas_peaks_downsample(&pk, 1, out_min, out_max);
    assert_float_equal(out_min[0], -0.9f, 1e-4);
    assert_float_equal(out_max[0], 0.95f, 1e-4);

    /* more points than buckets: point j shows bucket j*10/20 */
    talas_peaks_downsample(&pk, 20, out_min, out_max);
    for (int j = 0; j < 20; j++) {
        assert_float_equal(out_min[j], min[j / 2], 1e-4);
        assert_float_equal(out_max[j], max[j / 2], 1e-4);
    }
    talas_buf_free(&b);
}

/* ------------------------------------------------------------ storage */

struct fixture {
    char *dir;
    struct talas_storage *st;
};

static void fx_init(struct fixture *fx)
{
    char *error = NULL;

    fx->dir = test_tmpdir("peaks");
    assert_non_null(fx->dir);
    if (talas_storage_open(fx->dir, 16 << 20, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
}

static void fx_done(struct fixture *fx)
{
    talas_storage_close(fx->st);
    test_rm_rf(fx->dir);
    free(fx->dir);
}

static void put(struct fixture *fx, const char *track, const struct talas_cache_source *src, float level)
{
    float min[8], max[8];
    struct talas_buf b = {0};

    for (int i = 0; i < 8; i++) {
        min[i] = -level;
        max[i] = level;
    }
    talas_peaks_encode(src, 1000, 8, min, max, &b);
    assert_int_equal(talas_peaks_put(fx->st, track, b.data, b.len), 0);
    talas_buf_free(&b);
}

/* get: 0 with the record read in place, MDB_NOTFOUND for no record or for
 * one made from another file. */
static int get(struct fixture *fx, const char *track, const struct talas_cache_source *src, float *level_r)
{
    struct talas_peaks pk;
    MDB_txn *txn;
    float mn, mx;
    int rc;

    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    rc = talas_peaks_get(fx->st, txn, track, src, &pk);
    if (rc == 0) {
        assert_int_equal(pk.buckets, 8);
        assert_int_equal(pk.duration_ms, 1000);
        talas_peaks_downsample(&pk, 1, &mn, &mx);
        *level_r = mx;
    }
    mdb_txn_abort(txn);
    return rc;
}

static void test_store(void **state)
{
    struct talas_cache_source other_size = source, other_mtime = source;
    struct fixture fx;
    uint64_t count;
    float level = 0;

    other_size.size++;
    other_mtime.mtime_ns--;
    fx_init(&fx);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &source, &level), MDB_NOTFOUND);

    put(&fx, "aaaaaaaaaaaaaaaa", &source, 0.5f);
    put(&fx, "bbbbbbbbbbbbbbbb", &source, 0.25f);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &source, &level), 0);
    assert_float_equal(level, 0.5f, 1e-4);
    assert_int_equal(get(&fx, "bbbbbbbbbbbbbbbb", &source, &level), 0);
    assert_float_equal(level, 0.25f, 1e-4);
    /* the file changed: the record is not its */
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &other_size, &level), MDB_NOTFOUND);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &other_mtime, &level), MDB_NOTFOUND);
    /* a put replaces */
    put(&fx, "aaaaaaaaaaaaaaaa", &other_size, 0.75f);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &source, &level), MDB_NOTFOUND);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &other_size, &level), 0);
    assert_float_equal(level, 0.75f, 1e-4);

    /* a damaged record is -1, not a crash or a record */
    assert_int_equal(talas_peaks_put(fx.st, "cccccccccccccccc", "\1\0\0\0garbage", 11), 0);
    assert_int_equal(get(&fx, "cccccccccccccccc", &source, &level), -1);

    /* drop one, an absent one, then all */
    assert_int_equal(talas_peaks_drop(fx.st, "bbbbbbbbbbbbbbbb", &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(get(&fx, "bbbbbbbbbbbbbbbb", &source, &level), MDB_NOTFOUND);
    assert_int_equal(talas_peaks_drop(fx.st, "bbbbbbbbbbbbbbbb", &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(talas_peaks_drop(fx.st, NULL, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(get(&fx, "aaaaaaaaaaaaaaaa", &other_size, &level), MDB_NOTFOUND);
    assert_int_equal(get(&fx, "cccccccccccccccc", &source, &level), MDB_NOTFOUND);
    assert_int_equal(talas_peaks_drop(fx.st, NULL, NULL), 0);
    fx_done(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_bytes),   cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_decode_damaged), cmocka_unit_test(test_downsample),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
