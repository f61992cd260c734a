/*
 * test_cache.c - unit tests of cache.c, the transcode cache in LMDB.
 *
 * Round trips with frame tables and entry headers, look-ups of absent and
 * stale chunks, invalidation by a changed source, damaged records (bytes
 * flipped in a raw write transaction) seen by get, found and removed by
 * verify, claims across real processes (a live holder, a dead one, an old
 * one), LRU eviction under max_size, MDB_MAP_FULL in a tiny map, statistics,
 * purge, and four processes racing for the same chunks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/cache.h"
#include "store/catalog.h"
#include "store/storage.h"
#include "core/util.h"
#include "tmpdir.h"

/* ------------------------------------------------------------ helpers */

struct fixture {
    char *dir;
    struct talas_storage *st;
    uint64_t map_size;
};

static void fx_open(struct fixture *fx)
{
    char *error = NULL;

    if (talas_storage_open(fx->dir, fx->map_size, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
}

static void fx_init(struct fixture *fx, uint64_t map_size)
{
    fx->dir = test_tmpdir("cache");
    assert_non_null(fx->dir);
    fx->map_size = map_size;
    fx_open(fx);
}

static void fx_done(struct fixture *fx)
{
    talas_storage_close(fx->st);
    test_rm_rf(fx->dir);
    free(fx->dir);
}

static void track_id(int n, char id[TALAS_TRACK_ID_LEN + 1])
{
    char path[64];

    snprintf(path, sizeof(path), "/music/track-%d.flac", n);
    talas_track_id_make("music", path, id);
}

/* The deterministic "encoding" of chunk INDEX: LEN bytes that depend on
 * the track, the variant, the index and the source. */
static void fill_payload(unsigned char *p, size_t len, const char *track, const char *variant, uint32_t index,
                         const struct talas_cache_source *src)
{
    uint32_t x = 2166136261u ^ index ^ (uint32_t)src->size ^ (uint32_t)src->mtime_ns;

    for (const char *s = track; *s; s++)
        x = (x ^ (unsigned char)*s) * 16777619u;
    for (const char *s = variant; *s; s++)
        x = (x ^ (unsigned char)*s) * 16777619u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* Puts chunk INDEX of CHUNKS, LEN bytes in frames of FRAME bytes (0: no
 * table). Returns what talas_cache_chunk_put returns. */
static int put_chunk(struct talas_storage *st, const struct talas_cache_limits *limits, const char *track,
                     const char *variant, const struct talas_cache_source *src, uint32_t index,
                     uint32_t chunks, size_t len, size_t frame)
{
    struct talas_cache_put p = {0};
    unsigned char *payload = xmalloc(len);
    uint32_t *frames = NULL;
    size_t nframes = 0;
    char *error = NULL;
    int rc;

    fill_payload(payload, len, track, variant, index, src);
    if (frame > 0) {
        frames = xmalloc(sizeof(*frames) * (len / frame + 1));
        for (size_t off = 0; off < len; off += frame)
            frames[nframes++] = (uint32_t)(len - off < frame ? len - off : frame);
    }
    p.track = track;
    p.variant = variant;
    p.source = *src;
    p.chunks = chunks;
    p.total_size = 1000000;
    p.header = "ID3\x04\x00hdr";
    p.header_len = 8;
    p.index = index;
    p.payload = payload;
    p.len = len;
    p.frame_sizes = frames;
    p.frame_count = nframes;
    rc = talas_cache_chunk_put(st, limits, &p, &error);
    if (rc != 0) {
        print_message("put %s/%s #%u: %s\n", track, variant, index, error);
        free(error);
    }
    free(payload);
    free(frames);
    return rc;
}

/* Gets chunk INDEX and checks its bytes against fill_payload. */
static int get_check(struct talas_storage *st, const char *track, const char *variant,
                     const struct talas_cache_source *src, uint32_t index, size_t len)
{
    struct talas_cache_chunk c;
    unsigned char *want;
    MDB_txn *txn;
    int rc;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    rc = talas_cache_chunk_get(st, txn, track, variant, index, src, &c);
    if (rc == 0) {
        want = xmalloc(len);
        fill_payload(want, len, track, variant, index, src);
        assert_int_equal(c.len, len);
        assert_memory_equal(c.payload, want, len);
        free(want);
    }
    mdb_txn_abort(txn);
    return rc;
}

static int entry_of(struct talas_storage *st, const char *track, const char *variant,
                    struct talas_cache_entry *e)
{
    MDB_txn *txn;
    int rc;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    rc = talas_cache_entry_get(st, txn, track, variant, NULL, e);
    mdb_txn_abort(txn);
    return rc;
}

static struct talas_cache_stats stats_of(struct talas_storage *st)
{
    struct talas_cache_stats s;
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_cache_stats_get(st, txn, &s), 0);
    mdb_txn_abort(txn);
    return s;
}

static size_t entry_key(const char *track, const char *variant, unsigned char *buf)
{
    memcpy(buf, track, TALAS_TRACK_ID_LEN);
    memcpy(buf + TALAS_TRACK_ID_LEN, variant, strlen(variant));
    return TALAS_TRACK_ID_LEN + strlen(variant);
}

static size_t chunk_key(const char *track, const char *variant, uint32_t index, unsigned char *buf)
{
    size_t n = entry_key(track, variant, buf);

    buf[n] = '\0';
    buf[n + 1] = (unsigned char)(index >> 24);
    buf[n + 2] = (unsigned char)(index >> 16);
    buf[n + 3] = (unsigned char)(index >> 8);
    buf[n + 4] = (unsigned char)index;
    return n + 5;
}

/* XORs X into byte OFF of the stored value under KEY, as a disk error or a
 * stray write would, in a raw write transaction. */
static void flip(struct talas_storage *st, enum talas_dbi which, const void *k, size_t klen, size_t off,
                 unsigned char x)
{
    MDB_val key = {klen, (void *)k}, val;
    unsigned char *copy;
    MDB_txn *txn;

    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    assert_int_equal(mdb_get(txn, talas_storage_dbi(st, which), &key, &val), 0);
    assert_true(off < val.mv_size);
    copy = xmalloc(val.mv_size);
    memcpy(copy, val.mv_data, val.mv_size);
    copy[off] ^= x;
    val.mv_data = copy;
    assert_int_equal(mdb_put(txn, talas_storage_dbi(st, which), &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    free(copy);
}

static size_t count_records(struct talas_storage *st, enum talas_dbi which)
{
    MDB_stat ms;
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(mdb_stat(txn, talas_storage_dbi(st, which), &ms), 0);
    mdb_txn_abort(txn);
    return ms.ms_entries;
}

static void assert_verify_clean(struct talas_storage *st)
{
    struct talas_cache_verify_report r;

    assert_int_equal(talas_cache_verify(st, 0, &r), 0);
    if (!talas_cache_verify_clean(&r))
        fail_msg("verify: damaged entries %lu chunks %lu orphans %lu inconsistent %lu lru %lu claims %lu "
                 "totals %lu",
                 (unsigned long)r.damaged_entries, (unsigned long)r.damaged_chunks,
                 (unsigned long)r.orphan_chunks, (unsigned long)r.inconsistent_entries,
                 (unsigned long)r.lru_errors, (unsigned long)r.bad_claims, (unsigned long)r.totals_mismatch);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* -------------------------------------------------------------- tests */

static void test_roundtrip(void **state)
{
    struct talas_cache_source src = {123456, 1700000000123456789LL}, other = {123456, 1700000000123456790LL};
    struct fixture fx;
    struct talas_cache_entry e;
    struct talas_cache_chunk c;
    struct talas_cache_stats s;
    struct talas_cache_put bad = {0};
    char id[TALAS_TRACK_ID_LEN + 1], *error = NULL;
    MDB_txn *txn;
    uint64_t sum;

    (void)state;
    fx_init(&fx, 64 << 20);
    track_id(1, id);

    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 0, 3, 50000, 417), 0);
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 2, 3, 30001, 1000), 0);
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 1, 3, 100, 0), 0);

    assert_int_equal(get_check(fx.st, id, "mp3", &src, 0, 50000), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 1, 100), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 2, 30001), 0);

    /* the frame table comes back as stored, and adds up to the payload */
    assert_int_equal(talas_storage_read_begin(fx.st, &txn), 0);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 0, &src, &c), 0);
    assert_int_equal(c.frame_count, 50000 / 417 + 1);
    sum = 0;
    for (size_t i = 0; i < c.frame_count; i++) {
        assert_int_equal(talas_cache_frame_size(&c, i), i + 1 < c.frame_count ? 417 : 50000 % 417);
        sum += talas_cache_frame_size(&c, i);
    }
    assert_int_equal(sum, 50000);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 1, &src, &c), 0);
    assert_int_equal(c.frame_count, 0);
    /* absent chunk, other variant, stale source, invalid names */
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 3, &src, &c), MDB_NOTFOUND);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "high", 0, &src, &c), MDB_NOTFOUND);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 0, &other, &c), MDB_NOTFOUND);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, "short", "mp3", 0, &src, &c), MDB_NOTFOUND);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "MP3", 0, &src, &c), MDB_NOTFOUND);
    assert_int_equal(talas_cache_entry_get(fx.st, txn, id, "mp3", &other, &e), MDB_NOTFOUND);
    assert_int_equal(talas_cache_entry_get(fx.st, txn, id, "mp3", &src, &e), 0);
    assert_int_equal(e.chunks, 3);
    assert_int_equal(e.present, 3);
    assert_int_equal(e.total_size, 1000000);
    assert_int_equal(e.source.size, src.size);
    assert_true(e.source.mtime_ns == src.mtime_ns);
    assert_int_equal(e.header_len, 8);
    assert_memory_equal(e.header, "ID3\x04\x00hdr", 8);
    assert_int_equal(e.bytes, 3 * 40 + 50000 + 4 * (50000 / 417 + 1) + 100 + 30001 + 4 * 31);
    assert_true(e.last_access >= e.created && e.created > 1600000000);
    mdb_txn_abort(txn);

    s = stats_of(fx.st);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.chunks, 3);
    assert_int_equal(s.bytes, e.bytes);

    /* invalid puts store nothing */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 3, 3, 10, 0), -1);
    assert_int_equal(put_chunk(fx.st, NULL, id, "Bad!", &src, 0, 3, 10, 0), -1);
    assert_int_equal(put_chunk(fx.st, NULL, id, "a-very-long-variant-name-over-31", &src, 0, 3, 10, 0), -1);
    bad.track = id;
    bad.variant = "mp3";
    bad.source = src;
    bad.chunks = 1;
    bad.payload = "abcd";
    bad.len = 4;
    bad.frame_sizes = (const uint32_t[]){1, 2};
    bad.frame_count = 2; /* adds up to 3, not 4 */
    assert_int_equal(talas_cache_chunk_put(fx.st, NULL, &bad, &error), -1);
    assert_non_null(error);
    free(error);
    assert_int_equal(stats_of(fx.st).chunks, 3);

    /* the same chunk put again replaces it, counted once */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 1, 3, 200, 0), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 1, 200), 0);
    assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
    assert_int_equal(e.present, 3);
    assert_int_equal(stats_of(fx.st).chunks, 3);
    assert_int_equal(stats_of(fx.st).bytes, e.bytes);

    /* survives a close and reopen (a restart) */
    talas_storage_close(fx.st);
    fx_open(&fx);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 2, 30001), 0);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

