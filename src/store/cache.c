/*
 * cache.c - the transcode cache in LMDB: the record formats, keys, entry
 * and chunk records, look-ups and puts. The rest of the cache is in files
 * named by their job, sharing cache_internal.h: cache_claims.c (single
 * flight across processes), cache_evict.c (LRU order under
 * cache.max_size, touch, purge), cache_verify.c (talasctl cache verify)
 * and cache_stats.c (the totals record and statistics).
 *
 * Entry points: talas_cache_chunk_get() / _entry_get() / _chunk_put(),
 * talas_cache_variant_valid(), talas_cache_max_size_default(),
 * talas_cache_limits_check(); for the other cache files, the talas__cache_
 * helpers of cache_internal.h (keys, entry records, chunk_check).
 *
 * Logs: damaged records met by a look-up or a put (warn), a full file
 * system met by a put (warn).
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

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "core/log.h"
#include "core/record.h"
#include "core/util.h"
#include "store/cache_internal.h"

static const unsigned char chunk_magic[4] = {'T', 'C', 'k', '1'};

/* Rounds of evict-and-retry a put makes when LMDB reports MDB_MAP_FULL. */
#define MAP_FULL_ROUNDS 16

/* --------------------------------------------------------------- CRC */

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

/* -------------------------------------------------------------- keys */

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
size_t talas__cache_entry_key(const char *track, const char *variant, unsigned char *buf)
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
int talas__cache_entry_key_valid(const unsigned char *k, size_t len)
{
    return len > TALAS_TRACK_ID_LEN && len <= ENTRY_KEY_MAX &&
           talas_track_id_valid((const char *)k, TALAS_TRACK_ID_LEN) &&
           talas_cache_variant_valid((const char *)k + TALAS_TRACK_ID_LEN, len - TALAS_TRACK_ID_LEN);
}

size_t talas__cache_chunk_key(const unsigned char *ekey, size_t eklen, uint32_t index, unsigned char *buf)
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
int talas__cache_chunk_key_parse(const MDB_val *key, size_t *eklen_r, uint32_t *index_r)
{
    const unsigned char *k = key->mv_data;
    struct talas_record_reader r;
    size_t eklen;

    if (key->mv_size < TALAS_TRACK_ID_LEN + 6 || key->mv_size > CHUNK_KEY_MAX)
        return -1;
    eklen = key->mv_size - 5;
    if (k[eklen] != '\0' || !talas__cache_entry_key_valid(k, eklen))
        return -1;
    talas_record_reader_init(&r, k + eklen + 1, 4);
    *eklen_r = eklen;
    *index_r = talas_record_get_u32be(&r);
    return 0;
}

size_t talas__cache_lru_key(uint64_t seq, const unsigned char *ekey, size_t eklen, unsigned char *buf)
{
    struct talas_record_writer w;

    talas_record_writer_mem(&w, buf, LRU_KEY_MAX);
    talas_record_put_u64be(&w, seq);
    talas_record_put_bytes(&w, ekey, eklen);
    return w.len;
}

/* The LRU sequence an index key starts with (0 for a key too short). */
uint64_t talas__cache_lru_key_seq(const void *key, size_t len)
{
    struct talas_record_reader r;

    talas_record_reader_init(&r, key, len);
    return talas_record_get_u64be(&r);
}

int talas__cache_has_prefix(const MDB_val *key, const unsigned char *prefix, size_t len)
{
    return key->mv_size >= len && memcmp(key->mv_data, prefix, len) == 0;
}

/* ----------------------------------------------------------- entries */

