/*
 * state_play_queue.c - saved play queues behind one interface
 * (state_play_queue.h): the dispatch to the worker's backend, and the
 * local one.
 *
 * Entry points: talas_state_play_queue_save, _get, _cancel.
 *
 * The local backend calls store/play_queue.c in one short LMDB transaction
 * and completes synchronously (the callback runs before the call returns,
 * which returns NULL). The cluster backend is state_play_queue_pg.c,
 * chosen when the worker has a record store (ctx->records,
 * cluster.postgres).
 *
 * Logs: storage failures of the local store (a full map once a minute,
 * talas_storage_log_write_error, through state.c's talas_state_local_outcome).
 */
#include <string.h>

#include "core/util.h"
#include "state/state_play_queue.h"

static const char too_big[] = "a play queue holds at most 1000 songs, ids of 1 to 128 bytes, and a client "
                              "name of at most 256 bytes";

static struct talas_state_play_queue_op *local_done(int rc, const struct talas_quota_refusal *refusal,
                                                    const struct talas_play_queue *q, const char *what,
                                                    talas_state_play_queue_fn *cb, void *data)
{
    struct talas_state_play_queue_result r;

    memset(&r, 0, sizeof(r));
    if (rc == 0 || rc == MDB_NOTFOUND) {
        r.outcome = TALAS_STATE_OK;
        r.queue = rc == 0 ? q : NULL;
    } else if ((r.outcome = talas_state_local_outcome(rc, what, too_big, &r.reason)) == TALAS_STATE_QUOTA) {
        r.refusal = *refusal;
    }
    cb(data, &r);
    return NULL;
}

struct talas_state_play_queue_op *talas_state_play_queue_save(const struct talas_worker_ctx *ctx,
                                                              const char *user,
                                                              const struct talas_play_queue *q,
                                                              talas_state_play_queue_fn *cb, void *data)
{
    struct talas_quota_refusal refusal = {NULL, 0};
    struct talas_play_queue now = *q;
    int rc;

    now.changed_ms = talas_wall_ms();
    if (ctx->records != NULL)
        return talas__state_play_queue_pg_save(ctx, user, &now, cb, data);
    rc = talas_play_queue_save(ctx->storage, user, &now, ctx->conf->storage_user_data_max, &refusal);
    return local_done(rc, &refusal, NULL, "play queue: a save", cb, data);
}

struct talas_state_play_queue_op *talas_state_play_queue_get(const struct talas_worker_ctx *ctx,
                                                             const char *user, talas_state_play_queue_fn *cb,
                                                             void *data)
{
    struct talas_play_queue q;
    MDB_txn *txn;
    int rc;

    if (ctx->records != NULL)
        return talas__state_play_queue_pg_get(ctx, user, cb, data);
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0)
        return local_done(rc, NULL, NULL, "play queue: reading", cb, data);
    rc = talas_play_queue_get(ctx->storage, txn, user, &q);
    local_done(rc, NULL, &q, "play queue: reading", cb, data);
    talas_play_queue_release(&q);
    mdb_txn_abort(txn);
    return NULL;
}

void talas_state_play_queue_cancel(struct talas_state_play_queue_op *op)
{
    /* the local backend never leaves an operation pending */
    if (op != NULL)
        talas__state_play_queue_pg_cancel(op);
}
