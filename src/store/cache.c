/*
 * cache.c - the transcode cache in LMDB: chunk records served from the map,
 * entries with an LRU order and a size bound, claims for single flight
 * across processes, statistics, purge and verify.
 *
 * Entry points: talas_cache_chunk_get() / _entry_get() / _chunk_put(),
 * talas_cache_claim() / _release() / _release_pid() / _claims_reap(),
 * talas_cache_touch(), talas_cache_evict_to(), talas_cache_purge(),
 * talas_cache_verify(), talas_cache_stats_get() / _stats_add(), and the
 * helpers of cache.h.
 *
 * Logs: damaged records met by a look-up or a put (warn), evictions forced
 * by MDB_MAP_FULL or by a full file system (warn), claims taken over (info),
 * evictions (debug).
 *
 * Layout (all integers little-endian unless said otherwise; every record
 * and key is written and read with the codec of core/record.h):
 *
 *   TALAS_DBI_CACHE_ENTRIES  key: track id (16) + variant
 *     u8 version, u8 flags (0), u16 header_len, u32 chunks, u32 present,
 *     u32 0, u64 source size, i64 source mtime_ns, u64 bytes, u64
 *     total_size, u64 created (ms), u64 last access (ms), u64 LRU sequence,
 *     then header_len bytes of header.
 *   TALAS_DBI_CACHE_CHUNKS   key: entry key + NUL + chunk index (big-endian
 *     u32, so that chunks sort in order and an entry's chunks are the keys
 *     that start with its key and a NUL: a variant has no NUL)
 *     "TCk1" magic, u8 version, u8 flags (0), u16 0, u64 source size, i64
 *     source mtime_ns, u32 index, u32 frame_count, u32 payload length, u32
 *     CRC-32 of the payload, frame_count u32 frame sizes, the payload.
 *   TALAS_DBI_CACHE_LRU      key: LRU sequence (big-endian u64) + entry key,
 *     empty value: the first key is the least recently used entry.
 *   TALAS_DBI_CACHE_CLAIMS   key: the chunk key
 *     u8 version, 3 bytes 0, u32 pid, u64 token, u64 time (ms since epoch).
 *   TALAS_DBI_META "cache"   u8 version, 7 bytes 0, then 15 u64: entries,
 *     chunks, bytes, max_size, LRU sequence, then the counters of struct
 *     talas_cache_stats from transcodes_started to map_full_retries.
 *
 * Counters are defined on records, damaged or not: an entry's present and
 * bytes are the number and total size (mv_size) of the chunk records under
 * its key, and the global entries/chunks/bytes sum all records. So a
 * damaged record can be replaced or deleted with exact bookkeeping, and
 * verify can recompute every counter from the keys and sizes alone. The LRU
 * sequence is a counter in the same record, bumped in the writer's
 * transaction: the order is exact across processes and immune to clock
 * steps.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/record.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "core/log.h"
#include "store/storage.h"
#include "core/util.h"

#define ENTRY_VERSION 1
#define ENTRY_FIXED 72
#define CHUNK_VERSION 1
#define CHUNK_HDR 40
#define CLAIM_VERSION 1
#define CLAIM_LEN 24
#define STATS_VERSION 1
#define STATS_FIELDS 15
#define STATS_LEN (8 + 8 * STATS_FIELDS)

static const unsigned char chunk_magic[4] = {'T', 'C', 'k', '1'};
static const char stats_key[] = "cache";

/* An entry key is at most 16 + 31 bytes, a chunk key 5 more, an LRU key 8 more. */
#define ENTRY_KEY_MAX (TALAS_TRACK_ID_LEN + TALAS_CACHE_VARIANT_MAX)
#define CHUNK_KEY_MAX (ENTRY_KEY_MAX + 5)
#define LRU_KEY_MAX (ENTRY_KEY_MAX + 8)

/* Rounds of evict-and-retry a put makes when LMDB reports MDB_MAP_FULL. */
#define MAP_FULL_ROUNDS 16
/* Entries a purge or evict_to removes per write transaction. */
#define BATCH 32

/* ---------------------------------------------------------------- CRC */

/* CRC-32 (IEEE, as zlib's crc32), table built once: only put and verify
 * compute it, never a look-up. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;

    pthread_once(&crc_once, crc_init);
    while (len-- > 0)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* ---------------------------------------------------------------- keys */

int talas_cache_variant_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > TALAS_CACHE_VARIANT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Builds the entry key of (TRACK, VARIANT) in BUF; returns its length, or
 * 0 when either is invalid. */
static size_t entry_key(const char *track, const char *variant, unsigned char *buf)
{
    size_t vlen;

    if (track == NULL || variant == NULL ||
        !talas_track_id_valid(track, strnlen(track, TALAS_TRACK_ID_LEN + 1)))
        return 0;
    vlen = strnlen(variant, TALAS_CACHE_VARIANT_MAX + 1);
    if (!talas_cache_variant_valid(variant, vlen))
        return 0;
    memcpy(buf, track, TALAS_TRACK_ID_LEN);
    memcpy(buf + TALAS_TRACK_ID_LEN, variant, vlen);
    return TALAS_TRACK_ID_LEN + vlen;
}

/* 1 when the LEN bytes at K have the form of an entry key. */
static int entry_key_valid(const unsigned char *k, size_t len)
{
    return len > TALAS_TRACK_ID_LEN && len <= ENTRY_KEY_MAX &&
           talas_track_id_valid((const char *)k, TALAS_TRACK_ID_LEN) &&
           talas_cache_variant_valid((const char *)k + TALAS_TRACK_ID_LEN, len - TALAS_TRACK_ID_LEN);
}

static size_t chunk_key(const unsigned char *ekey, size_t eklen, uint32_t index, unsigned char *buf)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, buf, CHUNK_KEY_MAX);
    talas_record_put_bytes(&w, ekey, eklen);
    talas_record_put_u8(&w, 0);
    talas_record_put_u32be(&w, index);
    return w.len;
}

/* Splits a chunk key into its entry key length and index; -1 when it is
 * not a chunk key. */
static int chunk_key_parse(const MDB_val *key, size_t *eklen_r, uint32_t *index_r)
{
    const unsigned char *k = key->mv_data;
    struct talas_record_reader r;
    size_t eklen;

    if (key->mv_size < TALAS_TRACK_ID_LEN + 6 || key->mv_size > CHUNK_KEY_MAX)
        return -1;
    eklen = key->mv_size - 5;
    if (k[eklen] != '\0' || !entry_key_valid(k, eklen))
        return -1;
    talas_record_reader_init(&r, k + eklen + 1, 4);
    *eklen_r = eklen;
    *index_r = talas_record_get_u32be(&r);
    return 0;
}

static size_t lru_key(uint64_t seq, const unsigned char *ekey, size_t eklen, unsigned char *buf)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, buf, LRU_KEY_MAX);
    talas_record_put_u64be(&w, seq);
    talas_record_put_bytes(&w, ekey, eklen);
    return w.len;
}

/* The LRU sequence an index key starts with (0 for a key too short). */
static uint64_t lru_key_seq(const void *key, size_t len)
{
    struct talas_record_reader r;

    talas_record_reader_init(&r, key, len);
    return talas_record_get_u64be(&r);
}

static int has_prefix(const MDB_val *key, const unsigned char *prefix, size_t len)
{
    return key->mv_size >= len && memcmp(key->mv_data, prefix, len) == 0;
}

/* For log lines: "TRACK/VARIANT". */
static void key_name(const unsigned char *ekey, size_t eklen, char *buf, size_t size)
{
    size_t n = eklen < size - 2 ? eklen : size - 2;

    memcpy(buf, ekey, TALAS_TRACK_ID_LEN < n ? TALAS_TRACK_ID_LEN : n);
    if (n > TALAS_TRACK_ID_LEN) {
        buf[TALAS_TRACK_ID_LEN] = '/';
        memcpy(buf + TALAS_TRACK_ID_LEN + 1, ekey + TALAS_TRACK_ID_LEN, n - TALAS_TRACK_ID_LEN);
        buf[n + 1] = '\0';
    } else {
        buf[n] = '\0';
    }
}

/* ---------------------------------------------------------------- stats */

struct totals {
    uint64_t v[STATS_FIELDS];
};
enum {
    T_ENTRIES,
    T_CHUNKS,
    T_BYTES,
    T_MAX_SIZE,
    T_SEQ,
    T_STARTED,
    T_COMPLETED,
    T_CANCELLED,
    T_FAILED,
    T_HITS,
    T_MISSES,
    T_BYTES_ENCODED,
    T_ENCODE_MS,
    T_EVICTIONS,
    T_MAP_FULL,
};

