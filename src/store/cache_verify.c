/*
 * cache_verify.c - talasctl cache verify [--fix]: every record of the
 * transcode cache read and checked (chunk CRCs included), every counter
 * recomputed, and with fix, what is wrong deleted or rewritten.
 *
 * Entry points: talas_cache_verify(), talas_cache_verify_clean().
 *
 * Logs nothing: the report goes back to the caller. The walk runs in a
 * read transaction; the repairs, in one write transaction, re-check each
 * record first (a worker may have rewritten it meanwhile).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <string.h>

#include "core/record.h"
#include "core/util.h"
#include "store/cache_internal.h"

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
    if (talas__cache_chunk_key_parse(key, &eklen, &index) == -1 ||
        talas__cache_chunk_check(val, index, NULL, 1, NULL) != 0)
        return CHUNK_DAMAGED;
    rc = talas__cache_entry_read(st, txn, key->mv_data, eklen, &r);
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
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0 && talas__cache_has_prefix(&key, prefix, eklen + 1);
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
        !talas__cache_entry_key_valid((unsigned char *)lkey->mv_data + 8, lkey->mv_size - 8))
        return 0;
    rc = talas__cache_entry_read(st, txn, (unsigned char *)lkey->mv_data + 8, lkey->mv_size - 8, &r);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != -1)
        return rc;
    *ok_r = rc == 0 && r.seq == talas__cache_lru_key_seq(lkey->mv_data, lkey->mv_size);
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
        if (!talas__cache_entry_key_valid(key.mv_data, key.mv_size) ||
            talas__cache_entry_decode(val.mv_data, val.mv_size, &e) == -1) {
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
        lkey.mv_size = talas__cache_lru_key(e.seq, key.mv_data, key.mv_size, lk);
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
        if (talas__cache_chunk_key_parse(&key, &eklen, &index) == -1 ||
            talas__cache_claim_decode(&val, &c) == -1) {
            r->bad_claims++;
            keys_add(&l->claims, &key);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;

    trc = talas__cache_totals_load(st, txn, &t);
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
    trc = talas__cache_totals_load(st, txn, &t);
    if (trc != 0 && trc != MDB_NOTFOUND && trc != -1)
        return trc;

    for (off = 0; keys_next(&l->entries, &off, &key);) {
        struct entry_rec e;
        if ((rc = mdb_get(txn, entries, &key, &val)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        if (talas__cache_entry_key_valid(key.mv_data, key.mv_size) &&
            talas__cache_entry_decode(val.mv_data, val.mv_size, &e) == 0)
            continue;
        if (talas__cache_entry_key_valid(key.mv_data, key.mv_size))
            rc = talas__cache_entry_drop(st, txn, key.mv_data, key.mv_size, NULL, &t, NULL, NULL);
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

        if (!talas__cache_entry_key_valid(key.mv_data, key.mv_size) ||
            talas__cache_entry_decode(val.mv_data, val.mv_size, &e) == -1)
            continue; /* damaged since the walk: the next verify sees it */
        if ((grc = count_chunks(st, txn, key.mv_data, key.mv_size, &n, &bytes)) != 0) {
            rc = grc;
            break;
        }
        lkey.mv_data = lk;
        lkey.mv_size = talas__cache_lru_key(e.seq, key.mv_data, key.mv_size, lk);
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
        if ((rc = talas__cache_entry_read(st, txn, ekey, eklen, &e)) != 0 ||
            (rc = count_chunks(st, txn, ekey, eklen, &n, &bytes)) != 0)
            goto out;
        e.e.present = (uint32_t)(n < e.e.chunks ? n : e.e.chunks);
        e.e.bytes = bytes;
        /* a fresh index key; entry_bump drops the old one */
        if ((rc = talas__cache_totals_load_w(st, txn, &t)) != 0 ||
            (rc = talas__cache_entry_bump(st, txn, ekey, eklen, &e, 1, &t)) != 0 ||
            (rc = talas__cache_totals_store(st, txn, &t)) != 0)
            goto out;
        r->fixed++;
    }

    /* the totals, recounted; counters of activity are kept (zero when the
     * record was unreadable) */
    if ((trc = talas__cache_totals_load(st, txn, &t)) == -1)
        memset(&t, 0, sizeof(t));
    else if (trc != 0 && trc != MDB_NOTFOUND) {
        rc = trc;
        goto out;
    }
    before = t;
    if ((rc = talas__cache_totals_recount(st, txn, &t)) != 0)
        goto out;
    if (trc != 0 || memcmp(&before, &t, sizeof(t)) != 0) {
        if ((rc = talas__cache_totals_store(st, txn, &t)) != 0)
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
