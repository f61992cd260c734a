/*
 * cache.h - the transcode cache: encoded chunks kept in LMDB, shared by all
 * processes and served straight from the memory map.
 *
 * A transcode of (track, variant) is a sequence of CHUNKS chunks, each
 * encoded independently and deterministically. Chunks are stored as they are
 * produced (talas_cache_chunk_put, from an encoder thread) and read with
 * talas_cache_chunk_get, which hands back pointers into the map: zero copy,
 * valid until the caller's read transaction ends. A record that fails its
 * checks is never returned: get reports it as damaged (-1) and the caller
 * re-encodes; the put that follows replaces it.
 *
 * Identity. Every chunk and entry records the size and mtime of the source
 * file it was made from (struct talas_cache_source). A look-up with another
 * source finds nothing; a put with another source first deletes the old
 * transcode of (track, variant).
 *
 * Size. The chunk records of all entries together stay within
 * limits->max_size: a put that would exceed it evicts the least recently
 * used entries (never the one it writes to), whole. MDB_MAP_FULL is never
 * returned to a caller: a put that meets it evicts and retries, and fails
 * only when the chunk cannot be stored even with every other entry gone.
 * LMDB needs free pages beyond the data for copy-on-write, and pages freed
 * by an eviction stay unusable while a reader (a response being served)
 * still sees them: max_size must stay well below storage.map_size, see
 * talas_cache_limits_check().
 *
 * Single flight. talas_cache_claim() gives one process at a time the right
 * to encode a chunk; the others poll with talas_cache_chunk_get (about every
 * 10 ms) until it appears. A claim names its process by pid and by a random
 * token drawn once per process (a pid can be reused), and is taken over when
 * that process is gone or when the claim is older than the claim timeout.
 *
 * Threads: every function may be called from any thread of the process that
 * opened ST. Functions that write begin their own short write transaction,
 * which waits while another process writes: talas_cache_claim,
 * talas_cache_release and talas_cache_touch are tiny and meant for event
 * loops; talas_cache_chunk_put copies the chunk and may evict, so it belongs
 * on an encoder thread; purge, verify and evict_to are for talasctl and
 * the master.
 *
 * Return values follow catalog.h: 0 on success, MDB_NOTFOUND when the thing
 * is absent, -1 when a stored record is damaged, or another LMDB error code.
 */
#ifndef TALAS_CACHE_H
#define TALAS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <lmdb.h>

#include "store/storage.h"

#define TALAS_CACHE_VARIANT_MAX 31                 /* bytes of a variant name, [a-z0-9._-] */
#define TALAS_CACHE_HEADER_MAX 256                 /* bytes of the opaque per-entry header */
#define TALAS_CACHE_CHUNK_MAX (256u * 1024 * 1024) /* bytes of one chunk record */
#define TALAS_CACHE_MAX_SIZE_DEFAULT (1024ull * 1024 * 1024)
#define TALAS_CACHE_CLAIM_TIMEOUT_MS 60000
#define TALAS_CACHE_TOUCH_INTERVAL_MS 60000

/* Identity of the source a transcode was made from (the catalog's size and
 * mtime_ns of the file): a changed file invalidates its transcodes. */
struct talas_cache_source {
    uint64_t size;
    int64_t mtime_ns;
};

struct talas_cache_limits {
    uint64_t max_size;         /* cache.max_size; 0: talas_cache_max_size_default(map size) */
    uint64_t claim_timeout_ms; /* age at which a claim is taken over; 0: TALAS_CACHE_CLAIM_TIMEOUT_MS */
};

/* The default cache.max_size for a given storage.map_size: 1 GiB, or half
 * the map when that is smaller. */
uint64_t talas_cache_max_size_default(uint64_t map_size);
/* The relation config finalize must enforce: max_size at most 3/4 of
 * map_size (the rest is for the catalog, copy-on-write pages and pages that
 * readers still see). Returns 0, or -1 with a malloc'd message. */
int talas_cache_limits_check(uint64_t max_size, uint64_t map_size, char **error_r);

/* 1 when S (LEN bytes) is a variant name: 1..31 bytes of [a-z0-9._-]. */
int talas_cache_variant_valid(const char *s, size_t len);

/* Entry metadata of (track, variant), created by its first put. */
struct talas_cache_entry {
    struct talas_cache_source source;
    uint32_t chunks;      /* chunks in the complete transcode */
    uint32_t present;     /* chunk records stored */
    uint64_t bytes;       /* bytes of those records: payload plus 40 bytes and 4 per frame */
    uint64_t total_size;  /* exact size of the whole stream when known up front, else 0 */
    uint64_t created;     /* seconds since the epoch */
    uint64_t last_access; /* seconds since the epoch: last put or touch */
    const void *header;   /* the opaque header given at creation (e.g. the MP3 stream
                             header), into the map: valid until the txn ends */
    size_t header_len;    /* 0..TALAS_CACHE_HEADER_MAX */
};