/* 0, MDB_NOTFOUND (all zero), -1 damaged, or an LMDB error. */
static int totals_load(struct talas_storage *st, MDB_txn *txn, struct totals *t)
{
    MDB_val key = {sizeof(stats_key) - 1, (void *)stats_key}, val;
    struct talas_record_reader r;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val)) != 0)
        return rc;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    if (talas_record_get_u8(&r) != STATS_VERSION)
        return -1;
    talas_record_get_zero(&r, 7);
    for (int i = 0; i < STATS_FIELDS; i++)
        t->v[i] = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0) {
        memset(t, 0, sizeof(*t));
        return -1;
    }
    return 0;
}

static int totals_store(struct talas_storage *st, MDB_txn *txn, const struct totals *t)
{
    MDB_val key = {sizeof(stats_key) - 1, (void *)stats_key}, val;
    unsigned char rec[STATS_LEN];
    struct talas_record_writer w;

    talas_record_writer_mem(&w, rec, sizeof(rec));
    talas_record_put_u8(&w, STATS_VERSION);
    talas_record_put_zero(&w, 7);
    for (int i = 0; i < STATS_FIELDS; i++)
        talas_record_put_u64(&w, t->v[i]);
    val.mv_data = rec;
    val.mv_size = w.len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &key, &val, 0);
}

/* Recomputes entries/chunks/bytes and the LRU sequence from the records:
 * keys and sizes only, no payload is read. */
static int totals_recount(struct talas_storage *st, MDB_txn *txn, struct totals *t)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    t->v[T_ENTRIES] = t->v[T_CHUNKS] = t->v[T_BYTES] = 0;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
        t->v[T_ENTRIES]++;
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        t->v[T_CHUNKS]++;
        t->v[T_BYTES] += val.mv_size;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    /* the sequence must stay above every key of the index */
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    if (rc == 0 && key.mv_size >= 8 && lru_key_seq(key.mv_data, key.mv_size) >= t->v[T_SEQ])
        t->v[T_SEQ] = lru_key_seq(key.mv_data, key.mv_size) + 1;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Loads the totals for a writer: a damaged record is rebuilt from the
 * records rather than trusted or fatal. */
static int totals_load_w(struct talas_storage *st, MDB_txn *txn, struct totals *t)
{
    int rc = totals_load(st, txn, t);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == -1) {
        log_warn("%s: the cache totals record is damaged: recounting", __func__);
        memset(t, 0, sizeof(*t));
        return totals_recount(st, txn, t);
    }
    return rc;
}

/* -------------------------------------------------------------- entries */

struct entry_rec {
    struct talas_cache_entry e;
    uint64_t created_ms, access_ms, seq;
    unsigned char header[TALAS_CACHE_HEADER_MAX];
};

/* Decodes an entry record; E.header points into DATA. -1 when malformed. */
static int entry_decode(const void *data, size_t len, struct entry_rec *r)
{
    struct talas_record_reader rd;
    uint8_t version, flags;
    size_t hlen;

    talas_record_reader_init(&rd, data, len);
    version = talas_record_get_u8(&rd);
    flags = talas_record_get_u8(&rd);
    hlen = talas_record_get_u16(&rd);
    r->e.chunks = talas_record_get_u32(&rd);
    r->e.present = talas_record_get_u32(&rd);
    talas_record_get_zero(&rd, 4);
    r->e.source.size = talas_record_get_u64(&rd);
    r->e.source.mtime_ns = talas_record_get_i64(&rd);
    r->e.bytes = talas_record_get_u64(&rd);
    r->e.total_size = talas_record_get_u64(&rd);
    r->created_ms = talas_record_get_u64(&rd);
    r->access_ms = talas_record_get_u64(&rd);
    r->seq = talas_record_get_u64(&rd);
    if (talas_record_reader_ok(&rd) != 0 || version != ENTRY_VERSION || flags != 0 ||
        hlen > TALAS_CACHE_HEADER_MAX)
        return -1;
    r->e.header = talas_record_get_bytes(&rd, hlen);
    r->e.header_len = hlen;
    if (talas_record_reader_end(&rd) != 0)
        return -1;
    r->e.created = r->created_ms / 1000;
    r->e.last_access = r->access_ms / 1000;
    if (r->e.chunks == 0 || r->e.present > r->e.chunks)
        return -1;
    return 0;
}

/* Copies the header out of the map: the pages an entry was decoded from may
 * be rewritten by the writes that follow in the same transaction. */
static void entry_own(struct entry_rec *r)
{
    if (r->e.header_len > 0)
        memcpy(r->header, r->e.header, r->e.header_len);
    r->e.header = r->header;
}

static int entry_store(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                       const struct entry_rec *r)
{
    unsigned char rec[ENTRY_FIXED + TALAS_CACHE_HEADER_MAX];
    MDB_val key = {eklen, (void *)ekey}, val;
    struct talas_record_writer w;

    talas_record_writer_mem(&w, rec, sizeof(rec));
    talas_record_put_u8(&w, ENTRY_VERSION);
    talas_record_put_u8(&w, 0);
    talas_record_put_u16(&w, (uint16_t)r->e.header_len);
    talas_record_put_u32(&w, r->e.chunks);
    talas_record_put_u32(&w, r->e.present);
    talas_record_put_u32(&w, 0);
    talas_record_put_u64(&w, r->e.source.size);
    talas_record_put_i64(&w, r->e.source.mtime_ns);
    talas_record_put_u64(&w, r->e.bytes);
    talas_record_put_u64(&w, r->e.total_size);
    talas_record_put_u64(&w, r->created_ms);
    talas_record_put_u64(&w, r->access_ms);
    talas_record_put_u64(&w, r->seq);
    talas_record_put_bytes(&w, r->e.header, r->e.header_len);
    if (talas_record_writer_end(&w) != 0)
        return EINVAL; /* a header above TALAS_CACHE_HEADER_MAX: put refuses those */
    val.mv_data = rec;
    val.mv_size = w.len;
    return mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, &val, 0);
}