static void test_source_change(void **state)
{
    struct talas_cache_source a = {1000, 1}, b = {1000, 2};
    struct talas_cache_entry e;
    struct fixture fx;
    char id[TALAS_TRACK_ID_LEN + 1], id2[TALAS_TRACK_ID_LEN + 1];

    (void)state;
    fx_init(&fx, 64 << 20);
    track_id(2, id);
    track_id(3, id2);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &a, i, 4, 5000, 0), 0);
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3.x", &a, 0, 1, 5000, 0), 0);
    assert_int_equal(put_chunk(fx.st, NULL, id2, "mp3", &a, 0, 1, 5000, 0), 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 6);

    /* the file changed: the first put from it drops the old transcode */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &b, 2, 4, 6000, 0), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &a, 0, 5000), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, id, "mp3", &b, 0, 5000), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, id, "mp3", &b, 2, 6000), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &a, 2, 6000), MDB_NOTFOUND);
    assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
    assert_int_equal(e.present, 1);
    assert_true(e.source.mtime_ns == 2);
    /* "mp3.x" shares the prefix "mp3" but is another variant: untouched */
    assert_int_equal(get_check(fx.st, id, "mp3.x", &a, 0, 5000), 0);
    assert_int_equal(get_check(fx.st, id2, "mp3", &a, 0, 5000), 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 3);
    assert_int_equal(stats_of(fx.st).chunks, 3);
    assert_int_equal(stats_of(fx.st).entries, 3);

    /* a different chunk count (another encoder) replaces the transcode too */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &b, 0, 5, 6000, 0), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &b, 2, 6000), MDB_NOTFOUND);
    assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
    assert_int_equal(e.chunks, 5);
    assert_int_equal(e.present, 1);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

