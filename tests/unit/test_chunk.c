/*
 * test_chunk.c - talas_chunk_get hands out chunk N of a transcode whichever
 * way it came: a view of a real temporary LMDB cache (refcounted, the read
 * transaction held until the last release), or an encode on the worker's
 * pool, delivered on a real h2o loop and then stored in the cache; a
 * cancelled request is never called back; CACHED_ONLY never encodes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/util.h"
#include "media/chunk.h"
#include "media/transcode_jobs.h"
#include "store/cache.h"
#include "store/storage.h"
#include "worker/worker_ctx.h"
#include "worker/worker_pool.h"
#include "tmpdir.h"

#define TRACK "0123456789abcdef"

/* One worker's worth of state for the whole program: the jobs module is
 * per process, as in a worker. */
static struct {
    char *dir;
    struct talas_storage *st;
    h2o_evloop_t *loop;
    struct talas_pool *pool;
    struct talas_config conf;
    struct talas_worker_ctx ctx;
} w;

struct answer {
    struct talas_chunk_waiter waiter;
    int calls;
    enum talas_chunk_status status;
    struct talas_chunk *chunk;
};

static void on_chunk(struct talas_chunk_waiter *wt, enum talas_chunk_status status, struct talas_chunk *chunk)
{
    struct answer *a = wt->data;

    a->calls++;
    a->status = status;
    a->chunk = chunk;
}

static void ask(struct answer *a, const struct talas_transcode_source *src, uint32_t index, unsigned flags)
{
    memset(a, 0, sizeof(*a));
    a->waiter.cb = on_chunk;
    a->waiter.data = a;
    talas_chunk_get(src, index, flags, &a->waiter);
}

static int count_reader(const char *msg, void *ctx)
{
    /* one line per live reader slot after the header */
    if (strstr(msg, "pid") == NULL && strstr(msg, "no active readers") == NULL)
        (*(int *)ctx)++;
    return 0;
}

/* The read transactions open in the environment right now. */
static int live_readers(void)
{
    int n = 0;

    mdb_reader_list(talas_storage_env(w.st), count_reader, &n);
    return n;
}

static void run_loop_until(const int *flag, unsigned ms)
{
    uint64_t deadline = talas_now_ms() + ms;

    while (!*flag && talas_now_ms() < deadline)
        h2o_evloop_run(w.loop, 50);
}

/* ------------------------------------------------------------- fixtures */

static int setup(void **state)
{
    char *error = NULL;

    w.dir = test_tmpdir("chunk");
    assert_non_null(w.dir);
    if (talas_storage_open(w.dir, 64ull << 20, &w.st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    w.loop = h2o_evloop_create();
    if ((w.pool = talas_pool_create(w.loop, 1, &error)) == NULL)
        fail_msg("talas_pool_create: %s", error);
    w.conf.cache_max_size = 16ull << 20;
    w.ctx.conf = &w.conf;
    w.ctx.storage = w.st;
    w.ctx.pool = w.pool;
    w.ctx.loop = w.loop;
    talas_transcode_jobs_init(&w.ctx);
    return 0;
}

static int teardown(void **state)
{
    talas_transcode_jobs_stop();
    talas_pool_destroy(w.pool);
    talas_storage_close(w.st);
    test_rm_rf(w.dir);
    free(w.dir);
    return 0;
}

/* ---------------------------------------------------------------- cache */

static void put_chunk(const char *variant, uint32_t index, const char *payload, const uint32_t *frames,
                      size_t frame_count)
{
    struct talas_cache_put put = {
        .track = TRACK,
        .variant = variant,
        .source = {1234, 5678},
        .chunks = 3,
        .index = index,
        .payload = payload,
        .len = strlen(payload),
        .frame_sizes = frames,
        .frame_count = frame_count,
    };
    char *error = NULL;

    if (talas_cache_chunk_put(w.st, NULL, &put, &error) != 0)
        fail_msg("talas_cache_chunk_put: %s", error);
}

static void cached_source(struct talas_transcode_source *src, const char *variant)
{
    memset(src, 0, sizeof(*src));
    snprintf(src->key.track, sizeof(src->key.track), "%s", TRACK);
    snprintf(src->key.variant, sizeof(src->key.variant), "%s", variant);
    src->key.identity = (struct talas_cache_source){1234, 5678};
    snprintf(src->path, sizeof(src->path), "/nonexistent/never-encoded");
    src->layout.chunks = 3;
}

static void test_cached_chunk_is_a_view_until_released(void **state)
{
    static const uint32_t frames[] = {4, 6};
    struct talas_transcode_source src;
    struct answer a;

    put_chunk("t.cached", 1, "abcd012345", frames, 2);
    cached_source(&src, "t.cached");
    assert_int_equal(live_readers(), 0);

    ask(&a, &src, 1, TALAS_CHUNK_URGENT | TALAS_CHUNK_COUNT);
    /* cached: answered before talas_chunk_get returned */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, TALAS_CHUNK_OK);
    assert_non_null(a.chunk);
    assert_int_equal(a.chunk->len, 10);
    assert_memory_equal(a.chunk->data, "abcd012345", 10);
    assert_int_equal(a.chunk->frame_count, 2);
    assert_int_equal(talas_chunk_frame_size(a.chunk, 0), 4);
    assert_int_equal(talas_chunk_frame_size(a.chunk, 1), 6);
    /* the bytes are the map's, held by the chunk's read transaction */
    assert_int_equal(live_readers(), 1);

    assert_ptr_equal(talas_chunk_ref(a.chunk), a.chunk);
    talas_chunk_release(a.chunk);
    assert_int_equal(live_readers(), 1);
    assert_memory_equal(a.chunk->data, "abcd012345", 10);
    talas_chunk_release(a.chunk);
    assert_int_equal(live_readers(), 0);
}

static void test_cached_only_never_encodes(void **state)
{
    struct talas_transcode_source src;
    struct answer a;

    cached_source(&src, "t.cached");
    ask(&a, &src, 2, TALAS_CHUNK_CACHED_ONLY);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, TALAS_CHUNK_MISSING);
    assert_null(a.chunk);
    assert_int_equal(live_readers(), 0);
    /* beyond the last chunk */
    ask(&a, &src, 3, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, TALAS_CHUNK_ERROR);
}