/* Moves the entry to the most recently used end of the index and stores it. */
static int entry_bump(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                      struct entry_rec *r, int had_seq, struct totals *t)
{
    MDB_dbi lru = talas_storage_dbi(st, TALAS_DBI_CACHE_LRU);
    unsigned char lk[LRU_KEY_MAX];
    MDB_val key, val = {0, (void *)""};
    int rc;

    if (had_seq) {
        key.mv_data = lk;
        key.mv_size = lru_key(r->seq, ekey, eklen, lk);
        if ((rc = mdb_del(txn, lru, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    r->seq = t->v[T_SEQ]++;
    r->access_ms = talas_wall_ms();
    key.mv_data = lk;
    key.mv_size = lru_key(r->seq, ekey, eklen, lk);
    if ((rc = mdb_put(txn, lru, &key, &val, 0)) != 0)
        return rc;
    return entry_store(st, txn, ekey, eklen, r);
}

/* Deletes the index keys that name EKEY, whatever their sequence: for an
 * entry whose record (and so its sequence) is unreadable. A full pass over
 * the index, which has one key per entry. */
static int lru_purge_key(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen)
{
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (key.mv_size == eklen + 8 && memcmp((unsigned char *)key.mv_data + 8, ekey, eklen) == 0 &&
            (rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes the chunk records under EKEY, keeping T exact; adds what went to
 * *chunks_r and *bytes_r when not NULL. */
static int chunks_drop(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                       struct totals *t, uint64_t *chunks_r, uint64_t *bytes_r)
{
    unsigned char prefix[ENTRY_KEY_MAX + 1];
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    memcpy(prefix, ekey, eklen);
    prefix[eklen] = '\0';
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
        return rc;
    for (;;) {
        /* re-seek after each deletion: a cursor's position after
         * mdb_cursor_del is an LMDB subtlety not worth relying on */
        key.mv_data = prefix;
        key.mv_size = eklen + 1;
        if ((rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)) != 0)
            break;
        if (!has_prefix(&key, prefix, eklen + 1)) {
            rc = MDB_NOTFOUND;
            break;
        }
        t->v[T_CHUNKS] = sub_sat(t->v[T_CHUNKS], 1);
        t->v[T_BYTES] = sub_sat(t->v[T_BYTES], val.mv_size);
        if (chunks_r != NULL)
            (*chunks_r)++;
        if (bytes_r != NULL)
            *bytes_r += val.mv_size;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes the whole transcode EKEY: chunks, entry record, index key. R is
 * its decoded record, or NULL when it is damaged or absent. */
static int entry_drop(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                      const struct entry_rec *r, struct totals *t, uint64_t *chunks_r, uint64_t *bytes_r)
{
    MDB_val key = {eklen, (void *)ekey};
    unsigned char lk[LRU_KEY_MAX];
    int rc;

    if ((rc = chunks_drop(st, txn, ekey, eklen, t, chunks_r, bytes_r)) != 0)
        return rc;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, NULL);
    if (rc == 0)
        t->v[T_ENTRIES] = sub_sat(t->v[T_ENTRIES], 1);
    else if (rc != MDB_NOTFOUND)
        return rc;
    if (r == NULL)
        return lru_purge_key(st, txn, ekey, eklen);
    key.mv_data = lk;
    key.mv_size = lru_key(r->seq, ekey, eklen, lk);
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Reads the entry EKEY: 0 with R filled (header copied), MDB_NOTFOUND, -1
 * damaged, or an LMDB error. */
static int entry_read(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                      struct entry_rec *r)
{
    MDB_val key = {eklen, (void *)ekey}, val;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, &val)) != 0)
        return rc;
    if (entry_decode(val.mv_data, val.mv_size, r) == -1)
        return -1;
    entry_own(r);
    return 0;
}

/*
 * Evicts the least recently used entry other than KEEP (may be NULL).
 * Index keys that no longer match their entry are dropped on the way.
 * Returns 0 with the bytes freed in *freed_r, MDB_NOTFOUND when there is
 * nothing left to evict, or an LMDB error.
 */
static int evict_one(struct talas_storage *st, MDB_txn *txn, const unsigned char *keep, size_t keep_len,
                     struct totals *t, uint64_t *freed_r)
{
    MDB_dbi lru = talas_storage_dbi(st, TALAS_DBI_CACHE_LRU);
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    for (;;) {
        unsigned char lk[LRU_KEY_MAX], ekey[ENTRY_KEY_MAX];
        struct entry_rec r;
        size_t eklen;
        uint64_t seq, bytes = 0;
        int erc;

        if ((rc = mdb_cursor_open(txn, lru, &cur)) != 0)
            return rc;
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        while (rc == 0 && keep != NULL && key.mv_size == keep_len + 8 &&
               memcmp((unsigned char *)key.mv_data + 8, keep, keep_len) == 0)
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        if (rc != 0) {
            mdb_cursor_close(cur);
            return rc;
        }
        if (key.mv_size < 8 + TALAS_TRACK_ID_LEN + 1 || key.mv_size > LRU_KEY_MAX ||
            !entry_key_valid((unsigned char *)key.mv_data + 8, key.mv_size - 8)) {
            rc = mdb_cursor_del(cur, 0);
            mdb_cursor_close(cur);
            if (rc != 0)
                return rc;
            continue;
        }
        memcpy(lk, key.mv_data, key.mv_size);
        eklen = key.mv_size - 8;
        memcpy(ekey, lk + 8, eklen);
        seq = lru_key_seq(lk, eklen + 8);
        mdb_cursor_close(cur);

        erc = entry_read(st, txn, ekey, eklen, &r);
        if (erc != 0 && erc != MDB_NOTFOUND && erc != -1)
            return erc;
        if (erc == 0 && r.seq != seq) {
            /* a stray key: the entry is listed elsewhere in the index */
            key.mv_data = lk;
            key.mv_size = eklen + 8;
            if ((rc = mdb_del(txn, lru, &key, NULL)) != 0)
                return rc;
            continue;
        }
        if (erc == -1) {
            /* Its sequence is unreadable: drop this key, and entry_drop
             * sweeps any other. */
            key.mv_data = lk;
            key.mv_size = eklen + 8;
            if ((rc = mdb_del(txn, lru, &key, NULL)) != 0)
                return rc;
        }
        if ((rc = entry_drop(st, txn, ekey, eklen, erc == 0 ? &r : NULL, t, NULL, &bytes)) != 0)
            return rc;
        if (erc == MDB_NOTFOUND) {
            /* only the index key (and perhaps orphan chunks) were left */
            key.mv_data = lk;
            key.mv_size = eklen + 8;
            if ((rc = mdb_del(txn, lru, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
                return rc;
            if (bytes == 0)
                continue;
        }
        if (erc == 0) {
            char name[ENTRY_KEY_MAX + 2];
            key_name(ekey, eklen, name, sizeof(name));
            log_debug("cache: evicted %s (%" PRIu32 " chunks, %" PRIu64 " bytes)", name, r.e.present, bytes);
        }
        t->v[T_EVICTIONS]++;
        *freed_r = bytes;
        return 0;
    }
}

/* --------------------------------------------------------------- chunks */

/* Checks a chunk record against its key and source: 0 good, -1 damaged,
 * MDB_NOTFOUND made from another source. With CRC, the payload too. */
static int chunk_check(const MDB_val *val, uint32_t index, const struct talas_cache_source *src, int crc,
                       struct talas_cache_chunk *c)
{
    struct talas_record_reader r;
    const unsigned char *magic, *table, *payload;
    uint64_t frames, plen, size, sum = 0;
    uint32_t at, sum_crc;
    uint8_t version;
    int64_t mtime_ns;

    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    magic = talas_record_get_bytes(&r, 4);
    version = talas_record_get_u8(&r);
    talas_record_get_zero(&r, 3);
    size = talas_record_get_u64(&r);
    mtime_ns = talas_record_get_i64(&r);
    at = talas_record_get_u32(&r);
    frames = talas_record_get_u32(&r);
    plen = talas_record_get_u32(&r);
    sum_crc = talas_record_get_u32(&r);
    if (talas_record_reader_ok(&r) != 0 || memcmp(magic, chunk_magic, 4) != 0 || version != CHUNK_VERSION ||
        at != index || (uint64_t)r.left != 4 * frames + plen)
        return -1;
    table = talas_record_get_bytes(&r, 0);
    for (uint64_t i = 0; i < frames; i++)
        sum += talas_record_get_u32(&r);
    payload = talas_record_get_bytes(&r, (size_t)plen);
    if (talas_record_reader_end(&r) != 0 || (frames > 0 && sum != plen))
        return -1;
    if (crc && crc32_of(payload, (size_t)plen) != sum_crc)
        return -1;
    if (src != NULL && (size != src->size || mtime_ns != src->mtime_ns))
        return MDB_NOTFOUND;
    if (c != NULL) {
        c->frame_table = table;
        c->frame_count = (size_t)frames;
        c->payload = payload;
        c->len = (size_t)plen;
    }
    return 0;
}

int talas_cache_chunk_get(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                          uint32_t index, const struct talas_cache_source *src, struct talas_cache_chunk *c)
{
    unsigned char ekey[ENTRY_KEY_MAX], ck[CHUNK_KEY_MAX];
    size_t eklen = entry_key(track, variant, ekey);
    MDB_val key, val;
    int rc;

    if (eklen == 0 || src == NULL)
        return MDB_NOTFOUND;
    key.mv_data = ck;
    key.mv_size = chunk_key(ekey, eklen, index, ck);
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &key, &val)) != 0)
        return rc;
    rc = chunk_check(&val, index, src, 0, c);
    if (rc == -1)
        log_warn("cache: chunk %" PRIu32 " of %s/%s is damaged: re-encoding it", index, track, variant);
    return rc;
}

int talas_cache_entry_get(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                          const struct talas_cache_source *src, struct talas_cache_entry *e)
{
    unsigned char ekey[ENTRY_KEY_MAX];
    size_t eklen = entry_key(track, variant, ekey);
    struct entry_rec r;
    MDB_val key = {eklen, ekey}, val;
    int rc;

    if (eklen == 0)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, &val)) != 0)
        return rc;
    if (entry_decode(val.mv_data, val.mv_size, &r) == -1)
        return -1;
    if (src != NULL && (r.e.source.size != src->size || r.e.source.mtime_ns != src->mtime_ns))
        return MDB_NOTFOUND;
    *e = r.e;
    return 0;
}

/* ------------------------------------------------------------------ put */

uint64_t talas_cache_max_size_default(uint64_t map_size)
{
    return map_size / 2 < TALAS_CACHE_MAX_SIZE_DEFAULT ? map_size / 2 : TALAS_CACHE_MAX_SIZE_DEFAULT;
}

int talas_cache_limits_check(uint64_t max_size, uint64_t map_size, char **error_r)
{
    if (max_size > map_size / 4 * 3) {
        *error_r = xasprintf("cache.max_size (%" PRIu64 " bytes) must be at most 3/4 of storage.map_size "
                             "(%" PRIu64 " bytes): LMDB needs the rest for the catalog and free pages",
                             max_size, map_size);
        return -1;
    }
    return 0;
}

static uint64_t limit_max_size(struct talas_storage *st, const struct talas_cache_limits *limits)
{
    MDB_envinfo info;

    if (limits != NULL && limits->max_size != 0)
        return limits->max_size;
    mdb_env_info(talas_storage_env(st), &info);
    return talas_cache_max_size_default(info.me_mapsize);
}

static uint64_t limit_claim_ms(const struct talas_cache_limits *limits)
{
    return limits != NULL && limits->claim_timeout_ms != 0 ? limits->claim_timeout_ms
                                                           : TALAS_CACHE_CLAIM_TIMEOUT_MS;
}

static int same_transcode(const struct entry_rec *r, const struct talas_cache_put *p)
{
    return r->e.source.size == p->source.size && r->e.source.mtime_ns == p->source.mtime_ns &&
           r->e.chunks == p->chunks && r->e.total_size == p->total_size && r->e.header_len == p->header_len &&
           (p->header_len == 0 || memcmp(r->e.header, p->header, p->header_len) == 0);
}

/* One attempt at a put, in one write transaction. Returns 0, ENOSPC when the
 * chunk does not fit beside its own entry, or an LMDB error (MDB_MAP_FULL
 * included: the caller evicts and retries). */
static int put_once(struct talas_storage *st, uint64_t max_size, const struct talas_cache_put *p,
                    const unsigned char *ekey, size_t eklen, size_t rec_len)
{
    MDB_dbi chunks = talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS);
    unsigned char ck[CHUNK_KEY_MAX];
    struct talas_record_writer w;
    struct entry_rec r;
    struct totals t;
    MDB_txn *txn;
    MDB_val key, val;
    int rc, erc, had_seq = 0;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = totals_load_w(st, txn, &t)) != 0)
        goto fail;

    erc = entry_read(st, txn, ekey, eklen, &r);
    if (erc != 0 && erc != MDB_NOTFOUND && erc != -1) {
        rc = erc;
        goto fail;
    }
    if (erc == 0 && same_transcode(&r, p)) {
        had_seq = 1;
    } else {
        if (erc != MDB_NOTFOUND) {
            /* another source or encoder, or a damaged entry: the old
             * chunks are useless now */
            if ((rc = entry_drop(st, txn, ekey, eklen, erc == 0 ? &r : NULL, &t, NULL, NULL)) != 0)
                goto fail;
        } else if ((rc = chunks_drop(st, txn, ekey, eklen, &t, NULL, NULL)) != 0) {
            /* chunks without an entry cannot be trusted to match */
            goto fail;
        }
        memset(&r, 0, sizeof(r));
        r.e.source = p->source;
        r.e.chunks = p->chunks;
        r.e.total_size = p->total_size;
        r.e.header_len = p->header_len;
        if (p->header_len > 0)
            memcpy(r.header, p->header, p->header_len);
        r.e.header = r.header;
        r.created_ms = talas_wall_ms();
        t.v[T_ENTRIES]++;
    }

    /* a record already there (a damaged one, or a second encoder's) is
     * replaced: take it out of the counts first */
    key.mv_data = ck;
    key.mv_size = chunk_key(ekey, eklen, p->index, ck);
    rc = mdb_get(txn, chunks, &key, &val);
    if (rc == 0) {
        r.e.present = r.e.present > 0 ? r.e.present - 1 : 0;
        r.e.bytes = sub_sat(r.e.bytes, val.mv_size);
        t.v[T_CHUNKS] = sub_sat(t.v[T_CHUNKS], 1);
        t.v[T_BYTES] = sub_sat(t.v[T_BYTES], val.mv_size);
    } else if (rc != MDB_NOTFOUND) {
        goto fail;
    }

    while (t.v[T_BYTES] + rec_len > max_size) {
        uint64_t freed;
        if ((rc = evict_one(st, txn, ekey, eklen, &t, &freed)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = ENOSPC;
            goto fail;
        }
    }

    val.mv_data = NULL;
    val.mv_size = rec_len;
    if ((rc = mdb_put(txn, chunks, &key, &val, MDB_RESERVE)) != 0)
        goto fail;
    talas_record_writer_mem(&w, val.mv_data, rec_len);
    talas_record_put_bytes(&w, chunk_magic, 4);
    talas_record_put_u8(&w, CHUNK_VERSION);
    talas_record_put_zero(&w, 3);
    talas_record_put_u64(&w, p->source.size);
    talas_record_put_i64(&w, p->source.mtime_ns);
    talas_record_put_u32(&w, p->index);
    talas_record_put_u32(&w, (uint32_t)p->frame_count);
    talas_record_put_u32(&w, (uint32_t)p->len);
    talas_record_put_u32(&w, crc32_of(p->payload, p->len));
    for (size_t i = 0; i < p->frame_count; i++)
        talas_record_put_u32(&w, p->frame_sizes[i]);
    talas_record_put_bytes(&w, p->payload, p->len);
    if (talas_record_writer_end(&w) != 0 || w.len != rec_len) {
        rc = EINVAL; /* rec_len was computed from the same fields: cannot happen */
        goto fail;
    }

    r.e.present++;
    r.e.bytes += rec_len;
    t.v[T_CHUNKS]++;
    t.v[T_BYTES] += rec_len;
    t.v[T_MAX_SIZE] = max_size;
    if ((rc = entry_bump(st, txn, ekey, eklen, &r, had_seq, &t)) != 0)
        goto fail;
    if ((rc = totals_store(st, txn, &t)) != 0)
        goto fail;
    return mdb_txn_commit(txn);

fail:
    mdb_txn_abort(txn);
    return rc;
}

