/*
 * state_sessions.c - streaming sessions behind one interface
 * (state_sessions.h): the dispatch to the worker's backend, and the local
 * one.
 *
 * Entry points: talas_state_session_create/get/update/end/stats,
 * talas_state_session_tick.
 *
 * The local backend is store/sessions.c, each call one short LMDB
 * transaction (as the handlers held before), completing synchronously:
 * the callback runs before the call returns, which returns NULL. The
 * cluster backend is state_sessions_redis.c, chosen when the worker is in
 * cluster mode (ctx->cluster, cluster.redis).
 *
 * Logs: storage errors of the local store, and what the sweep deleted
 * (debug).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "state/state_sessions.h"

/* Sessions deleted per sweep: one short write transaction. */
#define SWEEP_BATCH 256

static void failed(const char *what, int rc, int wrote, talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_result r;

    log_error("streaming session: %s failed: %s", what, mdb_strerror(rc));
    memset(&r, 0, sizeof(r));
    r.outcome = TALAS_STATE_SESSION_FAILED;
    r.wrote = wrote;
    cb(data, &r);
}

static void done(enum talas_state_session_outcome outcome, const struct talas_session *s,
                 talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_result r;

    memset(&r, 0, sizeof(r));
    r.outcome = outcome;
    r.session = outcome == TALAS_STATE_SESSION_OK ? s : NULL;
    cb(data, &r);
}

struct talas_state_session_op *talas_state_session_create(const struct talas_worker_ctx *ctx,
                                                          const struct talas_session *s,
                                                          const struct talas_session_limits *lim, int backend,
                                                          talas_state_session_fn *cb, void *data)
{
    struct talas_state_session_result r;
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_redis_session_create(ctx, s, lim, backend, cb, data);
    memset(&r, 0, sizeof(r));
    rc = talas_session_create(ctx->storage, s, lim, backend, s->last_updated_ms,
                              ctx->conf->streaming_session_timeout_ms, &r.refusal);
    if (rc == TALAS_QUOTA_EXCEEDED) {
        r.outcome = TALAS_STATE_SESSION_QUOTA;
    } else if (rc == TALAS_SESSION_FULL) {
        r.outcome = TALAS_STATE_SESSION_FULL;
    } else if (rc != 0) {
        failed("storing a session (write)", rc, 1, cb, data);
        return NULL;
    } else {
        r.session = s;
    }
    cb(data, &r);
    return NULL;
}

struct talas_state_session_op *talas_state_session_get(const struct talas_worker_ctx *ctx, const char *id,
                                                       talas_state_session_fn *cb, void *data)
{
    struct talas_session s;
    MDB_txn *txn;
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_redis_session_get(ctx, id, cb, data);
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        failed("reading a session", rc, 0, cb, data);
        return NULL;
    }
    rc = talas_session_get(ctx->storage, txn, id, &s);
    mdb_txn_abort(txn);
    /* an expired session is gone already; the sweep deletes and counts it */
    if (rc == MDB_NOTFOUND ||
        (rc == 0 && talas_session_expired(&s, talas_wall_ms(), ctx->conf->streaming_session_timeout_ms)))
        done(TALAS_STATE_SESSION_NOT_FOUND, NULL, cb, data);
    else if (rc != 0)
        failed("reading a session", rc, 0, cb, data);
    else
        done(TALAS_STATE_SESSION_OK, &s, cb, data);
    return NULL;
}

struct talas_state_session_op *talas_state_session_update(const struct talas_worker_ctx *ctx, const char *id,
                                                          talas_session_update_fn *apply, void *arg,
                                                          talas_state_session_fn *cb, void *data)
{
    struct talas_session s;
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_redis_session_update(ctx, id, apply, arg, cb, data);
    rc = talas_session_update(ctx->storage, id, talas_wall_ms(), ctx->conf->streaming_session_timeout_ms,
                              apply, arg, &s);
    if (rc == MDB_NOTFOUND)
        done(TALAS_STATE_SESSION_NOT_FOUND, NULL, cb, data);
    else if (rc != 0)
        failed("changing a session (write)", rc, 1, cb, data);
    else
        done(TALAS_STATE_SESSION_OK, &s, cb, data);
    return NULL;
}

struct talas_state_session_op *talas_state_session_end(const struct talas_worker_ctx *ctx, const char *id,
                                                       talas_state_session_fn *cb, void *data)
{
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_redis_session_end(ctx, id, cb, data);
    rc = talas_session_end(ctx->storage, id, talas_wall_ms(), ctx->conf->streaming_session_timeout_ms);
    if (rc == MDB_NOTFOUND)
        done(TALAS_STATE_SESSION_NOT_FOUND, NULL, cb, data);
    else if (rc != 0)
        failed("ending a session (write)", rc, 1, cb, data);
    else
        done(TALAS_STATE_SESSION_OK, NULL, cb, data);
    return NULL;
}

struct live {
    uint64_t now_ms, timeout_ms;
    struct talas_session *v;
    size_t n, cap;
};

static int collect_live(const struct talas_session *s, void *arg)
{
    struct live *l = arg;

    if (talas_session_expired(s, l->now_ms, l->timeout_ms))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap != 0 ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *s;
    return 0;
}

struct talas_state_session_op *talas_state_session_stats(const struct talas_worker_ctx *ctx,
                                                         talas_state_session_fn *cb, void *data)
{
    struct live l = {talas_wall_ms(), ctx->conf->streaming_session_timeout_ms, NULL, 0, 0};
    struct talas_state_session_result r;
    struct talas_session_counters c;
    MDB_txn *txn;
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_redis_session_stats(ctx, cb, data);
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        failed("reading the sessions", rc, 0, cb, data);
        return NULL;
    }
    rc = talas_session_counters_get(ctx->storage, txn, &c);
    if (rc == 0)
        rc = talas_session_foreach(ctx->storage, txn, collect_live, &l);
    mdb_txn_abort(txn);
    if (rc != 0) {
        failed("reading the sessions", rc, 0, cb, data);
    } else {
        memset(&r, 0, sizeof(r));
        r.totals = &c;
        r.sessions = l.v;
        r.count = l.n;
        cb(data, &r);
    }
    free(l.v);
    return NULL;
}

void talas_state_session_tick(const struct talas_worker_ctx *ctx)
{
    static uint64_t next_ms;
    const struct talas_config *conf = ctx->conf;
    uint64_t now = talas_now_ms(), interval = conf->streaming_session_timeout_ms / 2;
    size_t expired;
    int rc;

    /* Redis expires the cluster's sessions itself */
    if (ctx->cluster != NULL || now < next_ms)
        return;
    /* often enough that the expired count is current within half a
     * timeout, seldom enough to cost nothing (a read-only scan) */
    if (interval < 1000)
        interval = 1000;
    if (interval > 30000)
        interval = 30000;
    next_ms = now + interval;
    rc = talas_session_sweep(ctx->storage, talas_wall_ms(), conf->streaming_session_timeout_ms, SWEEP_BATCH,
                             &expired);
    if (rc != 0)
        log_error("streaming sessions: the sweep failed: %s", mdb_strerror(rc));
    else if (expired > 0)
        log_debug("streaming sessions: %zu expired", expired);
}