static void test_damage(void **state)
{
    struct talas_cache_source src = {77, 88};
    struct talas_cache_verify_report r;
    struct talas_cache_entry e;
    struct talas_cache_chunk c;
    struct fixture fx;
    unsigned char k[64];
    char id[TALAS_TRACK_ID_LEN + 1], id2[TALAS_TRACK_ID_LEN + 1];
    MDB_txn *txn;
    size_t klen;

    (void)state;
    fx_init(&fx, 64 << 20);
    track_id(4, id);
    track_id(5, id2);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, i, 5, 20000, 500), 0);
    assert_int_equal(put_chunk(fx.st, NULL, id2, "high", &src, 0, 2, 20000, 500), 0);
    assert_verify_clean(fx.st);

    /* chunk 1: magic; chunk 2: payload length; chunk 3: a frame size;
     * chunk 4: a payload byte (only the CRC can tell) */
    klen = chunk_key(id, "mp3", 1, k);
    flip(fx.st, TALAS_DBI_CACHE_CHUNKS, k, klen, 0, 0x20);
    klen = chunk_key(id, "mp3", 2, k);
    flip(fx.st, TALAS_DBI_CACHE_CHUNKS, k, klen, 33, 0x01);
    klen = chunk_key(id, "mp3", 3, k);
    flip(fx.st, TALAS_DBI_CACHE_CHUNKS, k, klen, 40 + 4 * 7, 0x02);
    klen = chunk_key(id, "mp3", 4, k);
    flip(fx.st, TALAS_DBI_CACHE_CHUNKS, k, klen, 40 + 4 * 40 + 9999, 0x80);

    assert_int_equal(talas_storage_read_begin(fx.st, &txn), 0);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 0, &src, &c), 0);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 1, &src, &c), -1);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 2, &src, &c), -1);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 3, &src, &c), -1);
    assert_int_equal(talas_cache_chunk_get(fx.st, txn, id, "mp3", 4, &src, &c), 0); /* CRC not checked */
    /* presence: the header and lengths, not the frame table */
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 0, &src), 0);
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 1, &src), -1);
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 2, &src), -1);
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 3, &src), 0);
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 0, &(struct talas_cache_source){77, 89}),
                     MDB_NOTFOUND);
    assert_int_equal(talas_cache_chunk_present(fx.st, txn, id, "mp3", 5, &src), MDB_NOTFOUND);
    mdb_txn_abort(txn);
    /* but a claim reads the frame table: chunk 3 is to be encoded again */
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 3, &src), TALAS_CLAIM_OWNED);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 3), 0);

    /* a put replaces a damaged record, with exact counters */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, 1, 5, 20000, 500), 0);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 1, 20000), 0);

    /* and a damaged entry (bad version byte), the totals record too */
    klen = entry_key(id2, "high", k);
    flip(fx.st, TALAS_DBI_CACHE_ENTRIES, k, klen, 0, 0x40);
    assert_int_equal(entry_of(fx.st, id2, "high", &e), -1);
    flip(fx.st, TALAS_DBI_META, "cache", 5, 8, 0x01);

    assert_int_equal(talas_cache_verify(fx.st, 0, &r), 0);
    assert_false(talas_cache_verify_clean(&r));
    assert_int_equal(r.entries, 2);
    assert_int_equal(r.chunks, 6);
    assert_int_equal(r.damaged_chunks, 3);
    assert_int_equal(r.damaged_entries, 1);
    assert_int_equal(r.orphan_chunks, 1); /* id2's chunk: its entry is unreadable */
    assert_int_equal(r.totals_mismatch, 1);
    assert_int_equal(r.fixed, 0);
    /* without --fix nothing changed */
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 6);

    assert_int_equal(talas_cache_verify(fx.st, 1, &r), 0);
    assert_false(talas_cache_verify_clean(&r));
    assert_true(r.fixed >= 6);
    assert_verify_clean(fx.st);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 2);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 2, 20000), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 4, 20000), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, id, "mp3", &src, 0, 20000), 0);
    assert_int_equal(entry_of(fx.st, id2, "high", &e), MDB_NOTFOUND);
    assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
    assert_int_equal(e.present, 2);
    assert_int_equal(stats_of(fx.st).chunks, 2);
    assert_int_equal(stats_of(fx.st).entries, 1);

    /* re-encoding fills the holes; everything is consistent again */
    for (uint32_t i = 2; i < 5; i++)
        assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &src, i, 5, 20000, 500), 0);
    assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
    assert_int_equal(e.present, 5);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