/*
 * After MDB_MAP_FULL: evicts least recently used entries (never KEEP) until
 * a good share of the map is free, in its own transaction, then commits a
 * second one. LMDB reuses the pages a transaction frees only once a later
 * transaction has committed (the previous snapshot must survive a crash),
 * so without the second commit the retry would meet a full map again.
 * Returns 0, MDB_NOTFOUND when nothing could be evicted, or an LMDB error.
 */
static int evict_for_map_full(struct talas_storage *st, const unsigned char *keep, size_t keep_len,
                              uint64_t want)
{
    uint64_t freed = 0, evicted = 0;
    struct totals t;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = totals_load_w(st, txn, &t)) != 0)
        goto fail;
    /* an eighth of what is cached at least: each round costs two commits */
    if (want < t.v[T_BYTES] / 8)
        want = t.v[T_BYTES] / 8;
    while (freed < want) {
        uint64_t f = 0;
        if ((rc = evict_one(st, txn, keep, keep_len, &t, &f)) != 0)
            break;
        freed += f;
        evicted++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    if (evicted == 0) {
        rc = MDB_NOTFOUND;
        goto fail;
    }
    if ((rc = totals_store(st, txn, &t)) != 0)
        goto fail;
    /* mdb_txn_commit frees the transaction, whether it fails or not */
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    log_warn("cache: storage map full: evicted %" PRIu64 " transcodes (%" PRIu64 " bytes); "
             "storage.map_size is too small for cache.max_size, or readers hold old pages",
             evicted, freed);

    /* the second commit, which also counts the retry; if it fails, the next
     * round's eviction commits instead */
    if (talas_storage_write_begin(st, &txn) != 0)
        return 0;
    if (totals_load_w(st, txn, &t) != 0 || (t.v[T_MAP_FULL]++, totals_store(st, txn, &t)) != 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    mdb_txn_commit(txn);
    return 0;

fail:
    mdb_txn_abort(txn);
    return rc;
}

/* True when the file system of the storage has less room than a record of
 * REC_LEN bytes and the pages its commit rewrites: the EIO of a write
 * transaction then means a full disk, not a failing one. */
static int disk_full(struct talas_storage *st, uint64_t rec_len)
{
    struct statvfs vfs;

    if (statvfs(talas_storage_path(st), &vfs) == -1)
        return 0;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < 2 * rec_len + 1024 * 1024;
}

int talas_cache_chunk_put(struct talas_storage *st, const struct talas_cache_limits *limits,
                          const struct talas_cache_put *p, char **error_r)
{
    unsigned char ekey[ENTRY_KEY_MAX];
    size_t eklen = entry_key(p->track, p->variant, ekey);
    uint64_t max_size = limit_max_size(st, limits), sum = 0;
    uint64_t rec_len;
    MDB_envinfo info;
    int rc = 0;

    if (eklen == 0) {
        *error_r = xasprintf("%s: invalid track id or variant", __func__);
        return -1;
    }
    if (p->chunks == 0 || p->index >= p->chunks || p->header_len > TALAS_CACHE_HEADER_MAX ||
        (p->header_len > 0 && p->header == NULL) || (p->len > 0 && p->payload == NULL) ||
        (p->frame_count > 0 && p->frame_sizes == NULL)) {
        *error_r = xasprintf("%s: %s/%s chunk %" PRIu32 " of %" PRIu32 ": invalid arguments", __func__,
                             p->track, p->variant, p->index, p->chunks);
        return -1;
    }
    if (p->len > TALAS_CACHE_CHUNK_MAX || p->frame_count > TALAS_CACHE_CHUNK_MAX / 4) {
        *error_r = xasprintf("%s: %s/%s chunk %" PRIu32 ": %zu bytes is more than a chunk may take", __func__,
                             p->track, p->variant, p->index, p->len);
        return -1;
    }
    for (size_t i = 0; i < p->frame_count; i++)
        sum += p->frame_sizes[i];
    if (p->frame_count > 0 && sum != p->len) {
        *error_r = xasprintf("%s: %s/%s chunk %" PRIu32 ": frame sizes add up to %" PRIu64 ", not %zu",
                             __func__, p->track, p->variant, p->index, sum, p->len);
        return -1;
    }
    rec_len = CHUNK_HDR + 4 * (uint64_t)p->frame_count + p->len;
    mdb_env_info(talas_storage_env(st), &info);
    /* a record that needs a good part of the map would only empty the
     * cache and then fail */
    if (rec_len > TALAS_CACHE_CHUNK_MAX || rec_len > max_size || rec_len > info.me_mapsize / 4) {
        *error_r =
            xasprintf("%s: %s/%s chunk %" PRIu32 ": %" PRIu64 " bytes do not fit in cache.max_size (%" PRIu64
                      " bytes) or a quarter of storage.map_size (%zu bytes)",
                      __func__, p->track, p->variant, p->index, rec_len, max_size, info.me_mapsize);
        return -1;
    }

    for (int round = 0;; round++) {
        rc = put_once(st, max_size, p, ekey, eklen, (size_t)rec_len);
        if (rc == EIO && disk_full(st, rec_len)) {
            /* LMDB reports a short write as EIO: with the file system full,
             * pages freed by an eviction inside the file are the only room
             * left, as after MDB_MAP_FULL */
            log_warn("cache: no space left on the storage's file system: evicting to make room");
            rc = MDB_MAP_FULL;
        }
        if (rc != MDB_MAP_FULL || round == MAP_FULL_ROUNDS)
            break;
        if ((rc = evict_for_map_full(st, ekey, eklen, 2 * rec_len)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = MDB_MAP_FULL;
            break;
        }
    }
    if (rc == 0)
        return 0;
    if (rc == ENOSPC)
        *error_r =
            xasprintf("%s: %s/%s chunk %" PRIu32 ": the transcode does not fit in cache.max_size (%" PRIu64
                      " bytes) with every other entry evicted",
                      __func__, p->track, p->variant, p->index, max_size);
    else if (rc == MDB_MAP_FULL)
        *error_r = xasprintf("%s: %s/%s chunk %" PRIu32 ": the storage map is full even with every other "
                             "entry evicted: raise storage.map_size",
                             __func__, p->track, p->variant, p->index);
    else
        *error_r = xasprintf("%s: %s/%s chunk %" PRIu32 ": %s", __func__, p->track, p->variant, p->index,
                             mdb_strerror(rc));
    return -1;
}

/* --------------------------------------------------------------- claims */

/* This process's token, drawn again in a child after fork. */
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t token_pid;
static uint64_t token_value;

static uint64_t my_token(void)
{
    uint64_t v;

    pthread_mutex_lock(&token_lock);
    if (token_pid != getpid()) {
        if (getrandom(&token_value, sizeof(token_value), 0) != (ssize_t)sizeof(token_value)) {
            /* no entropy source: time and pid still tell processes apart */
            token_value = talas_wall_ms() ^ (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&v;
        }
        token_pid = getpid();
    }
    v = token_value;
    pthread_mutex_unlock(&token_lock);
    return v;
}

struct claim {
    pid_t pid;
    uint64_t token, time_ms;
};

static int claim_decode(const MDB_val *val, struct claim *c)
{
    struct talas_record_reader r;
    uint8_t version;
    uint32_t pid;

    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    version = talas_record_get_u8(&r);
    talas_record_get_zero(&r, 3);
    pid = talas_record_get_u32(&r);
    c->token = talas_record_get_u64(&r);
    c->time_ms = talas_record_get_u64(&r);
    if (talas_record_reader_end(&r) != 0 || version != CLAIM_VERSION || pid == 0 || pid > INT32_MAX)
        return -1;
    c->pid = (pid_t)pid;
    return 0;
}

/* 1 when the claim's holder may still be encoding. */
static int claim_live(const struct claim *c, uint64_t timeout_ms, uint64_t now)
{
    uint64_t age = now > c->time_ms ? now - c->time_ms : c->time_ms - now; /* a clock stepped back too */

    if (age > timeout_ms)
        return 0;
    if (c->pid == getpid())
        return c->token == my_token();
    return kill(c->pid, 0) == 0 || errno != ESRCH;
}

/* The outcome from what TXN holds: DONE, BUSY, or OWNED meaning "free to
 * take"; ERROR with *rc_r set on an LMDB failure. *had_r tells whether a
 * (dead) claim is there. */
static enum talas_claim claim_state(struct talas_storage *st, MDB_txn *txn, const MDB_val *ck, uint32_t index,
                                    const struct talas_cache_source *src, uint64_t timeout_ms, int *had_r,
                                    int *rc_r)
{
    struct claim c;
    MDB_val val;
    int rc;

    *had_r = 0;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), (MDB_val *)ck, &val);
    if (rc == 0 && chunk_check(&val, index, src, 0, NULL) == 0)
        return TALAS_CLAIM_DONE;
    if (rc != 0 && rc != MDB_NOTFOUND) {
        *rc_r = rc;
        return TALAS_CLAIM_ERROR;
    }
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), (MDB_val *)ck, &val);
    if (rc == MDB_NOTFOUND)
        return TALAS_CLAIM_OWNED;
    if (rc != 0) {
        *rc_r = rc;
        return TALAS_CLAIM_ERROR;
    }
    *had_r = 1;
    if (claim_decode(&val, &c) == 0 && claim_live(&c, timeout_ms, talas_wall_ms()))
        return TALAS_CLAIM_BUSY;
    return TALAS_CLAIM_OWNED;
}