/* One stored chunk, as talas_cache_chunk_get returns it. Pointers are into
 * the map and valid until the read transaction ends. */
struct talas_cache_chunk {
    const void *payload;
    size_t len;
    /* frame_count little-endian uint32 sizes (they add up to len), read
     * with talas_cache_frame_size(): an LMDB value has no alignment
     * guarantee, so the table is not handed out as a uint32_t array. */
    const unsigned char *frame_table;
    size_t frame_count;
};

static inline uint32_t talas_cache_frame_size(const struct talas_cache_chunk *c, size_t i)
{
    const unsigned char *p = c->frame_table + 4 * i;

    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Looks up chunk INDEX of (TRACK, VARIANT) in TXN (a read transaction of the
 * caller's). Checks everything but the payload's CRC (talas_cache_verify
 * does that): magic, version, lengths, index, source and frame table.
 * Returns 0 and fills *C, MDB_NOTFOUND when absent or made from another
 * source (treat as absent), -1 when the record is damaged (logged; the
 * caller re-encodes and its put replaces the record), or another LMDB error.
 * An invalid TRACK or VARIANT reads as MDB_NOTFOUND. C NULL: presence only,
 * without adding up the frame table (talas_cache_chunk_present).
 */
int talas_cache_chunk_get(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                          uint32_t index, const struct talas_cache_source *src, struct talas_cache_chunk *c);

/* Whether chunk INDEX of (TRACK, VARIANT) from SRC is stored, as
 * talas_cache_chunk_get would answer but for the frame table, which is
 * only added up when the chunk is read: 0, MDB_NOTFOUND, -1 (damaged) or
 * an LMDB error. For look-ups that only decide whether to encode. */
int talas_cache_chunk_present(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                              uint32_t index, const struct talas_cache_source *src);

/* Looks up the entry of (TRACK, VARIANT). SRC NULL matches any source.
 * Returns 0, MDB_NOTFOUND (absent, or another source), -1 (damaged) or an
 * LMDB error; e->header points into the map. */
int talas_cache_entry_get(struct talas_storage *st, MDB_txn *txn, const char *track, const char *variant,
                          const struct talas_cache_source *src, struct talas_cache_entry *e);

/* What talas_cache_chunk_put stores. The entry fields (chunks, total_size,
 * header) are used when the put creates the entry; a put whose entry
 * fields or source differ from the stored entry's replaces the whole
 * transcode (an encoder that changed makes the old chunks useless). */
struct talas_cache_put {
    const char *track;   /* a track id (talas_track_id_valid) */
    const char *variant; /* talas_cache_variant_valid */
    struct talas_cache_source source;
    uint32_t chunks;     /* chunks in the complete transcode, >= 1 */
    uint64_t total_size; /* exact stream size when known, else 0 */
    const void *header;  /* copied; NULL when header_len is 0 */
    size_t header_len;   /* <= TALAS_CACHE_HEADER_MAX */
    uint32_t index;      /* this chunk, < chunks */
    const void *payload; /* copied */
    size_t len;
    const uint32_t *frame_sizes; /* copied; NULL when frame_count is 0; must add up to len */
    size_t frame_count;
};

/*
 * Stores one chunk in one write transaction: replaces a record already
 * there (damaged or not), creates or updates the entry, the LRU order and
 * the totals. Evicts least recently used entries first when the total would
 * exceed the limit, or when LMDB reports MDB_MAP_FULL (then counted in
 * map_full_retries). LIMITS NULL means the defaults.
 * Returns 0, or -1 with a malloc'd message in *error_r: invalid arguments,
 * a chunk that cannot fit even with every other entry evicted, or an LMDB
 * failure. Nothing is stored on failure.
 */
int talas_cache_chunk_put(struct talas_storage *st, const struct talas_cache_limits *limits,
                          const struct talas_cache_put *p, char **error_r);

enum talas_claim {
    TALAS_CLAIM_ERROR = -1, /* invalid arguments or LMDB failure (logged): encode without caching */
    TALAS_CLAIM_OWNED = 0,  /* this process encodes the chunk: put it, then release */
    TALAS_CLAIM_BUSY,       /* a live process (possibly this one) encodes it: poll chunk_get */
    TALAS_CLAIM_DONE,       /* the chunk from SRC is stored already */
};

/* Claims the right to encode chunk INDEX of (TRACK, VARIANT) from SRC. A
 * claim held by a dead process (kill(pid, 0) fails with ESRCH, or the pid
 * is this process's but the token is not), or older than the claim timeout,
 * is taken over. Checks in a read transaction first, and writes only to
 * take the claim. LIMITS NULL means the defaults. */
enum talas_claim talas_cache_claim(struct talas_storage *st, const struct talas_cache_limits *limits,
                                   const char *track, const char *variant, uint32_t index,
                                   const struct talas_cache_source *src);
/* Releases this process's claim after the put, or on failure or cancel.
 * Returns 0, MDB_NOTFOUND when there is no claim of this process (taken
 * over, or never taken), or an LMDB error. */
int talas_cache_release(struct talas_storage *st, const char *track, const char *variant, uint32_t index);
/* Deletes every claim held by PID, whatever its token: a worker calls it
 * with getpid() when it starts and stops, and when it starts with the pid
 * of each worker that died before it (the master passes them: it never
 * writes to LMDB itself). Stores the number deleted in *count_r (may be NULL).
 * Returns 0 or an LMDB error. */
int talas_cache_release_pid(struct talas_storage *st, pid_t pid, size_t *count_r);
/* Deletes the claims of dead processes, claims older than the timeout and
 * malformed claims (a worker when it starts). Returns 0 or an LMDB
 * error. */
int talas_cache_claims_reap(struct talas_storage *st, const struct talas_cache_limits *limits,
                            size_t *count_r);

/* Marks (TRACK, VARIANT) as used now, for the LRU order. Cheap: an
 * in-process table lets through one write per entry per
 * TALAS_CACHE_TOUCH_INTERVAL_MS; that write is a tiny write transaction.
 * Failures are logged at debug level and otherwise ignored. */
void talas_cache_touch(struct talas_storage *st, const char *track, const char *variant);

/* Evicts least recently used entries until the chunk records take at most
 * TARGET_BYTES. Stores the number of entries evicted in *evicted_r (may be
 * NULL). Returns 0 or an LMDB error. */
int talas_cache_evict_to(struct talas_storage *st, uint64_t target_bytes, uint64_t *evicted_r);

/* Called by talas_cache_purge for each entry removed, after its commit.
 * BYTES and CHUNKS are what the entry's records took. */
typedef void (*talas_cache_purge_fn)(const char *track, const char *variant, uint64_t chunks, uint64_t bytes,
                                     void *arg);
struct talas_cache_purge_result {
    uint64_t entries, chunks, bytes; /* removed, orphan chunk records included */
};
/* Removes every transcode of TRACK, or of all tracks when TRACK is NULL, in
 * batches of short write transactions. FN may be NULL. Claims are left
 * alone (their encoders put again). Returns 0, EINVAL for an invalid
 * TRACK, or an LMDB error (what was removed before stays removed). */
int talas_cache_purge(struct talas_storage *st, const char *track, talas_cache_purge_fn fn, void *arg,
                      struct talas_cache_purge_result *r);

struct talas_cache_verify_report {
    uint64_t entries;              /* entry records checked */
    uint64_t chunks;               /* chunk records checked */
    uint64_t bytes;                /* bytes of chunk records read (CRC included) */
    uint64_t damaged_entries;      /* entry records (or keys) that do not decode */
    uint64_t damaged_chunks;       /* chunk records with a bad key, header, length, table or CRC */
    uint64_t orphan_chunks;        /* chunk records with no valid entry, another source, or index >= chunks */
    uint64_t inconsistent_entries; /* present/bytes disagree with the chunk records */
    uint64_t lru_errors;           /* LRU index keys without their entry, entries without their key */
    uint64_t bad_claims;           /* claim records or keys that do not decode */
    uint64_t totals_mismatch;      /* 1 when the global counters disagree with the records */
    uint64_t fixed;                /* with FIX: records deleted or rewritten */
};
/*
 * Walks every record of the cache in one read transaction: keys, headers,
 * lengths, frame tables, CRCs, entry counters, the LRU index, claims and
 * the global totals. With FIX, then deletes damaged and orphan records and
 * rewrites wrong counters in one write transaction, re-checking each record
 * first (a put may have replaced it since). Returns 0 (see
 * talas_cache_verify_clean for the verdict) or an LMDB error.
 */
int talas_cache_verify(struct talas_storage *st, int fix, struct talas_cache_verify_report *r);
/* 1 when R reports nothing wrong. */
int talas_cache_verify_clean(const struct talas_cache_verify_report *r);

struct talas_cache_stats {
    /* kept by the cache in the same transactions as the records */
    uint64_t entries, chunks, bytes;
    uint64_t max_size; /* the limit the last put enforced, 0 before any */
    /* added by workers with talas_cache_stats_add */
    uint64_t transcodes_started, transcodes_completed, transcodes_cancelled, transcodes_failed;
    uint64_t hits, misses;
    uint64_t bytes_encoded, encode_ms;
    /* counted by the cache */
    uint64_t evictions, map_full_retries;
};
/* Reads the counters (all zero for a cache never written). Returns 0, -1
 * when the record is damaged (verify --fix rebuilds it) or an LMDB error. */
int talas_cache_stats_get(struct talas_storage *st, MDB_txn *txn, struct talas_cache_stats *s);
/* Adds DELTA's worker counters (transcodes_*, hits, misses, bytes_encoded,
 * encode_ms) in one write transaction; the other fields of DELTA are
 * ignored. Workers batch their counters and flush about once a second.
 * Returns 0 or an LMDB error (the delta is then lost: they are statistics). */
int talas_cache_stats_add(struct talas_storage *st, const struct talas_cache_stats *delta);

#endif