/* Runs FN in a child that opens its own storage handle (never use one
 * across fork); the child's exit status is FN's return value. */
static pid_t spawn(struct fixture *fx, int (*fn)(struct talas_storage *st, void *arg), void *arg)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct talas_storage *st;
        char *error;
        int rc;

        if (talas_storage_open(fx->dir, fx->map_size, &st, &error) != 0)
            _exit(100);
        rc = fn(st, arg);
        talas_storage_close(st);
        _exit(rc);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

struct claim_arg {
    const char *track;
    uint32_t index;
    const struct talas_cache_limits *limits;
};

static const struct talas_cache_source claim_src = {5, 6};

static int child_claim(struct talas_storage *st, void *varg)
{
    struct claim_arg *a = varg;
    enum talas_claim c = talas_cache_claim(st, a->limits, a->track, "mp3", a->index, &claim_src);

    return (int)c + 10;
}

/* A child that takes a claim and keeps it (and stays alive) until the
 * returned fd is closed; returns once the claim is taken. */
static pid_t spawn_holder(struct fixture *fx, struct claim_arg *a, int *release_fd_r)
{
    int hold[2], ready[2];
    pid_t pid;
    char b;

    assert_int_equal(pipe(hold), 0);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct talas_storage *st;
        char *error;
        enum talas_claim c;

        close(hold[1]);
        close(ready[0]);
        if (talas_storage_open(fx->dir, fx->map_size, &st, &error) != 0)
            _exit(100);
        c = talas_cache_claim(st, a->limits, a->track, "mp3", a->index, &claim_src);
        b = (char)c;
        if (write(ready[1], &b, 1) != 1)
            _exit(101);
        while (read(hold[0], &b, 1) > 0)
            ;
        talas_storage_close(st);
        _exit(0);
    }
    close(hold[0]);
    close(ready[1]);
    assert_int_equal(read(ready[0], &b, 1), 1);
    assert_int_equal(b, TALAS_CLAIM_OWNED);
    close(ready[0]);
    *release_fd_r = hold[1];
    return pid;
}