enum talas_claim talas_cache_claim(struct talas_storage *st, const struct talas_cache_limits *limits,
                                   const char *track, const char *variant, uint32_t index,
                                   const struct talas_cache_source *src)
{
    unsigned char ekey[ENTRY_KEY_MAX], ck[CHUNK_KEY_MAX], rec[CLAIM_LEN];
    struct talas_record_writer w;
    size_t eklen = entry_key(track, variant, ekey);
    uint64_t timeout_ms = limit_claim_ms(limits);
    enum talas_claim state;
    MDB_val key, val;
    MDB_txn *txn;
    int rc = 0, had;

    if (eklen == 0 || src == NULL) {
        log_error("%s: invalid track id or variant", __func__);
        return TALAS_CLAIM_ERROR;
    }
    key.mv_data = ck;
    key.mv_size = chunk_key(ekey, eklen, index, ck);

    /* Pollers and late comers mostly find DONE or BUSY: a read transaction
     * answers them without waiting for the writer lock. */
    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto fail;
    state = claim_state(st, txn, &key, index, src, timeout_ms, &had, &rc);
    mdb_txn_abort(txn);
    if (state != TALAS_CLAIM_OWNED)
        goto done;

    for (int round = 0; round < 2; round++) {
        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            goto fail;
        state = claim_state(st, txn, &key, index, src, timeout_ms, &had, &rc);
        if (state != TALAS_CLAIM_OWNED) {
            mdb_txn_abort(txn);
            goto done;
        }
        talas_record_writer_mem(&w, rec, sizeof(rec));
        talas_record_put_u8(&w, CLAIM_VERSION);
        talas_record_put_zero(&w, 3);
        talas_record_put_u32(&w, (uint32_t)getpid());
        talas_record_put_u64(&w, my_token());
        talas_record_put_u64(&w, talas_wall_ms());
        val.mv_data = rec;
        val.mv_size = w.len;
        if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &key, &val, 0)) == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0) {
            if (had)
                log_info("cache: took over the stale claim on chunk %" PRIu32 " of %s/%s", index, track,
                         variant);
            return TALAS_CLAIM_OWNED;
        }
        /* a full map must not reach the listener: make room once */
        if (rc != MDB_MAP_FULL || evict_for_map_full(st, NULL, 0, 0) != 0)
            break;
    }
fail:
    log_error("%s: chunk %" PRIu32 " of %s/%s: %s", __func__, index, track, variant,
              rc == -1 ? "damaged record" : mdb_strerror(rc));
    return TALAS_CLAIM_ERROR;
done:
    if (state == TALAS_CLAIM_ERROR)
        goto fail;
    return state;
}

