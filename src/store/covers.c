/*
 * covers.c - the resized cover art records (see covers.h).
 *
 * Entry points: talas_covers_get, talas_covers_put.
 *
 * Why an LMDB database and not the transcode cache: a resized cover is one
 * small value read whole, with no chunks, claims or streaming; one record
 * per key is all it needs, and every worker sees it. Why bounded by count
 * and not by LRU: covers are a few KiB each, so TALAS_COVERS_MAX of them
 * stay far below the map; a full database drops the first records in key
 * order (pseudo-random: keys begin with a track id hash), which costs a
 * resize later, never a failure.
 *
 * Key: the cover id, a NUL, the size (big-endian u32). Record: version
 * (u8), 3 reserved bytes, source size (u64), source mtime (i64), the JPEG
 * (blob).
 *
 * Logs nothing: errors go back to the caller.
 */
#include <string.h>

#include "core/record.h"
#include "store/covers.h"

#define RECORD_VERSION 1
/* Records dropped at once when the database is full. */
#define EVICT_BATCH 64

static size_t make_key(const char *id, uint32_t size, unsigned char key[64])
{
    size_t n = strnlen(id, 32);
    struct talas_record_writer w;

    memcpy(key, id, n);
    key[n] = '\0';
    talas_record_writer_mem(&w, key + n + 1, 4);
    talas_record_put_u32be(&w, size);
    return n + 5;
}

int talas_covers_get(struct talas_storage *st, MDB_txn *txn, const char *id, uint32_t size,
                     const struct talas_cache_source *identity, const void **data_r, size_t *len_r)
{
    unsigned char kb[64];
    MDB_val key = {make_key(id, size, kb), kb}, val;
    struct talas_record_reader r;
    struct talas_cache_source src;
    const void *data;
    size_t len;
    int rc;

    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_COVERS), &key, &val)) != 0)
        return rc;
    talas_record_reader_init(&r, val.mv_data, val.mv_size);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    talas_record_get_bytes(&r, 3);
    src.size = talas_record_get_u64(&r);
    src.mtime_ns = talas_record_get_i64(&r);
    data = talas_record_get_blob(&r, &len);
    if (talas_record_reader_end(&r) != 0 || len == 0)
        return -1;
    if (src.size != identity->size || src.mtime_ns != identity->mtime_ns)
        return MDB_NOTFOUND;
    *data_r = data;
    *len_r = len;
    return 0;
}

/* Makes room in TXN when the database holds TALAS_COVERS_MAX records. */
static int evict(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_stat stat;
    MDB_val key, val;
    int rc;

    if ((rc = mdb_stat(txn, dbi, &stat)) != 0 || stat.ms_entries < TALAS_COVERS_MAX)
        return rc;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    for (int i = 0;
         i < EVICT_BATCH && (rc = mdb_cursor_get(cur, &key, &val, i == 0 ? MDB_FIRST : MDB_NEXT)) == 0; i++)
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_covers_put(struct talas_storage *st, const char *id, uint32_t size,
                     const struct talas_cache_source *identity, const void *data, size_t len)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_COVERS);
    unsigned char kb[64];
    MDB_val key = {make_key(id, size, kb), kb}, val;
    struct talas_buf rec = {0};
    struct talas_record_writer w;
    MDB_txn *txn;
    int rc;

    talas_record_writer_buf(&w, &rec);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_zero(&w, 3);
    talas_record_put_u64(&w, identity->size);
    talas_record_put_i64(&w, identity->mtime_ns);
    talas_record_put_blob(&w, data, len);
    val.mv_size = rec.len;
    val.mv_data = rec.data;
    if ((rc = talas_storage_write_begin(st, &txn)) == 0) {
        if ((rc = evict(txn, dbi)) == 0 && (rc = mdb_put(txn, dbi, &key, &val, 0)) == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    talas_buf_free(&rec);
    return rc;
}