static void test_claims(void **state)
{
    struct talas_cache_limits fast = {0, 50};
    struct claim_arg a = {0};
    struct fixture fx;
    char id[TALAS_TRACK_ID_LEN + 1];
    size_t count;
    pid_t pid;
    int release_fd;

    (void)state;
    fx_init(&fx, 64 << 20);
    track_id(6, id);
    a.track = id;

    /* owned, then busy for everyone, this process included */
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 0, &claim_src), TALAS_CLAIM_OWNED);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 0, &claim_src), TALAS_CLAIM_BUSY);
    a.index = 0;
    pid = spawn(&fx, child_claim, &a);
    assert_int_equal(wait_status(pid), 10 + TALAS_CLAIM_BUSY);
    /* done once stored (for the same source only), then released */
    assert_int_equal(put_chunk(fx.st, NULL, id, "mp3", &claim_src, 0, 8, 1000, 0), 0);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 0, &claim_src), TALAS_CLAIM_DONE);
    pid = spawn(&fx, child_claim, &a);
    assert_int_equal(wait_status(pid), 10 + TALAS_CLAIM_DONE);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 0), 0);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 0), MDB_NOTFOUND);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 0, &claim_src), TALAS_CLAIM_DONE);

    /* a claim whose process died is taken over */
    a.index = 1;
    pid = spawn(&fx, child_claim, &a);
    assert_int_equal(wait_status(pid), 10 + TALAS_CLAIM_OWNED); /* reaped: the pid is gone */
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 1, &claim_src), TALAS_CLAIM_OWNED);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 1), 0);

    /* a live holder keeps it, and its claim is not ours to release */
    a.index = 2;
    pid = spawn_holder(&fx, &a, &release_fd);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 2, &claim_src), TALAS_CLAIM_BUSY);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 2), MDB_NOTFOUND);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 2, &claim_src), TALAS_CLAIM_BUSY);
    close(release_fd);
    assert_int_equal(wait_status(pid), 0);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 2, &claim_src), TALAS_CLAIM_OWNED);

    /* a live holder's claim that is too old is taken over */
    a.index = 3;
    a.limits = &fast;
    pid = spawn_holder(&fx, &a, &release_fd);
    assert_int_equal(talas_cache_claim(fx.st, &fast, id, "mp3", 3, &claim_src), TALAS_CLAIM_BUSY);
    sleep_ms(120);
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 3, &claim_src), TALAS_CLAIM_BUSY);
    assert_int_equal(talas_cache_claim(fx.st, &fast, id, "mp3", 3, &claim_src), TALAS_CLAIM_OWNED);
    close(release_fd);
    assert_int_equal(wait_status(pid), 0);
    a.limits = NULL;

    /* a reaped worker's claims; this process's own at start/stop */
    a.index = 4;
    pid = spawn(&fx, child_claim, &a);
    assert_int_equal(wait_status(pid), 10 + TALAS_CLAIM_OWNED);
    a.index = 5;
    pid = spawn_holder(&fx, &a, &release_fd);
    assert_int_equal(talas_cache_claims_reap(fx.st, NULL, &count), 0);
    assert_int_equal(count, 1); /* index 4: dead; index 5: alive */
    assert_int_equal(talas_cache_claim(fx.st, NULL, id, "mp3", 5, &claim_src), TALAS_CLAIM_BUSY);
    assert_int_equal(talas_cache_release_pid(fx.st, pid, &count), 0);
    assert_int_equal(count, 1);
    close(release_fd);
    assert_int_equal(wait_status(pid), 0);
    /* ours: 2 and 3 */
    assert_int_equal(talas_cache_release_pid(fx.st, getpid(), &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CLAIMS), 0);

    /* invalid names */
    assert_int_equal(talas_cache_claim(fx.st, NULL, "nope", "mp3", 0, &claim_src), TALAS_CLAIM_ERROR);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

#define KiB 1024
#define MiB (1024 * 1024)