static void count_scanned(void *arg, uint32_t index, uint32_t count, const struct talas_chunk *chunk)
{
    (*(uint64_t *)arg) += chunk->len;
}

static void test_scan_and_cached(void **state)
{
    struct talas_transcode_source src;
    struct talas_chunk *first;
    uint64_t bytes = 0;

    cached_source(&src, "t.cached");
    assert_int_equal(talas_chunk_cached(&src.key, 1, 1, NULL), 1);
    assert_int_equal(talas_chunk_cached(&src.key, 0, 1, NULL), 0);
    /* a transcode with chunks missing is not scanned */
    assert_int_equal(talas_chunk_scan(&src.key, 100, count_scanned, &bytes), -1);
    put_chunk("t.cached", 0, "xy", NULL, 0);
    put_chunk("t.cached", 2, "z", NULL, 0);
    assert_int_equal(talas_chunk_cached(&src.key, 0, 2, NULL), 1);
    /* the first chunk, handed over from the same look-up */
    assert_int_equal(talas_chunk_cached(&src.key, 0, 2, &first), 1);
    assert_non_null(first);
    assert_int_equal(first->len, 2);
    assert_memory_equal(first->data, "xy", 2);
    assert_int_equal(live_readers(), 1);
    talas_chunk_release(first);
    assert_int_equal(talas_chunk_cached(&src.key, 0, 3, &first), 0);
    assert_null(first);
    assert_int_equal(live_readers(), 0);
    bytes = 0;
    assert_int_equal(talas_chunk_scan(&src.key, 100, count_scanned, &bytes), 3);
    assert_int_equal(bytes, 2 + 10 + 1);
    assert_int_equal(talas_chunk_scan(&src.key, 2, count_scanned, &bytes), -1); /* more than MAX */
    assert_int_equal(live_readers(), 0);
}

/* --------------------------------------------------------------- encode */

/* A mono 16-bit WAV of SECONDS of a 440 Hz tone. */
static char *write_wav(unsigned seconds)
{
    const unsigned rate = 44100;
    uint32_t samples = rate * seconds, data_len = samples * 2;
    char *path = xasprintf("%s/tone.wav", w.dir);
    FILE *f = fopen(path, "wb");
    unsigned char h[44];

    assert_non_null(f);
    memcpy(h, "RIFF", 4);
    h[4] = (unsigned char)(36 + data_len), h[5] = (unsigned char)((36 + data_len) >> 8);
    h[6] = (unsigned char)((36 + data_len) >> 16), h[7] = (unsigned char)((36 + data_len) >> 24);
    memcpy(h + 8, "WAVEfmt ", 8);
    h[16] = 16, h[17] = h[18] = h[19] = 0;
    h[20] = 1, h[21] = 0;                                /* PCM */
    h[22] = 1, h[23] = 0;                                /* mono */
    h[24] = 0x44, h[25] = 0xac, h[26] = 0, h[27] = 0;    /* 44100 */
    h[28] = 0x88, h[29] = 0x58, h[30] = 0x01, h[31] = 0; /* 88200 bytes/s */
    h[32] = 2, h[33] = 0, h[34] = 16, h[35] = 0;
    memcpy(h + 36, "data", 4);
    h[40] = (unsigned char)data_len, h[41] = (unsigned char)(data_len >> 8);
    h[42] = (unsigned char)(data_len >> 16), h[43] = (unsigned char)(data_len >> 24);
    fwrite(h, 1, sizeof(h), f);
    for (uint32_t i = 0; i < samples; i++) {
        int16_t v = (int16_t)(8000.0 * sin(2 * M_PI * 440.0 * i / rate));
        unsigned char b[2] = {(unsigned char)v, (unsigned char)((uint16_t)v >> 8)};
        fwrite(b, 1, 2, f);
    }
    fclose(f);
    return path;
}

