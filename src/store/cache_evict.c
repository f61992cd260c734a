/*
 * cache_evict.c - the LRU order of the transcode cache and what removes
 * entries: eviction under cache.max_size and after MDB_MAP_FULL, the
 * throttled touch that moves an entry to the recent end, evict_to and
 * purge (talasctl cache).
 *
 * Entry points: talas_cache_touch(), talas_cache_evict_to(),
 * talas_cache_purge(); talas__cache_evict_one() and
 * talas__cache_evict_for_map_full() for puts and claims.
 *
 * Logs: evictions forced by MDB_MAP_FULL (warn), evictions (debug),
 * touches that fail (debug).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/cache_internal.h"

/* Entries a purge or evict_to removes per write transaction. */
#define BATCH 32

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

/* ------------------------------------------------------------- evict */

/*
 * Evicts the least recently used entry other than KEEP (may be NULL).
 * Index keys that no longer match their entry are dropped on the way.
 * Returns 0 with the bytes freed in *freed_r, MDB_NOTFOUND when there is
 * nothing left to evict, or an LMDB error.
 */
int talas__cache_evict_one(struct talas_storage *st, MDB_txn *txn, const unsigned char *keep, size_t keep_len,
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
            !talas__cache_entry_key_valid((unsigned char *)key.mv_data + 8, key.mv_size - 8)) {
            rc = mdb_cursor_del(cur, 0);
            mdb_cursor_close(cur);
            if (rc != 0)
                return rc;
            continue;
        }
        memcpy(lk, key.mv_data, key.mv_size);
        eklen = key.mv_size - 8;
        memcpy(ekey, lk + 8, eklen);
        seq = talas__cache_lru_key_seq(lk, eklen + 8);
        mdb_cursor_close(cur);

        erc = talas__cache_entry_read(st, txn, ekey, eklen, &r);
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
        if ((rc = talas__cache_entry_drop(st, txn, ekey, eklen, erc == 0 ? &r : NULL, t, NULL, &bytes)) != 0)
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

/*
 * After MDB_MAP_FULL: evicts least recently used entries (never KEEP) until
 * a good share of the map is free, in its own transaction, then commits a
 * second one. LMDB reuses the pages a transaction frees only once a later
 * transaction has committed (the previous snapshot must survive a crash),
 * so without the second commit the retry would meet a full map again.
 * Returns 0, MDB_NOTFOUND when nothing could be evicted, or an LMDB error.
 */
int talas__cache_evict_for_map_full(struct talas_storage *st, const unsigned char *keep, size_t keep_len,
                                    uint64_t want)
{
    uint64_t freed = 0, evicted = 0;
    struct totals t;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0)
        goto fail;
    /* an eighth of what is cached at least: each round costs two commits */
    if (want < t.v[T_BYTES] / 8)
        want = t.v[T_BYTES] / 8;
    while (freed < want) {
        uint64_t f = 0;
        if ((rc = talas__cache_evict_one(st, txn, keep, keep_len, &t, &f)) != 0)
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
    if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
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
    if (talas__cache_totals_load_w(st, txn, &t) != 0 ||
        (t.v[T_MAP_FULL]++, talas__cache_totals_store(st, txn, &t)) != 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    mdb_txn_commit(txn);
    return 0;

fail:
    mdb_txn_abort(txn);
    return rc;
}

/* ------------------------------------------------------------- touch */

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
    size_t eklen = talas__cache_entry_key(track, variant, ekey);
    struct entry_rec r;
    struct totals t;
    MDB_txn *txn;
    int rc;

    if (eklen == 0 || !touch_due(ekey, eklen))
        return;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        goto fail_nt;
    if ((rc = talas__cache_entry_read(st, txn, ekey, eklen, &r)) != 0 ||
        (rc = talas__cache_totals_load_w(st, txn, &t)) != 0 ||
        (rc = talas__cache_entry_bump(st, txn, ekey, eklen, &r, 1, &t)) != 0 ||
        (rc = talas__cache_totals_store(st, txn, &t)) != 0) {
        mdb_txn_abort(txn);
        goto fail_nt;
    }
    if ((rc = mdb_txn_commit(txn)) == 0)
        return;
fail_nt:
    if (rc != MDB_NOTFOUND)
        log_debug("%s: %s/%s: %s", __func__, track, variant, rc == -1 ? "damaged record" : mdb_strerror(rc));
}

/* ----------------------------------------------------- evict / purge */

int talas_cache_evict_to(struct talas_storage *st, uint64_t target_bytes, uint64_t *evicted_r)
{
    uint64_t evicted = 0;
    int rc = 0, more = 1;

    while (more) {
        struct totals t;
        MDB_txn *txn;

        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            break;
        if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0) {
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
            if ((rc = talas__cache_evict_one(st, txn, NULL, 0, &t, &freed)) != 0)
                break;
            evicted++;
        }
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc != 0 || (rc = talas__cache_totals_store(st, txn, &t)) != 0) {
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
        if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0)
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
            if (rc == 0 && plen > 0 && !talas__cache_has_prefix(&key, (const void *)track, plen))
                rc = MDB_NOTFOUND;
            if (rc == 0 && key.mv_size > ENTRY_KEY_MAX) {
                /* not an entry key: no chunk can be under it */
                rc = mdb_cursor_del(cur, 0);
                mdb_cursor_close(cur);
                if (rc != 0)
                    goto abort;
                t.v[T_ENTRIES] = talas__cache_sub_sat(t.v[T_ENTRIES], 1);
                continue;
            }
            if (rc != 0) {
                mdb_cursor_close(cur);
                break;
            }
            memcpy(done[n].key, key.mv_data, key.mv_size);
            done[n].len = key.mv_size;
            erc = talas__cache_entry_decode(val.mv_data, val.mv_size, &r);
            mdb_cursor_close(cur);
            done[n].chunks = done[n].bytes = 0;
            if ((rc = talas__cache_entry_drop(st, txn, done[n].key, done[n].len, erc == 0 ? &r : NULL, &t,
                                              &done[n].chunks, &done[n].bytes)) != 0)
                goto abort;
            n++;
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto abort;
        more = n == BATCH;
        if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
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
        if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0)
            goto abort2;
        if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_CACHE_CHUNKS), &cur)) != 0)
            goto abort2;
        key.mv_data = (void *)track;
        key.mv_size = plen;
        rc = plen > 0 ? mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE)
                      : mdb_cursor_get(cur, &key, &val, MDB_FIRST);
        while (rc == 0 && (plen == 0 || talas__cache_has_prefix(&key, (const void *)track, plen))) {
            struct entry_rec e;
            size_t eklen;
            uint32_t index;
            int erc = MDB_NOTFOUND;

            /* a put may have made a new entry since the batches above */
            if (talas__cache_chunk_key_parse(&key, &eklen, &index) == 0)
                erc = talas__cache_entry_read(st, txn, key.mv_data, eklen, &e);
            if (erc != 0 && erc != MDB_NOTFOUND && erc != -1) {
                rc = erc;
                break;
            }
            if (erc != 0) {
                res->chunks++;
                res->bytes += val.mv_size;
                t.v[T_CHUNKS] = talas__cache_sub_sat(t.v[T_CHUNKS], 1);
                t.v[T_BYTES] = talas__cache_sub_sat(t.v[T_BYTES], val.mv_size);
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
        if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
            goto abort2;
        return mdb_txn_commit(txn);
    abort2:
        mdb_txn_abort(txn);
        return rc;
    }
}