int talas_cache_release(struct talas_storage *st, const char *track, const char *variant, uint32_t index)
{
    MDB_dbi claims = talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS);
    unsigned char ekey[ENTRY_KEY_MAX], ck[CHUNK_KEY_MAX];
    size_t eklen = entry_key(track, variant, ekey);
    struct claim c;
    MDB_val key, val;
    MDB_txn *txn;
    int rc;

    if (eklen == 0)
        return MDB_NOTFOUND;
    key.mv_data = ck;
    key.mv_size = chunk_key(ekey, eklen, index, ck);
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, claims, &key, &val);
    if (rc == 0) {
        if (claim_decode(&val, &c) == 0 && c.pid == getpid() && c.token == my_token())
            rc = mdb_del(txn, claims, &key, NULL);
        else
            rc = MDB_NOTFOUND;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Deletes the claims SELECT picks, in one write transaction. */
static int claims_sweep(struct talas_storage *st, int (*select)(const MDB_val *val, void *arg), void *arg,
                        size_t *count_r)
{
    MDB_cursor *cur;
    MDB_val key, val;
    MDB_txn *txn;
    size_t count = 0;
    int rc;

    if (count_r != NULL)
        *count_r = 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &cur)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (select(&val, arg)) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            count++;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    if (count_r != NULL)
        *count_r = count;
    return 0;
}

static int select_pid(const MDB_val *val, void *arg)
{
    struct claim c;

    return claim_decode(val, &c) == 0 && c.pid == *(pid_t *)arg;
}

int talas_cache_release_pid(struct talas_storage *st, pid_t pid, size_t *count_r)
{
    return claims_sweep(st, select_pid, &pid, count_r);
}

static int select_stale(const MDB_val *val, void *arg)
{
    struct claim c;

    return claim_decode(val, &c) == -1 || !claim_live(&c, *(uint64_t *)arg, talas_wall_ms());
}

int talas_cache_claims_reap(struct talas_storage *st, const struct talas_cache_limits *limits,
                            size_t *count_r)
{
    uint64_t timeout_ms = limit_claim_ms(limits);

    return claims_sweep(st, select_stale, &timeout_ms, count_r);
}

/* ---------------------------------------------------------------- touch */

/* Direct-mapped: a collision only costs an early write. */
#define TOUCH_SLOTS 1024

static pthread_mutex_t touch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    unsigned char key[ENTRY_KEY_MAX];
    uint8_t len;
    uint64_t at_ms; /* monotonic */
} touch_table[TOUCH_SLOTS];

/* 1 when EKEY is due for a write, and marks it written now. */
static int touch_due(const unsigned char *ekey, size_t eklen)
{
    uint64_t now = talas_now_ms(), h = 14695981039346656037ull;
    size_t slot;
    int due;

    for (size_t i = 0; i < eklen; i++)
        h = (h ^ ekey[i]) * 1099511628211ull;
    slot = (size_t)(h % TOUCH_SLOTS);
    pthread_mutex_lock(&touch_lock);
    due = touch_table[slot].len != eklen || memcmp(touch_table[slot].key, ekey, eklen) != 0 ||
          now - touch_table[slot].at_ms >= TALAS_CACHE_TOUCH_INTERVAL_MS;
    if (due) {
        memcpy(touch_table[slot].key, ekey, eklen);
        touch_table[slot].len = (uint8_t)eklen;
        touch_table[slot].at_ms = now;
    }
    pthread_mutex_unlock(&touch_lock);
    return due;
}

void talas_cache_touch(struct talas_storage *st, const char *track, const char *variant)
{
    unsigned char ekey[ENTRY_KEY_MAX];
    size_t eklen = entry_key(track, variant, ekey);
    struct entry_rec r;
    struct totals t;
    MDB_txn *txn;
    int rc;

    if (eklen == 0 || !touch_due(ekey, eklen))
        return;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        goto fail_nt;
    if ((rc = entry_read(st, txn, ekey, eklen, &r)) != 0 || (rc = totals_load_w(st, txn, &t)) != 0 ||
        (rc = entry_bump(st, txn, ekey, eklen, &r, 1, &t)) != 0 || (rc = totals_store(st, txn, &t)) != 0) {
        mdb_txn_abort(txn);
        goto fail_nt;
    }
    if ((rc = mdb_txn_commit(txn)) == 0)
        return;
fail_nt:
    if (rc != MDB_NOTFOUND)
        log_debug("%s: %s/%s: %s", __func__, track, variant, rc == -1 ? "damaged record" : mdb_strerror(rc));
}

/* ------------------------------------------------------- evict / purge */

int talas_cache_evict_to(struct talas_storage *st, uint64_t target_bytes, uint64_t *evicted_r)
{
    uint64_t evicted = 0;
    int rc = 0, more = 1;

    while (more) {
        struct totals t;
        MDB_txn *txn;

        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            break;
        if ((rc = totals_load_w(st, txn, &t)) != 0) {
            mdb_txn_abort(txn);
            break;
        }
        more = 0;
        for (int i = 0; t.v[T_BYTES] > target_bytes; i++) {
            uint64_t freed;
            if (i == BATCH) {
                more = 1;
                break;
            }
            if ((rc = evict_one(st, txn, NULL, 0, &t, &freed)) != 0)
                break;
            evicted++;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc != 0 || (rc = totals_store(st, txn, &t)) != 0) {
            mdb_txn_abort(txn);
            break;
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            break;
    }
    if (evicted_r != NULL)
        *evicted_r = evicted;
    return rc;
}

struct removed {
    unsigned char key[ENTRY_KEY_MAX];
    size_t len;
    uint64_t chunks, bytes;
};

int talas_cache_purge(struct talas_storage *st, const char *track, talas_cache_purge_fn fn, void *arg,
                      struct talas_cache_purge_result *res)
{
    size_t plen = track != NULL ? TALAS_TRACK_ID_LEN : 0;
    struct talas_cache_purge_result local;
    int rc = 0, more = 1;

    if (res == NULL)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (track != NULL && !talas_track_id_valid(track, strnlen(track, TALAS_TRACK_ID_LEN + 1)))
        return EINVAL;

    /* entries, BATCH per transaction so that workers keep writing */
    while (more && rc == 0) {
        struct removed done[BATCH];
        size_t n = 0;
        struct totals t;
        MDB_cursor *cur;
        MDB_val key, val;
        MDB_txn *txn;

        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            break;
        if ((rc = totals_load_w(st, txn, &t)) != 0)
            goto abort;
        more = 0;
        while (n < BATCH) {
            struct entry_rec r;
            int erc;

            if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &cur)) != 0)
                goto abort;
            key.mv_data = (void *)track;
            key.mv_size = plen;
            rc = plen > 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                          : mdb_cursor_get(cur, &key, &val, MDB_FIRST);
            if (rc == 0 && plen > 0 && !has_prefix(&key, (const void *)track, plen))
                rc = MDB_NOTFOUND;
            if (rc == 0 && key.mv_size > ENTRY_KEY_MAX) {
                /* not an entry key: no chunk can be under it */
                rc = mdb_cursor_del(cur, 0);
                mdb_cursor_close(cur);
                if (rc != 0)
                    goto abort;
                t.v[T_ENTRIES] = sub_sat(t.v[T_ENTRIES], 1);
                continue;
            }
            if (rc != 0) {
                mdb_cursor_close(cur);
                break;
            }
            memcpy(done[n].key, key.mv_data, key.mv_size);
            done[n].len = key.mv_size;
            erc = entry_decode(val.mv_data, val.mv_size, &r);
            mdb_cursor_close(cur);
            done[n].chunks = done[n].bytes = 0;
            if ((rc = entry_drop(st, txn, done[n].key, done[n].len, erc == 0 ? &r : NULL, &t, &done[n].chunks,
                                 &done[n].bytes)) != 0)
                goto abort;
            n++;
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto abort;
        more = n == BATCH;
        if ((rc = totals_store(st, txn, &t)) != 0)
            goto abort;
        if ((rc = mdb_txn_commit(txn)) != 0)
            break;
        for (size_t i = 0; i < n; i++) {
            res->entries++;
            res->chunks += done[i].chunks;
            res->bytes += done[i].bytes;
            if (fn != NULL) {
                char tr[TALAS_TRACK_ID_LEN + 1], var[TALAS_CACHE_VARIANT_MAX + 1];
                memcpy(tr, done[i].key, TALAS_TRACK_ID_LEN);
                tr[TALAS_TRACK_ID_LEN] = '\0';
                memcpy(var, done[i].key + TALAS_TRACK_ID_LEN, done[i].len - TALAS_TRACK_ID_LEN);
                var[done[i].len - TALAS_TRACK_ID_LEN] = '\0';
                fn(tr, var, done[i].chunks, done[i].bytes, arg);
            }
        }
        continue;
    abort:
        mdb_txn_abort(txn);
        break;
    }
    if (rc != 0)
        return rc;

    /* chunk records and index keys no entry owns (verify --fix also finds
     * them; purging everything must not leave them behind) */
    {
        struct totals t;
        MDB_cursor *cur;
        MDB_val key, val;
        MDB_txn *txn;

        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            return rc;
        if ((rc = totals_load_w(st, txn, &t)) != 0)
            goto abort2;
        if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
            goto abort2;
        key.mv_data = (void *)track;
        key.mv_size = plen;
        rc = plen > 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                      : mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        while (rc == 0 && (plen == 0 || has_prefix(&key, (const void *)track, plen))) {
            struct entry_rec e;
            size_t eklen;
            uint32_t index;
            int erc = MDB_NOTFOUND;

            /* a put may have made a new entry since the batches above */
            if (chunk_key_parse(&key, &eklen, &index) == 0)
                erc = entry_read(st, txn, key.mv_data, eklen, &e);
            if (erc != 0 && erc != MDB_NOTFOUND && erc != -1) {
                rc = erc;
                break;
            }
            if (erc != 0) {
                res->chunks++;
                res->bytes += val.mv_size;
                t.v[T_CHUNKS] = sub_sat(t.v[T_CHUNKS], 1);
                t.v[T_BYTES] = sub_sat(t.v[T_BYTES], val.mv_size);
                if ((rc = mdb_cursor_del(cur, 0)) != 0)
                    break;
            }
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto abort2;
        if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &cur)) != 0)
            goto abort2;
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        while (rc == 0) {
            if (key.mv_size < 8 + TALAS_TRACK_ID_LEN ||
                (plen > 0 && memcmp((unsigned char *)key.mv_data + 8, track, plen) == 0) || (plen == 0)) {
                MDB_val ek = {key.mv_size - 8, (unsigned char *)key.mv_data + 8}, ev;
                int grc = key.mv_size < 8 + TALAS_TRACK_ID_LEN
                              ? MDB_NOTFOUND
                              : mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &ek, &ev);
                if (grc == MDB_NOTFOUND && (rc = mdb_cursor_del(cur, 0)) != 0)
                    break;
                if (grc != 0 && grc != MDB_NOTFOUND) {
                    rc = grc;
                    break;
                }
            }
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto abort2;
        if ((rc = totals_store(st, txn, &t)) != 0)
            goto abort2;
        return mdb_txn_commit(txn);
    abort2:
        mdb_txn_abort(txn);
        return rc;
    }
}

