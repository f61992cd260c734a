/*
 * play_queue.c - each user's saved play queue in LMDB (play_queue.h).
 *
 * Entry points: talas_play_queue_save, talas_play_queue_get,
 * talas_play_queue_encode / _decode / _release / _check, and for talasctl
 * users talas_play_queue_usage / _purge / _foreach_user. Logs nothing:
 * errors go back to the caller.
 *
 * Key (TALAS_DBI_PLAY_QUEUES): the user id. Record, through the record
 * codec (core/record.h), little-endian:
 *   u8 version (1), u8 reserved (0), u16 reserved (0), u32 count,
 *   u64 position_ms, u64 changed_ms, str current, str changed_by,
 *   COUNT x str track id
 * A queue of no entries is never stored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "core/util.h"
#include "store/play_queue.h"

#define RECORD_VERSION 1

static int id_ok(const char *id)
{
    size_t len = strlen(id);

    return len > 0 && len <= TALAS_PLAY_QUEUE_ID_MAX;
}

int talas_play_queue_check(const char *user, const struct talas_play_queue *q)
{
    if (!id_ok(user) || q->count > TALAS_PLAY_QUEUE_MAX)
        return EINVAL;
    if (q->changed_by != NULL && strlen(q->changed_by) > TALAS_PLAY_QUEUE_CLIENT_MAX)
        return EINVAL;
    if (q->current != NULL && q->current[0] != '\0' && !id_ok(q->current))
        return EINVAL;
    for (size_t i = 0; i < q->count; i++)
        if (!id_ok(q->tracks[i]))
            return EINVAL;
    return 0;
}

void talas_play_queue_encode(const struct talas_play_queue *q, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_zero(&w, 3);
    talas_record_put_u32(&w, (uint32_t)q->count);
    talas_record_put_u64(&w, q->position_ms);
    talas_record_put_u64(&w, q->changed_ms);
    talas_record_put_str(&w, q->current);
    talas_record_put_str(&w, q->changed_by);
    for (size_t i = 0; i < q->count; i++)
        talas_record_put_str(&w, q->tracks[i]);
}

int talas_play_queue_decode(const void *data, size_t len, struct talas_play_queue *q)
{
    struct talas_record_reader r;
    uint32_t count;

    memset(q, 0, sizeof(*q));
    talas_record_reader_init(&r, data, len);
    if (talas_record_get_u8(&r) != RECORD_VERSION)
        return -1;
    talas_record_get_zero(&r, 3);
    count = talas_record_get_u32(&r);
    q->position_ms = talas_record_get_u64(&r);
    q->changed_ms = talas_record_get_u64(&r);
    q->current = talas_record_get_str(&r, NULL);
    q->changed_by = talas_record_get_str(&r, NULL);
    /* each entry takes 5 bytes at least: a count beyond what is left lies */
    if (talas_record_reader_ok(&r) != 0 || count == 0 || count > TALAS_PLAY_QUEUE_MAX || count > r.left / 5)
        goto fail;
    q->tracks = xcalloc(count, sizeof(*q->tracks));
    for (q->count = 0; q->count < count; q->count++)
        if ((q->tracks[q->count] = talas_record_get_str(&r, NULL)) == NULL || !id_ok(q->tracks[q->count]))
            goto fail;
    if (talas_record_reader_end(&r) != 0 || strlen(q->current) > TALAS_PLAY_QUEUE_ID_MAX ||
        strlen(q->changed_by) > TALAS_PLAY_QUEUE_CLIENT_MAX)
        goto fail;
    return 0;
fail:
    talas_play_queue_release(q);
    return -1;
}

void talas_play_queue_release(struct talas_play_queue *q)
{
    free(q->tracks);
    memset(q, 0, sizeof(*q));
}

static int commit_or_abort(MDB_txn *txn, int rc)
{
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int talas_play_queue_save(struct talas_storage *st, const char *user, const struct talas_play_queue *q,
                          uint64_t budget, struct talas_quota_refusal *r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_PLAY_QUEUES);
    MDB_val k = {strlen(user), (void *)user}, v;
    struct talas_buf rec = {0};
    MDB_txn *txn;
    int rc;

    if (talas_play_queue_check(user, q) != 0)
        return EINVAL;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return commit_or_abort(txn, rc);
    if (q->count == 0)
        return commit_or_abort(txn, rc == 0 ? mdb_del(txn, dbi, &k, NULL) : 0);
    if (rc == MDB_NOTFOUND && (rc = talas_quota_user_data_check(st, txn, budget, r)) != 0)
        return commit_or_abort(txn, rc);
    talas_play_queue_encode(q, &rec);
    v.mv_size = rec.len;
    v.mv_data = rec.data;
    rc = mdb_put(txn, dbi, &k, &v, 0);
    talas_buf_free(&rec);
    return commit_or_abort(txn, rc);
}

int talas_play_queue_get(struct talas_storage *st, MDB_txn *txn, const char *user, struct talas_play_queue *q)
{
    MDB_val k = {strlen(user), (void *)user}, v;
    int rc;

    memset(q, 0, sizeof(*q));
    if (!id_ok(user))
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAY_QUEUES), &k, &v)) != 0)
        return rc;
    return talas_play_queue_decode(v.mv_data, v.mv_size, q) == 0 ? 0 : MDB_NOTFOUND;
}

int talas_play_queue_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                           uint64_t *bytes_r)
{
    MDB_val k = {strlen(user), (void *)user}, v;
    int rc;

    *count_r = *bytes_r = 0;
    if (!id_ok(user))
        return 0;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAY_QUEUES), &k, &v);
    if (rc == 0) {
        *count_r = 1;
        *bytes_r = k.mv_size + v.mv_size;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_play_queue_purge(struct talas_storage *st, const char *user, uint64_t *removed_r)
{
    MDB_val k = {strlen(user), (void *)user};
    MDB_txn *txn;
    int rc;

    *removed_r = 0;
    if (!id_ok(user))
        return 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_PLAY_QUEUES), &k, NULL);
    if (rc == 0)
        *removed_r = 1;
    return commit_or_abort(txn, rc == MDB_NOTFOUND ? 0 : rc);
}

int talas_play_queue_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_play_queue_user_fn *fn,
                                  void *arg)
{
    char user[TALAS_PLAY_QUEUE_ID_MAX + 1];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_PLAY_QUEUES), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size == 0 || k.mv_size > TALAS_PLAY_QUEUE_ID_MAX ||
            memchr(k.mv_data, '\0', k.mv_size) != NULL)
            continue;
        memcpy(user, k.mv_data, k.mv_size);
        user[k.mv_size] = '\0';
        if ((rc = fn(user, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