static void encoded_source(struct talas_transcode_source *src)
{
    struct talas_source_info info;
    char *path = write_wav(20), *error = NULL;
    struct stat sb;

    memset(src, 0, sizeof(*src));
    if (talas_source_measure(path, &info, &error) != 0)
        fail_msg("talas_source_measure: %s", error);
    talas_profile_builtin("mp3", &src->profile);
    if (talas_layout_compute(&src->profile, &info, NULL, &src->layout, &error) != 0)
        fail_msg("talas_layout_compute: %s", error);
    assert_true(src->layout.chunks >= 3);
    snprintf(src->key.track, sizeof(src->key.track), "%s", TRACK);
    talas_transcode_variant(&src->profile, &src->layout, src->key.variant);
    /* the file's own identity, as a request takes it: an encode of a file
     * that is not (any more) the one asked for is not cached */
    if (stat(path, &sb) != 0)
        fail_msg("stat %s failed", path);
    src->key.identity.size = (uint64_t)sb.st_size;
    src->key.identity.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    snprintf(src->path, sizeof(src->path), "%s", path);
    free(path);
}

static void test_encoded_chunk_comes_on_the_loop_then_from_the_cache(void **state)
{
    struct talas_transcode_source src;
    struct talas_chunk *cached;
    struct answer a, b;
    char *bytes;
    size_t len;

    encoded_source(&src);
    ask(&a, &src, 0, TALAS_CHUNK_URGENT | TALAS_CHUNK_COUNT);
    assert_int_equal(a.calls, 0); /* encoding on the pool */
    /* a second request for it joins the same encode */
    ask(&b, &src, 0, TALAS_CHUNK_URGENT);
    assert_int_equal(b.calls, 0);
    run_loop_until(&b.calls, 30000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.status, TALAS_CHUNK_OK);
    assert_ptr_equal(a.chunk, b.chunk); /* one buffer, two references */
    assert_int_equal(a.chunk->len, talas_layout_chunk_size(&src.layout, 0));
    assert_int_equal(a.chunk->frame_count, talas_layout_chunk_frame_count(&src.layout, 0));
    len = a.chunk->len;
    bytes = xmalloc(len);
    memcpy(bytes, a.chunk->data, len);
    talas_chunk_release(a.chunk);
    assert_memory_equal(b.chunk->data, bytes, len); /* still b's */
    talas_chunk_release(b.chunk);

    /* the encoder's thread stored it: now a view of the map, same bytes */
    assert_int_equal(talas_chunk_lookup(&src.key, 0, &cached), 0);
    assert_int_equal(cached->len, len);
    assert_memory_equal(cached->data, bytes, len);
    talas_chunk_release(cached);
    ask(&a, &src, 0, TALAS_CHUNK_CACHED_ONLY);
    assert_int_equal(a.status, TALAS_CHUNK_OK);
    talas_chunk_release(a.chunk);
    assert_int_equal(live_readers(), 0);
    free(bytes);
}

static void test_cancelled_request_is_never_called(void **state)
{
    struct talas_transcode_source src;
    struct answer a, probe;
    int never = 0;

    encoded_source(&src);
    ask(&a, &src, 2, TALAS_CHUNK_URGENT);
    assert_int_equal(a.calls, 0);
    talas_chunk_cancel(&a.waiter);
    talas_chunk_cancel(&a.waiter); /* harmless twice */
    /* the encode stops (or ends) without anyone to hear of it */
    run_loop_until(&never, 1500); /* and the stats are flushed (every second) */
    assert_int_equal(a.calls, 0);
    {
        struct talas_cache_stats stats;
        MDB_txn *txn;
        assert_int_equal(talas_storage_read_begin(w.st, &txn), 0);
        assert_int_equal(talas_cache_stats_get(w.st, txn, &stats), 0);
        mdb_txn_abort(txn);
        /* the encoder saw nobody was waiting */
        assert_true(stats.transcodes_cancelled >= 1);
    }
    /* and a later request starts afresh */
    ask(&probe, &src, 2, TALAS_CHUNK_URGENT);
    run_loop_until(&probe.calls, 30000);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.status, TALAS_CHUNK_OK);
    talas_chunk_release(probe.chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_chunk_is_a_view_until_released),
        cmocka_unit_test(test_cached_only_never_encodes),
        cmocka_unit_test(test_scan_and_cached),
        cmocka_unit_test(test_encoded_chunk_comes_on_the_loop_then_from_the_cache),
        cmocka_unit_test(test_cancelled_request_is_never_called),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
