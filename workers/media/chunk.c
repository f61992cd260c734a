/*
 * chunk.c - transcode chunks as refcounted views (see chunk.h).
 *
 * Entry points: talas_chunk_init, talas_chunk_lookup, talas_chunk_cached,
 * talas_chunk_scan, talas_chunk_touch, talas_chunk_ref / _release /
 * _frame_size, and talas__chunk_encoded for the encoder threads.
 *
 * Every read of the transcode cache a worker makes goes through here. A
 * chunk found in the cache keeps the read transaction it was found in:
 * LMDB keeps the pages of the map it sees unchanged until that
 * transaction ends, so the bytes go to the socket without a copy, and the
 * last release ends it. The environment is opened with MDB_NOTLS, so any
 * number of chunks (one per response in flight) may hold one each.
 *
 * Logs: read transactions that cannot begin (error). Damaged records are
 * logged by cache.c.
 */
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "core/log.h"
#include "core/util.h"
#include "media/chunk.h"

static struct talas_storage *chunk_st;

void talas_chunk_init(struct talas_storage *st)
{
    chunk_st = st;
}

uint32_t talas_chunk_frame_size(const struct talas_chunk *c, size_t i)
{
    const unsigned char *p;

    if (c->frame_sizes != NULL)
        return c->frame_sizes[i];
    /* an LMDB value has no alignment guarantee: read it byte by byte */
    p = c->frame_table + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct talas_chunk *talas_chunk_ref(struct talas_chunk *c)
{
    c->refs++;
    return c;
}

void talas_chunk_release(struct talas_chunk *c)
{
    if (c == NULL || --c->refs > 0)
        return;
    if (c->txn != NULL)
        mdb_txn_abort(c->txn);
    free(c->owned);
    free(c->frame_sizes);
    free(c);
}

struct talas_chunk *talas__chunk_encoded(char *data, size_t len, uint32_t *frame_sizes, size_t frame_count)
{
    struct talas_chunk *c = xcalloc(1, sizeof(*c));

    c->refs = 1;
    c->owned = data;
    c->data = data;
    c->len = len;
    c->frame_sizes = frame_sizes;
    c->frame_count = frame_sizes != NULL ? frame_count : 0;
    return c;
}

static int read_begin(MDB_txn **txn_r)
{
    int rc;

    if ((rc = talas_storage_read_begin(chunk_st, txn_r)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        *txn_r = NULL;
    }
    return rc;
}

/* Fills the public fields of VIEW from the cache's record. */
static void view_of(struct talas_chunk *view, const struct talas_cache_chunk *rec)
{
    view->data = rec->payload;
    view->len = rec->len;
    view->frame_table = rec->frame_table;
    view->frame_count = rec->frame_count;
}

/* A chunk with one reference, viewing REC in TXN, which it now holds. */
static struct talas_chunk *held_view(MDB_txn *txn, const struct talas_cache_chunk *rec)
{
    struct talas_chunk *c = xcalloc(1, sizeof(*c));

    c->refs = 1;
    c->txn = txn; /* the view stays valid until the last release */
    view_of(c, rec);
    return c;
}

int talas_chunk_lookup(const struct talas_chunk_key *key, uint32_t index, struct talas_chunk **chunk_r)
{
    struct talas_cache_chunk rec;
    MDB_txn *txn;
    int rc;

    if ((rc = read_begin(&txn)) != 0)
        return rc;
    rc = talas_cache_chunk_get(chunk_st, txn, key->track, key->variant, index, &key->identity, &rec);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    *chunk_r = held_view(txn, &rec);
    return 0;
}

int talas_chunk_cached(const struct talas_chunk_key *key, uint32_t first, uint32_t last,
                       struct talas_chunk **first_r)
{
    struct talas_cache_chunk rec = {0}; /* chunk FIRST's, when FIRST_R wants it */
    MDB_txn *txn;
    int all = 1;

    if (first_r != NULL)
        *first_r = NULL;
    if (read_begin(&txn) != 0)
        return 0;
    for (uint32_t i = first; i <= last && all; i++) {
        int rc = i == first && first_r != NULL
                     ? talas_cache_chunk_get(chunk_st, txn, key->track, key->variant, i, &key->identity, &rec)
                     : talas_cache_chunk_present(chunk_st, txn, key->track, key->variant, i, &key->identity);
        all = rc == 0;
    }
    if (!all || first_r == NULL || first > last) {
        mdb_txn_abort(txn);
        return all;
    }
    *first_r = held_view(txn, &rec);
    return 1;
}

int64_t talas_chunk_scan(const struct talas_chunk_key *key, uint32_t max, talas_chunk_scan_fn fn, void *arg)
{
    struct talas_cache_entry entry;
    struct talas_cache_chunk rec;
    struct talas_chunk view;
    MDB_txn *txn;
    int64_t count = -1;

    if (read_begin(&txn) != 0)
        return -1;
    if (talas_cache_entry_get(chunk_st, txn, key->track, key->variant, &key->identity, &entry) != 0 ||
        entry.chunks == 0 || entry.present != entry.chunks || entry.chunks > max)
        goto done;
    for (uint32_t c = 0; c < entry.chunks; c++) {
        if (talas_cache_chunk_get(chunk_st, txn, key->track, key->variant, c, &key->identity, &rec) != 0)
            goto done;
        memset(&view, 0, sizeof(view));
        view_of(&view, &rec);
        fn(arg, c, entry.chunks, &view);
    }
    count = entry.chunks;
done:
    mdb_txn_abort(txn);
    return count;
}

void talas_chunk_touch(const struct talas_chunk_key *key)
{
    talas_cache_touch(chunk_st, key->track, key->variant);
}