/* Decodes an entry record; E.header points into DATA. -1 when malformed. */
int talas__cache_entry_decode(const void *data, size_t len, struct entry_rec *r)
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
int talas__cache_entry_bump(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            struct entry_rec *r, int had_seq, struct totals *t)
{
    MDB_dbi lru = talas_storage_dbi(st, TALAS_DBI_CACHE_LRU);
    unsigned char lk[LRU_KEY_MAX];
    MDB_val key, val = {0, (void *)""};
    int rc;

    if (had_seq) {
        key.mv_data = lk;
        key.mv_size = talas__cache_lru_key(r->seq, ekey, eklen, lk);
        if ((rc = mdb_del(txn, lru, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    r->seq = t->v[T_SEQ]++;
    r->access_ms = talas_wall_ms();
    key.mv_data = lk;
    key.mv_size = talas__cache_lru_key(r->seq, ekey, eklen, lk);
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
        if (!talas__cache_has_prefix(&key, prefix, eklen + 1)) {
            rc = MDB_NOTFOUND;
            break;
        }
        t->v[T_CHUNKS] = talas__cache_sub_sat(t->v[T_CHUNKS], 1);
        t->v[T_BYTES] = talas__cache_sub_sat(t->v[T_BYTES], val.mv_size);
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
int talas__cache_entry_drop(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            const struct entry_rec *r, struct totals *t, uint64_t *chunks_r,
                            uint64_t *bytes_r)
{
    MDB_val key = {eklen, (void *)ekey};
    unsigned char lk[LRU_KEY_MAX];
    int rc;

    if ((rc = chunks_drop(st, txn, ekey, eklen, t, chunks_r, bytes_r)) != 0)
        return rc;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, NULL);
    if (rc == 0)
        t->v[T_ENTRIES] = talas__cache_sub_sat(t->v[T_ENTRIES], 1);
    else if (rc != MDB_NOTFOUND)
        return rc;
    if (r == NULL)
        return lru_purge_key(st, txn, ekey, eklen);
    key.mv_data = lk;
    key.mv_size = talas__cache_lru_key(r->seq, ekey, eklen, lk);
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_LRU), &key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Reads the entry EKEY: 0 with R filled (header copied), MDB_NOTFOUND, -1
 * damaged, or an LMDB error. */
int talas__cache_entry_read(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            struct entry_rec *r)
{
    MDB_val key = {eklen, (void *)ekey}, val;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, &val)) != 0)
        return rc;
    if (talas__cache_entry_decode(val.mv_data, val.mv_size, r) == -1)
        return -1;
    entry_own(r);
    return 0;
}

/* ------------------------------------------------------------ chunks */

/* Checks a chunk record against its key and source: 0 good, -1 damaged,
 * MDB_NOTFOUND made from another source. With C (the view to fill) or
 * CRC, the frame table too; with CRC, the payload too. */
int talas__cache_chunk_check(const MDB_val *val, uint32_t index, const struct talas_cache_source *src,
                             int crc, struct talas_cache_chunk *c)
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
    /* the frame sizes (little-endian u32) must add up to the payload: the
     * length was checked above, so the table is read in place */
    table = talas_record_get_bytes(&r, (size_t)(4 * frames));
    for (uint64_t i = 0; (c != NULL || crc) && i < frames; i++) {
        uint32_t f;
        memcpy(&f, table + 4 * i, 4); /* one unaligned load, not four byte loads */
        sum += le32toh(f);
    }
    payload = talas_record_get_bytes(&r, (size_t)plen);
    if (talas_record_reader_end(&r) != 0 || ((c != NULL || crc) && frames > 0 && sum != plen))
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
    size_t eklen = talas__cache_entry_key(track, variant, ekey);
    MDB_val key, val;
    int rc;

    if (eklen == 0 || src == NULL)
        return MDB_NOTFOUND;
    key.mv_data = ck;
    key.mv_size = talas__cache_chunk_key(ekey, eklen, index, ck);
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &key, &val)) != 0)
        return rc;
    rc = talas__cache_chunk_check(&val, index, src, 0, c);
    if (rc == -1)
        log_warn("cache: chunk %" PRIu32 " of %s/%s is damaged: re-encoding it", index, track, variant);
    return rc;
}

int talas_cache_chunk_present(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                              uint32_t index, const struct talas_cache_source *src)
{
    /* no view to fill: the frame table is not added up */
    return talas_cache_chunk_get(st, txn, track, variant, index, src, NULL);
}

int talas_cache_entry_get(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                          const struct talas_cache_source *src, struct talas_cache_entry *e)
{
    unsigned char ekey[ENTRY_KEY_MAX];
    size_t eklen = talas__cache_entry_key(track, variant, ekey);
    struct entry_rec r;
    MDB_val key = {eklen, ekey}, val;
    int rc;

    if (eklen == 0)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_ENTRIES), &key, &val)) != 0)
        return rc;
    if (talas__cache_entry_decode(val.mv_data, val.mv_size, &r) == -1)
        return -1;
    if (src != NULL && (r.e.source.size != src->size || r.e.source.mtime_ns != src->mtime_ns))
        return MDB_NOTFOUND;
    *e = r.e;
    return 0;
}

/* --------------------------------------------------------------- put */

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
    if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0)
        goto fail;

    erc = talas__cache_entry_read(st, txn, ekey, eklen, &r);
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
            if ((rc = talas__cache_entry_drop(st, txn, ekey, eklen, erc == 0 ? &r : NULL, &t, NULL, NULL)) !=
                0)
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
    key.mv_size = talas__cache_chunk_key(ekey, eklen, p->index, ck);
    rc = mdb_get(txn, chunks, &key, &val);
    if (rc == 0) {
        r.e.present = r.e.present > 0 ? r.e.present - 1 : 0;
        r.e.bytes = talas__cache_sub_sat(r.e.bytes, val.mv_size);
        t.v[T_CHUNKS] = talas__cache_sub_sat(t.v[T_CHUNKS], 1);
        t.v[T_BYTES] = talas__cache_sub_sat(t.v[T_BYTES], val.mv_size);
    } else if (rc != MDB_NOTFOUND) {
        goto fail;
    }

    while (t.v[T_BYTES] + rec_len > max_size) {
        uint64_t freed;
        if ((rc = talas__cache_evict_one(st, txn, ekey, eklen, &t, &freed)) != 0) {
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
    if ((rc = talas__cache_entry_bump(st, txn, ekey, eklen, &r, had_seq, &t)) != 0)
        goto fail;
    if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
        goto fail;
    return mdb_txn_commit(txn);

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
    size_t eklen = talas__cache_entry_key(p->track, p->variant, ekey);
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
        if ((rc = talas__cache_evict_for_map_full(st, ekey, eklen, 2 * rec_len)) != 0) {
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
