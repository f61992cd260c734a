/*
 * state_analytics.c - listening sessions and track totals behind one
 * interface (state_analytics.h): the dispatch, and the local backend's
 * reads (store/playback.c, one LMDB read transaction each).
 *
 * Entry points: talas_state_analytics_track, talas_state_analytics_sessions,
 * talas_state_analytics_cancel. The cluster backend is
 * state_analytics_pg.c, chosen when the worker has a record store
 * (ctx->records, cluster.postgres). Logs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "state/state_analytics.h"

struct talas_state_analytics_op *talas_state_analytics_track(const struct talas_worker_ctx *ctx,
                                                             const char *track, talas_state_analytics_fn *cb,
                                                             void *data)
{
    struct talas_state_analytics_result r;
    MDB_txn *txn;

    if (ctx->records != NULL)
        return talas__state_analytics_pg_track(ctx, track, cb, data);
    memset(&r, 0, sizeof(r));
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        r.outcome = TALAS_STATE_FAILED;
    } else {
        if (talas_playback_track_plays(ctx->storage, txn, track, &r.plays) != 0)
            r.outcome = TALAS_STATE_FAILED;
        mdb_txn_abort(txn);
    }
    cb(data, &r);
    return NULL;
}

struct collected {
    struct talas_listen_session *s;
    size_t n;
};

static void collect(const struct talas_listen_session *s, void *arg)
{
    struct collected *c = arg;

    c->s = xrealloc(c->s, (c->n + 1) * sizeof(*c->s));
    c->s[c->n++] = *s;
}

struct talas_state_analytics_op *talas_state_analytics_sessions(const struct talas_worker_ctx *ctx,
                                                                const char *user, size_t limit,
                                                                talas_state_analytics_fn *cb, void *data)
{
    struct talas_state_analytics_result r;
    struct collected c = {NULL, 0};
    MDB_txn *txn;

    if (ctx->records != NULL)
        return talas__state_analytics_pg_sessions(ctx, user, limit, cb, data);
    memset(&r, 0, sizeof(r));
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        r.outcome = TALAS_STATE_FAILED;
    } else {
        if (talas_playback_user_sessions(ctx->storage, txn, user, limit, collect, &c, &r.total) != 0)
            r.outcome = TALAS_STATE_FAILED;
        mdb_txn_abort(txn);
    }
    r.sessions = c.s;
    r.count = c.n;
    cb(data, &r);
    free(c.s);
    return NULL;
}

void talas_state_analytics_cancel(struct talas_state_analytics_op *op)
{
    if (op != NULL)
        talas__state_analytics_pg_cancel(op);
}