static void test_eviction(void **state)
{
    struct talas_cache_limits lim = {1 * MiB, 0};
    struct talas_cache_source src = {9, 9};
    struct talas_cache_entry e;
    struct talas_cache_stats s;
    struct fixture fx;
    char ids[12][TALAS_TRACK_ID_LEN + 1];
    uint64_t evicted;

    (void)state;
    fx_init(&fx, 64 << 20);
    for (int i = 0; i < 12; i++)
        track_id(100 + i, ids[i]);

    /* 12 entries of 2 x 128 KiB: 3 MiB through a 1 MiB cache, which holds 3 */
    for (int i = 0; i < 12; i++) {
        for (uint32_t k = 0; k < 2; k++)
            assert_int_equal(put_chunk(fx.st, &lim, ids[i], "mp3", &src, k, 2, 128 * KiB, 0), 0);
        assert_true(stats_of(fx.st).bytes <= 1 * MiB);
        if (i == 2)
            talas_cache_touch(fx.st, ids[0], "mp3"); /* E0 becomes the most recent */
        if (i == 3) {
            /* E1 was the least recently used, not E0 */
            assert_int_equal(entry_of(fx.st, ids[0], "mp3", &e), 0);
            assert_int_equal(entry_of(fx.st, ids[1], "mp3", &e), MDB_NOTFOUND);
            assert_int_equal(entry_of(fx.st, ids[2], "mp3", &e), 0);
        }
        if (i == 4) {
            assert_int_equal(entry_of(fx.st, ids[0], "mp3", &e), 0);
            assert_int_equal(entry_of(fx.st, ids[2], "mp3", &e), MDB_NOTFOUND);
        }
    }
    for (int i = 0; i < 12; i++) {
        int live = i >= 9;
        assert_int_equal(entry_of(fx.st, ids[i], "mp3", &e), live ? 0 : MDB_NOTFOUND);
        for (uint32_t k = 0; k < 2; k++)
            assert_int_equal(get_check(fx.st, ids[i], "mp3", &src, k, 128 * KiB), live ? 0 : MDB_NOTFOUND);
    }
    s = stats_of(fx.st);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.chunks, 6);
    assert_int_equal(s.evictions, 9);
    assert_int_equal(s.max_size, 1 * MiB);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 6);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_LRU), 3);
    assert_verify_clean(fx.st);

    /* a transcode that outgrows the cache by itself is refused, whole */
    for (uint32_t k = 0; k < 7; k++)
        assert_int_equal(put_chunk(fx.st, &lim, ids[0], "big", &src, k, 9, 128 * KiB, 0), 0);
    assert_int_equal(put_chunk(fx.st, &lim, ids[0], "big", &src, 7, 9, 128 * KiB, 0), -1);
    assert_int_equal(entry_of(fx.st, ids[0], "big", &e), 0);
    assert_int_equal(e.present, 7);
    assert_int_equal(put_chunk(fx.st, &lim, ids[1], "mp3", &src, 0, 1, 2 * MiB, 0), -1);
    assert_true(stats_of(fx.st).bytes <= 1 * MiB);
    assert_verify_clean(fx.st);

    assert_int_equal(talas_cache_evict_to(fx.st, 0, &evicted), 0);
    assert_int_equal(evicted, 1);
    assert_int_equal(stats_of(fx.st).bytes, 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_ENTRIES), 0);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