/* --------------------------------------------------------------- verify */

enum { CHUNK_GOOD, CHUNK_DAMAGED, CHUNK_ORPHAN };

/* Classifies a chunk record, its payload's CRC included. */
static int chunk_classify(struct talas_storage *st, MDB_txn *txn, const MDB_val *key, const MDB_val *val,
                          int *rc_r)
{
    struct talas_cache_source src;
    struct talas_record_reader rd;
    struct entry_rec r;
    size_t eklen;
    uint32_t index;
    int rc;

    *rc_r = 0;
    if (chunk_key_parse(key, &eklen, &index) == -1 || chunk_check(val, index, NULL, 1, NULL) != 0)
        return CHUNK_DAMAGED;
    rc = entry_read(st, txn, key->mv_data, eklen, &r);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1) {
        *rc_r = rc;
        return CHUNK_GOOD;
    }
    /* the source identity of the record (chunk_check read it whole) */
    talas_record_reader_init(&rd, val->mv_data, val->mv_size);
    talas_record_get_bytes(&rd, 8);
    src.size = talas_record_get_u64(&rd);
    src.mtime_ns = talas_record_get_i64(&rd);
    if (rc != 0 || r.e.source.size != src.size || r.e.source.mtime_ns != src.mtime_ns || index >= r.e.chunks)
        return CHUNK_ORPHAN;
    return CHUNK_GOOD;
}

/* Keys to come back to, each stored as a u16 length and its bytes. */
static void keys_add(struct talas_buf *b, const MDB_val *key)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, b);
    talas_record_put_u16(&w, (uint16_t)key->mv_size);
    talas_record_put_bytes(&w, key->mv_data, key->mv_size);
}

static int keys_next(const struct talas_buf *b, size_t *off, MDB_val *key)
{
    struct talas_record_reader r;
    uint16_t len;

    if (*off >= b->len)
        return 0;
    talas_record_reader_init(&r, b->data + *off, b->len - *off);
    len = talas_record_get_u16(&r);
    key->mv_data = (void *)talas_record_get_bytes(&r, len);
    key->mv_size = len;
    *off += 2 + (size_t)len;
    return talas_record_reader_ok(&r) == 0;
}

/* Counts the chunk records under EKEY: number and bytes. */
static int count_chunks(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                        uint64_t *n_r, uint64_t *bytes_r)
{
    unsigned char prefix[ENTRY_KEY_MAX + 1];
    MDB_cursor *cur;
    MDB_val key, val;
    int rc;

    *n_r = *bytes_r = 0;
    memcpy(prefix, ekey, eklen);
    prefix[eklen] = '\0';
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
        return rc;
    key.mv_data = prefix;
    key.mv_size = eklen + 1;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0 && has_prefix(&key, prefix, eklen + 1);
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        (*n_r)++;
        *bytes_r += val.mv_size;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* The index key of a valid entry must be there, and be its only one. */
static int lru_key_ok(struct talas_storage *st, MDB_txn *txn, const MDB_val *lkey, int *ok_r)
{
    struct entry_rec r;
    int rc;

    *ok_r = 0;
    if (lkey->mv_size < 8 + TALAS_TRACK_ID_LEN + 1 || lkey->mv_size > LRU_KEY_MAX ||
        !entry_key_valid((unsigned char *)lkey->mv_data + 8, lkey->mv_size - 8))
        return 0;
    rc = entry_read(st, txn, (unsigned char *)lkey->mv_data + 8, lkey->mv_size - 8, &r);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1)
        return rc;
    *ok_r = rc == 0 && r.seq == lru_key_seq(lkey->mv_data, lkey->mv_size);
    return 0;
}

struct verify_lists {
    struct talas_buf entries, chunks, lru, claims;
};

static int verify_walk(struct talas_storage *st, MDB_txn *txn, struct talas_cache_verify_report *r,
                       struct verify_lists *l)
{
    struct totals t, found = {{0}};
    MDB_cursor *cur;
    MDB_val key, val;
    int rc, trc;

    /* entries: record, counters against the chunk records, index key */
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct entry_rec e;
        unsigned char lk[LRU_KEY_MAX];
        MDB_val lkey, lval;
        uint64_t n, bytes;
        int grc;

