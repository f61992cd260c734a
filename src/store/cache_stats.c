/*
 * cache_stats.c - the cache's totals record in TALAS_DBI_META: the
 * entry, chunk and byte counts every writer keeps exact, the LRU sequence,
 * and the activity counters of talas_cache_stats.
 *
 * Entry points: talas_cache_stats_get() / _stats_add(); the
 * talas__cache_totals_* helpers for the other cache files.
 *
 * Logs: a damaged totals record, recounted from the records (warn).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <string.h>

#include "core/log.h"
#include "core/record.h"
#include "store/cache_internal.h"

static const char stats_key[] = "cache";

/* 0, MDB_NOTFOUND (all zero), -1 damaged, or an LMDB error. */
int talas__cache_totals_load(struct talas_storage *st, MDB_txn *txn, struct totals *t)
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

int talas__cache_totals_store(struct talas_storage *st, MDB_txn *txn, const struct totals *t)
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
int talas__cache_totals_recount(struct talas_storage *st, MDB_txn *txn, struct totals *t)
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
    if (rc == 0 && key.mv_size >= 8 && talas__cache_lru_key_seq(key.mv_data, key.mv_size) >= t->v[T_SEQ])
        t->v[T_SEQ] = talas__cache_lru_key_seq(key.mv_data, key.mv_size) + 1;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Loads the totals for a writer: a damaged record is rebuilt from the
 * records rather than trusted or fatal. */
int talas__cache_totals_load_w(struct talas_storage *st, MDB_txn *txn, struct totals *t)
{
    int rc = talas__cache_totals_load(st, txn, t);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == -1) {
        log_warn("%s: the cache totals record is damaged: recounting", __func__);
        memset(t, 0, sizeof(*t));
        return talas__cache_totals_recount(st, txn, t);
    }
    return rc;
}

/* ------------------------------------------------------------- stats */

int talas_cache_stats_get(struct talas_storage *st, MDB_txn *txn, struct talas_cache_stats *s)
{
    struct totals t;
    int rc = talas__cache_totals_load(st, txn, &t);

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
    if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0)
        goto fail;
    t.v[T_STARTED] += d->transcodes_started;
    t.v[T_COMPLETED] += d->transcodes_completed;
    t.v[T_CANCELLED] += d->transcodes_cancelled;
    t.v[T_FAILED] += d->transcodes_failed;
    t.v[T_HITS] += d->hits;
    t.v[T_MISSES] += d->misses;
    t.v[T_BYTES_ENCODED] += d->bytes_encoded;
    t.v[T_ENCODE_MS] += d->encode_ms;
    if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}