static void test_map_full(void **state)
{
    struct talas_cache_limits lim = {64 * MiB, 0};
    struct talas_cache_source src = {1, 2};
    struct talas_cache_entry e;
    struct talas_cache_stats s;
    struct fixture fx;
    char id[TALAS_TRACK_ID_LEN + 1];

    (void)state;
    fx_init(&fx, 2 * MiB);
    /* 5 MiB through a 2 MiB map: every put must succeed */
    for (int i = 0; i < 20; i++) {
        track_id(200 + i, id);
        for (uint32_t k = 0; k < 4; k++)
            assert_int_equal(put_chunk(fx.st, &lim, id, "mp3", &src, k, 4, 64 * KiB, 1000), 0);
        assert_int_equal(entry_of(fx.st, id, "mp3", &e), 0);
        assert_int_equal(e.present, 4);
    }
    s = stats_of(fx.st);
    assert_true(s.map_full_retries > 0);
    assert_true(s.evictions > 0);
    assert_true(s.bytes < 2 * MiB);
    /* the last one is whole */
    for (uint32_t k = 0; k < 4; k++)
        assert_int_equal(get_check(fx.st, id, "mp3", &src, k, 64 * KiB), 0);
    /* claims, touches and stats keep working in a full map */
    track_id(300, id);
    assert_int_equal(talas_cache_claim(fx.st, &lim, id, "mp3", 0, &src), TALAS_CLAIM_OWNED);
    assert_int_equal(talas_cache_release(fx.st, id, "mp3", 0), 0);
    assert_int_equal(talas_cache_stats_add(fx.st, &(struct talas_cache_stats){.hits = 1}), 0);
    assert_verify_clean(fx.st);
    /* a chunk larger than the whole map fails cleanly */
    assert_int_equal(put_chunk(fx.st, &lim, id, "mp3", &src, 0, 1, 3 * MiB, 0), -1);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

static void test_stats(void **state)
{
    struct talas_cache_stats d = {0}, s;
    struct fixture fx;

    (void)state;
    fx_init(&fx, 64 << 20);
    s = stats_of(fx.st);
    assert_int_equal(s.entries + s.chunks + s.bytes + s.hits + s.misses + s.evictions, 0);
    d.hits = 10;
    d.misses = 3;
    d.transcodes_started = 4;
    d.transcodes_completed = 2;
    d.transcodes_cancelled = 1;
    d.transcodes_failed = 1;
    d.bytes_encoded = 123456;
    d.encode_ms = 789;
    d.entries = 1000; /* ignored: the cache keeps these */
    d.evictions = 1000;
    assert_int_equal(talas_cache_stats_add(fx.st, &d), 0);
    assert_int_equal(talas_cache_stats_add(fx.st, &d), 0);
    s = stats_of(fx.st);
    assert_int_equal(s.hits, 20);
    assert_int_equal(s.misses, 6);
    assert_int_equal(s.transcodes_started, 8);
    assert_int_equal(s.transcodes_completed, 4);
    assert_int_equal(s.transcodes_cancelled, 2);
    assert_int_equal(s.transcodes_failed, 2);
    assert_int_equal(s.bytes_encoded, 246912);
    assert_int_equal(s.encode_ms, 1578);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.evictions, 0);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

struct purge_log {
    int calls;
    uint64_t chunks;
};

static void on_purge(const char *track, const char *variant, uint64_t chunks, uint64_t bytes, void *arg)
{
    struct purge_log *pl = arg;

    assert_true(talas_track_id_valid(track, strlen(track)));
    assert_true(talas_cache_variant_valid(variant, strlen(variant)));
    assert_true(bytes > 0);
    pl->calls++;
    pl->chunks += chunks;
}

static void test_purge(void **state)
{
    struct talas_cache_source src = {3, 4};
    struct talas_cache_purge_result res;
    struct purge_log pl = {0};
    struct talas_cache_entry e;
    struct talas_cache_stats s;
    struct fixture fx;
    char a[TALAS_TRACK_ID_LEN + 1], b[TALAS_TRACK_ID_LEN + 1];

    (void)state;
    fx_init(&fx, 64 << 20);
    track_id(400, a);
    track_id(401, b);
    for (uint32_t k = 0; k < 3; k++) {
        assert_int_equal(put_chunk(fx.st, NULL, a, "mp3", &src, k, 3, 1000, 0), 0);
        assert_int_equal(put_chunk(fx.st, NULL, a, "hls.high", &src, k, 3, 1000, 0), 0);
        assert_int_equal(put_chunk(fx.st, NULL, b, "mp3", &src, k, 3, 1000, 0), 0);
    }
    /* 40 more entries: more than one batch */
    for (int i = 0; i < 40; i++) {
        char id[TALAS_TRACK_ID_LEN + 1];
        track_id(500 + i, id);
        assert_int_equal(put_chunk(fx.st, NULL, id, "preview.mp3", &src, 0, 1, 100, 0), 0);
    }
    assert_int_equal(talas_cache_purge(fx.st, "not-a-track", NULL, NULL, &res), EINVAL);

    assert_int_equal(talas_cache_purge(fx.st, a, on_purge, &pl, &res), 0);
    assert_int_equal(res.entries, 2);
    assert_int_equal(res.chunks, 6);
    assert_int_equal(res.bytes, 6 * (40 + 1000));
    assert_int_equal(pl.calls, 2);
    assert_int_equal(pl.chunks, 6);
    assert_int_equal(entry_of(fx.st, a, "mp3", &e), MDB_NOTFOUND);
    assert_int_equal(entry_of(fx.st, a, "hls.high", &e), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, a, "mp3", &src, 0, 1000), MDB_NOTFOUND);
    assert_int_equal(get_check(fx.st, b, "mp3", &src, 2, 1000), 0);
    assert_verify_clean(fx.st);

    assert_int_equal(talas_cache_purge(fx.st, a, NULL, NULL, &res), 0);
    assert_int_equal(res.entries, 0);

    assert_int_equal(talas_cache_purge(fx.st, NULL, NULL, NULL, &res), 0);
    assert_int_equal(res.entries, 41);
    assert_int_equal(res.chunks, 43);
    s = stats_of(fx.st);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.chunks, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CHUNKS), 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_ENTRIES), 0);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_LRU), 0);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