        r->entries++;
        found.v[T_ENTRIES]++;
        if (!entry_key_valid(key.mv_data, key.mv_size) || entry_decode(val.mv_data, val.mv_size, &e) == -1) {
            r->damaged_entries++;
            keys_add(&l->entries, &key);
            continue;
        }
        if ((grc = count_chunks(st, txn, key.mv_data, key.mv_size, &n, &bytes)) != 0) {
            rc = grc;
            break;
        }
        if (n != e.e.present || bytes != e.e.bytes)
            r->inconsistent_entries++;
        lkey.mv_data = lk;
        lkey.mv_size = lru_key(e.seq, key.mv_data, key.mv_size, lk);
        grc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &lkey, &lval);
        if (grc == MDB_NOTFOUND)
            r->lru_errors++;
        else if (grc != 0) {
            rc = grc;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;

    /* chunks: every byte, CRC included */
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        int crc, state;

        r->chunks++;
        r->bytes += val.mv_size;
        found.v[T_CHUNKS]++;
        found.v[T_BYTES] += val.mv_size;
        state = chunk_classify(st, txn, &key, &val, &crc);
        if (crc != 0) {
            rc = crc;
            break;
        }
        if (state == CHUNK_DAMAGED)
            r->damaged_chunks++;
        else if (state == CHUNK_ORPHAN)
            r->orphan_chunks++;
        if (state != CHUNK_GOOD)
            keys_add(&l->chunks, &key);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;

    /* the LRU index: each key names an entry that names it back */
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        int ok, grc;
        if ((grc = lru_key_ok(st, txn, &key, &ok)) != 0) {
            rc = grc;
            break;
        }
        if (!ok || val.mv_size != 0) {
            r->lru_errors++;
            keys_add(&l->lru, &key);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;

    /* claims: well formed (stale ones are claims_reap's business) */
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct claim c;
        size_t eklen;
        uint32_t index;
        if (chunk_key_parse(&key, &eklen, &index) == -1 || claim_decode(&val, &c) == -1) {
            r->bad_claims++;
            keys_add(&l->claims, &key);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;

    trc = totals_load(st, txn, &t);
    if (trc != 0 && trc != MDB_NOTFOUND && trc != -1)
        return trc;
    if (trc == -1 || t.v[T_ENTRIES] != found.v[T_ENTRIES] || t.v[T_CHUNKS] != found.v[T_CHUNKS] ||
        t.v[T_BYTES] != found.v[T_BYTES])
        r->totals_mismatch = 1;
    return 0;
}

/* Repairs what verify_walk listed, re-checking each record first. */
static int verify_fix(struct talas_storage *st, MDB_txn *txn, struct talas_cache_verify_report *r,
                      const struct verify_lists *l)
{
    MDB_dbi entries = talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES);
    MDB_dbi chunks = talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS);
    MDB_dbi lru = talas_storage_dbi(st, TALAS_DBI_CACHE_LRU);
    struct talas_buf rewrite = {0};
    struct totals t, before;
    MDB_cursor *cur;
    MDB_val key, val;
    size_t off;
    int rc, trc;

    /* T is scratch here: the totals are recounted at the end */
    trc = totals_load(st, txn, &t);
    if (trc != 0 && trc != MDB_NOTFOUND && trc != -1)
        return trc;

    for (off = 0; keys_next(&l->entries, &off, &key);) {
        struct entry_rec e;
        if ((rc = mdb_get(txn, entries, &key, &val)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (entry_key_valid(key.mv_data, key.mv_size) && entry_decode(val.mv_data, val.mv_size, &e) == 0)
            continue;
        if (entry_key_valid(key.mv_data, key.mv_size))
            rc = entry_drop(st, txn, key.mv_data, key.mv_size, NULL, &t, NULL, NULL);
        else
            rc = mdb_del(txn, entries, &key, NULL);
        if (rc != 0)
            return rc;
        r->fixed++;
    }
    for (off = 0; keys_next(&l->chunks, &off, &key);) {
        int crc;
        if ((rc = mdb_get(txn, chunks, &key, &val)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (chunk_classify(st, txn, &key, &val, &crc) == CHUNK_GOOD) {
            if (crc != 0)
                return crc;
            continue;
        }
        if ((rc = mdb_del(txn, chunks, &key, NULL)) != 0)
            return rc;
        r->fixed++;
    }
    for (off = 0; keys_next(&l->lru, &off, &key);) {
        int ok;
        if ((rc = mdb_get(txn, lru, &key, &val)) == MDB_NOTFOUND)
            continue;
        if (rc != 0 || (rc = lru_key_ok(st, txn, &key, &ok)) != 0)
            return rc;
        if (ok && val.mv_size == 0)
            continue;
        if ((rc = mdb_del(txn, lru, &key, NULL)) != 0)
            return rc;
        r->fixed++;
    }
    for (off = 0; keys_next(&l->claims, &off, &key);) {
        if ((rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CLAIMS), &key, NULL)) != 0 &&
            rc != MDB_NOTFOUND)
            return rc;
        r->fixed += rc == 0;
    }

    /* every entry's counters and index key, from the records left */
    if ((rc = mdb_cursor_open(txn, entries, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct entry_rec e;
        unsigned char lk[LRU_KEY_MAX];
        MDB_val lkey, lval;
        uint64_t n, bytes;
        int grc, bad = 0;

        if (!entry_key_valid(key.mv_data, key.mv_size) || entry_decode(val.mv_data, val.mv_size, &e) == -1)
            continue; /* damaged since the walk: the next verify sees it */
        if ((grc = count_chunks(st, txn, key.mv_data, key.mv_size, &n, &bytes)) != 0) {
            rc = grc;
            break;
        }
        lkey.mv_data = lk;
        lkey.mv_size = lru_key(e.seq, key.mv_data, key.mv_size, lk);
        grc = mdb_get(txn, lru, &lkey, &lval);
        if (grc != 0 && grc != MDB_NOTFOUND) {
            rc = grc;
            break;
        }
        bad = n != e.e.present || bytes != e.e.bytes || grc == MDB_NOTFOUND || n > e.e.chunks;
        if (bad)
            keys_add(&rewrite, &key);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        goto out;
    for (off = 0; keys_next(&rewrite, &off, &key);) {
        unsigned char ekey[ENTRY_KEY_MAX];
        size_t eklen = key.mv_size;
        struct entry_rec e;
        uint64_t n, bytes;

        memcpy(ekey, key.mv_data, eklen);
        if ((rc = entry_read(st, txn, ekey, eklen, &e)) != 0 ||
            (rc = count_chunks(st, txn, ekey, eklen, &n, &bytes)) != 0)
            goto out;
        e.e.present = (uint32_t)(n < e.e.chunks ? n : e.e.chunks);
        e.e.bytes = bytes;
        /* a fresh index key; entry_bump drops the old one */
        if ((rc = totals_load_w(st, txn, &t)) != 0 ||
            (rc = entry_bump(st, txn, ekey, eklen, &e, 1, &t)) != 0 || (rc = totals_store(st, txn, &t)) != 0)
            goto out;
        r->fixed++;
    }

    /* the totals, recounted; counters of activity are kept (zero when the
     * record was unreadable) */
    if ((trc = totals_load(st, txn, &t)) == -1)
        memset(&t, 0, sizeof(t));
    else if (trc != 0 && trc != MDB_NOTFOUND) {
        rc = trc;
        goto out;
    }
    before = t;
    if ((rc = totals_recount(st, txn, &t)) != 0)
        goto out;
    if (trc != 0 || memcmp(&before, &t, sizeof(t)) != 0) {
        if ((rc = totals_store(st, txn, &t)) != 0)
            goto out;
        r->fixed++;
    }
    rc = 0;
out:
    talas_buf_free(&rewrite);
    return rc;
}

int talas_cache_verify(struct talas_storage *st, int fix, struct talas_cache_verify_report *r)
{
    struct verify_lists l = {{0}, {0}, {0}, {0}};
    MDB_txn *txn;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        return rc;
    rc = verify_walk(st, txn, r, &l);
    mdb_txn_abort(txn);
    if (rc == 0 && fix && !talas_cache_verify_clean(r)) {
        if ((rc = talas_storage_write_begin(st, &txn)) == 0) {
            if ((rc = verify_fix(st, txn, r, &l)) == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
    }
    talas_buf_free(&l.entries);
    talas_buf_free(&l.chunks);
    talas_buf_free(&l.lru);
    talas_buf_free(&l.claims);
    return rc;
}

int talas_cache_verify_clean(const struct talas_cache_verify_report *r)
{
    return r->damaged_entries == 0 && r->damaged_chunks == 0 && r->orphan_chunks == 0 &&
           r->inconsistent_entries == 0 && r->lru_errors == 0 && r->bad_claims == 0 &&
           r->totals_mismatch == 0;
}

/* ---------------------------------------------------------------- stats */

int talas_cache_stats_get(struct talas_storage *st, MDB_txn *txn, struct talas_cache_stats *s)
{
    struct totals t;
    int rc = totals_load(st, txn, &t);

    memset(s, 0, sizeof(*s));
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->entries = t.v[T_ENTRIES];
    s->chunks = t.v[T_CHUNKS];
    s->bytes = t.v[T_BYTES];
    s->max_size = t.v[T_MAX_SIZE];
    s->transcodes_started = t.v[T_STARTED];
    s->transcodes_completed = t.v[T_COMPLETED];
    s->transcodes_cancelled = t.v[T_CANCELLED];
    s->transcodes_failed = t.v[T_FAILED];
    s->hits = t.v[T_HITS];
    s->misses = t.v[T_MISSES];
    s->bytes_encoded = t.v[T_BYTES_ENCODED];
    s->encode_ms = t.v[T_ENCODE_MS];
    s->evictions = t.v[T_EVICTIONS];
    s->map_full_retries = t.v[T_MAP_FULL];
    return 0;
}

int talas_cache_stats_add(struct talas_storage *st, const struct talas_cache_stats *d)
{
    struct totals t;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = totals_load_w(st, txn, &t)) != 0)
        goto fail;
    t.v[T_STARTED] += d->transcodes_started;
    t.v[T_COMPLETED] += d->transcodes_completed;
    t.v[T_CANCELLED] += d->transcodes_cancelled;
    t.v[T_FAILED] += d->transcodes_failed;
    t.v[T_HITS] += d->hits;
    t.v[T_MISSES] += d->misses;
    t.v[T_BYTES_ENCODED] += d->bytes_encoded;
    t.v[T_ENCODE_MS] += d->encode_ms;
    if ((rc = totals_store(st, txn, &t)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}
