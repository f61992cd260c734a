/*
 * cache_internal.h - what the files of the transcode cache share (cache.c,
 * cache_claims.c, cache_evict.c, cache_verify.c, cache_stats.c): record
 * constants and sizes, the decoded forms of records, and the talas__cache_
 * helpers. Not for use outside src/store/cache*.c; the record layouts are
 * described at the top of cache.c.
 */
#ifndef TALAS_CACHE_INTERNAL_H
#define TALAS_CACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <lmdb.h>

#include "store/cache.h"
#include "store/catalog.h"
#include "store/storage.h"

#define ENTRY_VERSION 1
#define ENTRY_FIXED 72
#define CHUNK_VERSION 1
#define CHUNK_HDR 40
#define CLAIM_VERSION 1
#define CLAIM_LEN 24
#define STATS_VERSION 1
#define STATS_FIELDS 15
#define STATS_LEN (8 + 8 * STATS_FIELDS)

/* An entry key is at most 16 + 31 bytes, a chunk key 5 more, an LRU key 8 more. */
#define ENTRY_KEY_MAX (TALAS_TRACK_ID_LEN + TALAS_CACHE_VARIANT_MAX)
#define CHUNK_KEY_MAX (ENTRY_KEY_MAX + 5)
#define LRU_KEY_MAX (ENTRY_KEY_MAX + 8)

static inline uint64_t talas__cache_sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* ---------------------------------------------------------------- keys */

/* The entry key of (TRACK, VARIANT) in BUF (ENTRY_KEY_MAX bytes); its
 * length, or 0 when either is invalid. */
size_t talas__cache_entry_key(const char *track, const char *variant, unsigned char *buf);
/* 1 when the LEN bytes at K have the form of an entry key. */
int talas__cache_entry_key_valid(const unsigned char *k, size_t len);
/* The key of chunk INDEX of EKEY in BUF (CHUNK_KEY_MAX bytes); its length. */
size_t talas__cache_chunk_key(const unsigned char *ekey, size_t eklen, uint32_t index, unsigned char *buf);
/* Splits a chunk key; -1 when it is not one. */
int talas__cache_chunk_key_parse(const MDB_val *key, size_t *eklen_r, uint32_t *index_r);
/* The LRU index key of EKEY at SEQ in BUF (LRU_KEY_MAX bytes); its length. */
size_t talas__cache_lru_key(uint64_t seq, const unsigned char *ekey, size_t eklen, unsigned char *buf);
/* The sequence an LRU key starts with (0 for a key too short). */
uint64_t talas__cache_lru_key_seq(const void *key, size_t len);
int talas__cache_has_prefix(const MDB_val *key, const unsigned char *prefix, size_t len);

/* -------------------------------------------------------------- totals */

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

/* cache_stats.c. Load: 0, MDB_NOTFOUND (all zero), -1 damaged, or an
 * LMDB error; load_w (for writers) rebuilds a damaged record; recount
 * recomputes entries/chunks/bytes and the sequence from the records. */
int talas__cache_totals_load(struct talas_storage *st, MDB_txn *txn, struct totals *t);
int talas__cache_totals_load_w(struct talas_storage *st, MDB_txn *txn, struct totals *t);
int talas__cache_totals_store(struct talas_storage *st, MDB_txn *txn, const struct totals *t);
int talas__cache_totals_recount(struct talas_storage *st, MDB_txn *txn, struct totals *t);

/* ------------------------------------------------------------- entries */

struct entry_rec {
    struct talas_cache_entry e;
    uint64_t created_ms, access_ms, seq;
    unsigned char header[TALAS_CACHE_HEADER_MAX];
};

/* cache.c. Decode: -1 when malformed (E.header points into DATA). Read:
 * 0 (header copied), MDB_NOTFOUND, -1 damaged, or an LMDB error. Bump
 * moves the entry to the recent end of the index and stores it. Drop
 * deletes the whole transcode (R NULL when its record is unreadable). */
int talas__cache_entry_decode(const void *data, size_t len, struct entry_rec *r);
int talas__cache_entry_read(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            struct entry_rec *r);
int talas__cache_entry_bump(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            struct entry_rec *r, int had_seq, struct totals *t);
int talas__cache_entry_drop(struct talas_storage *st, MDB_txn *txn, const unsigned char *ekey, size_t eklen,
                            const struct entry_rec *r, struct totals *t, uint64_t *chunks_r,
                            uint64_t *bytes_r);
/* Checks a chunk record: 0 good, -1 damaged, MDB_NOTFOUND made from
 * another source; with CRC, the payload too. */
int talas__cache_chunk_check(const MDB_val *val, uint32_t index, const struct talas_cache_source *src,
                             int crc, struct talas_cache_chunk *c);

/* -------------------------------------------------------------- evict */

/* cache_evict.c: the least recently used entry other than KEEP goes (0,
 * MDB_NOTFOUND when none is left, or an LMDB error); after MDB_MAP_FULL,
 * enough of them go in their own commits to let a put retry. */
int talas__cache_evict_one(struct talas_storage *st, MDB_txn *txn, const unsigned char *keep, size_t keep_len,
                           struct totals *t, uint64_t *freed_r);
int talas__cache_evict_for_map_full(struct talas_storage *st, const unsigned char *keep, size_t keep_len,
                                    uint64_t want);

/* -------------------------------------------------------------- claims */

struct claim {
    pid_t pid;
    uint64_t token, time_ms;
};

/* cache_claims.c: -1 when VAL is not a claim record. */
int talas__cache_claim_decode(const MDB_val *val, struct claim *c);

#endif