/* ---------------------------------------------------- many processes */

#define RACE_CHILDREN 4
#define RACE_SHARED 16
#define RACE_OWN 8

struct race_arg {
    int n;
    int fd; /* one byte per chunk this child encoded */
    const char *shared;
};

static const struct talas_cache_source race_src = {42, 43};

static int race_child(struct talas_storage *st, void *varg)
{
    struct race_arg *a = varg;
    char own[TALAS_TRACK_ID_LEN + 1];

    track_id(700 + a->n, own);
    for (uint32_t i = 0; i < RACE_SHARED + RACE_OWN; i++) {
        const char *track = i < RACE_SHARED ? a->shared : own;
        uint32_t index = i < RACE_SHARED ? i : i - RACE_SHARED;
        uint32_t chunks = i < RACE_SHARED ? RACE_SHARED : RACE_OWN;
        size_t len = 20000 + 1000 * index;
        uint64_t deadline = talas_now_ms() + 20000;
        enum talas_claim c;

        for (;;) {
            c = talas_cache_claim(st, NULL, track, "mp3", index, &race_src);
            if (c == TALAS_CLAIM_ERROR)
                return 1;
            if (c != TALAS_CLAIM_BUSY)
                break;
            /* poll as a worker would, until it appears */
            while (talas_now_ms() < deadline) {
                MDB_txn *txn;
                struct talas_cache_chunk ch;
                int rc;
                if (talas_storage_read_begin(st, &txn) != 0)
                    return 2;
                rc = talas_cache_chunk_get(st, txn, track, "mp3", index, &race_src, &ch);
                mdb_txn_abort(txn);
                if (rc == 0)
                    break;
                sleep_ms(1);
            }
            if (talas_now_ms() >= deadline)
                return 3;
        }
        if (c == TALAS_CLAIM_OWNED) {
            unsigned char b = (unsigned char)(track == own ? 255 : index);
            sleep_ms(3); /* encoding */
            if (put_chunk(st, NULL, track, "mp3", &race_src, index, chunks, len, 100) != 0)
                return 4;
            if (talas_cache_release(st, track, "mp3", index) != 0)
                return 5;
            if (write(a->fd, &b, 1) != 1)
                return 6;
        }
        if (get_check(st, track, "mp3", &race_src, index, len) != 0)
            return 7;
    }
    return 0;
}

static void test_multiprocess(void **state)
{
    struct race_arg args[RACE_CHILDREN];
    pid_t pids[RACE_CHILDREN];
    int owned[256] = {0}, fds[2];
    struct talas_cache_entry e;
    struct talas_cache_stats s;
    struct fixture fx;
    char shared[TALAS_TRACK_ID_LEN + 1];
    unsigned char b;

    (void)state;
    fx_init(&fx, 256 << 20);
    track_id(600, shared);
    /* the parent's handle is not used across fork: close it first */
    talas_storage_close(fx.st);
    assert_int_equal(pipe(fds), 0);
    for (int i = 0; i < RACE_CHILDREN; i++) {
        args[i].n = i;
        args[i].fd = fds[1];
        args[i].shared = shared;
        pids[i] = spawn(&fx, race_child, &args[i]);
    }
    close(fds[1]);
    while (read(fds[0], &b, 1) == 1)
        owned[b]++;
    close(fds[0]);
    for (int i = 0; i < RACE_CHILDREN; i++)
        assert_int_equal(wait_status(pids[i]), 0);

    /* each shared chunk encoded exactly once; each child's own ones by it */
    for (int i = 0; i < RACE_SHARED; i++)
        assert_int_equal(owned[i], 1);
    assert_int_equal(owned[255], RACE_CHILDREN * RACE_OWN);

    fx_open(&fx);
    assert_int_equal(entry_of(fx.st, shared, "mp3", &e), 0);
    assert_int_equal(e.present, RACE_SHARED);
    for (uint32_t i = 0; i < RACE_SHARED; i++)
        assert_int_equal(get_check(fx.st, shared, "mp3", &race_src, i, 20000 + 1000 * i), 0);
    s = stats_of(fx.st);
    assert_int_equal(s.entries, 1 + RACE_CHILDREN);
    assert_int_equal(s.chunks, RACE_SHARED + RACE_CHILDREN * RACE_OWN);
    assert_int_equal(count_records(fx.st, TALAS_DBI_CACHE_CLAIMS), 0);
    assert_verify_clean(fx.st);
    fx_done(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_source_change),
        cmocka_unit_test(test_damage),       cmocka_unit_test(test_claims),
        cmocka_unit_test(test_eviction),     cmocka_unit_test(test_map_full),
        cmocka_unit_test(test_stats),        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_multiprocess),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
