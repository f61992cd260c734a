/*
 * state_playback.c - playback state behind one interface
 * (state_playback.h): the dispatch to the worker's backend, and the local
 * one.
 *
 * Entry points: talas_state_playback_change, talas_state_playback_get,
 * talas_state_playback_cancel.
 *
 * The local backend is store/playback.c, one short LMDB transaction per
 * change (listening sessions and track totals included), completed before
 * the call returns. The cluster backend (state_playback_redis.c) is chosen
 * when the worker has a cluster bus (cluster.redis).
 *
 * Logs: storage failures of the local store (a full map once a minute,
 * talas_storage_log_write_error).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "state/state_playback.h"

struct talas_state_playback_op *talas_state_playback_change(const struct talas_worker_ctx *ctx,
                                                            const char *user,
                                                            const struct talas_playback_command *cmd,
                                                            talas_state_playback_fn *cb, void *data)
{
    struct talas_state_playback_result r;
    int rc;

    if (ctx->cluster != NULL)
        return talas__state_playback_redis_change(ctx, user, cmd, cb, data);
    memset(&r, 0, sizeof(r));
    switch (cmd->verb) {
    case TALAS_PLAYBACK_DO_PLAY:
        rc = talas_playback_play(ctx->storage, user, cmd->track, cmd->duration_ms, cmd->has_position,
                                 cmd->position_ms, cmd->quality, cmd->platform, cmd->now_ms, &r.change,
                                 &r.reason);
        break;
    case TALAS_PLAYBACK_DO_PAUSE:
        rc = talas_playback_pause(ctx->storage, user, cmd->track, cmd->now_ms, &r.change, &r.reason);
        break;
    case TALAS_PLAYBACK_DO_SEEK:
        rc = talas_playback_seek(ctx->storage, user, cmd->track, cmd->position_ms, cmd->now_ms, &r.change,
                                 &r.reason);
        break;
    default:
        rc = talas_playback_stop(ctx->storage, user, cmd->track, cmd->now_ms, &r.change, &r.reason);
        break;
    }
    if (rc == 1) {
        r.outcome = TALAS_STATE_REFUSED;
    } else if (rc != 0) {
        talas_storage_log_write_error("ws: a playback change", rc);
        r.outcome = rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
    }
    cb(data, &r);
    return NULL;
}

struct talas_state_playback_op *talas_state_playback_get(const struct talas_worker_ctx *ctx, const char *user,
                                                         talas_state_playback_fn *cb, void *data)
{
    struct talas_state_playback_result r;
    MDB_txn *txn;

    if (ctx->cluster != NULL)
        return talas__state_playback_redis_get(ctx, user, cb, data);
    memset(&r, 0, sizeof(r));
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        r.outcome = TALAS_STATE_FAILED;
    } else {
        if (talas_playback_get(ctx->storage, txn, user, &r.state) != 0)
            r.outcome = TALAS_STATE_FAILED;
        mdb_txn_abort(txn);
    }
    cb(data, &r);
    return NULL;
}

struct now_list {
    uint64_t now_ms;
    struct talas_state_now_playing *v;
    size_t n;
};

static int now_one(const char *user, const struct talas_playback_state *s, void *arg)
{
    struct now_list *l = arg;
    uint64_t age, window = TALAS_NOW_PLAYING_GRACE_MS;

    if (s->status != TALAS_PLAYBACK_PLAYING)
        return 0;
    age = l->now_ms > s->updated_ms ? l->now_ms - s->updated_ms : 0;
    if (s->duration_ms > s->position_ms)
        window += s->duration_ms - s->position_ms;
    if (age >= window)
        return 0;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n].user = xstrdup(user);
    l->v[l->n].changed_ms = s->updated_ms;
    l->v[l->n].state = *s;
    talas_playback_accrue(&l->v[l->n].state, l->now_ms);
    l->n++;
    return 0;
}

static int by_recent(const void *a, const void *b)
{
    const struct talas_state_now_playing *x = a, *y = b;

    if (x->changed_ms != y->changed_ms)
        return x->changed_ms < y->changed_ms ? 1 : -1;
    return strcmp(x->user, y->user);
}

struct talas_state_playback_op *talas_state_playback_now_playing(const struct talas_worker_ctx *ctx,
                                                                 uint64_t now_ms,
                                                                 talas_state_now_playing_fn *cb, void *data)
{
    struct talas_state_now_playing_result r;
    struct now_list l = {now_ms, NULL, 0};
    MDB_txn *txn;

    if (ctx->cluster != NULL)
        return talas__state_playback_redis_now_playing(ctx, now_ms, cb, data);
    memset(&r, 0, sizeof(r));
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        r.outcome = TALAS_STATE_FAILED;
    } else {
        if (talas_playback_foreach_state(ctx->storage, txn, now_one, &l) != 0)
            r.outcome = TALAS_STATE_FAILED;
        mdb_txn_abort(txn);
    }
    if (l.n > 0)
        qsort(l.v, l.n, sizeof(*l.v), by_recent);
    r.entries = l.v;
    r.count = l.n < TALAS_NOW_PLAYING_MAX ? l.n : TALAS_NOW_PLAYING_MAX;
    cb(data, &r);
    for (size_t i = 0; i < l.n; i++)
        free((char *)l.v[i].user);
    free(l.v);
    return NULL;
}

void talas_state_playback_cancel(struct talas_state_playback_op *op)
{
    /* the local backend never leaves an operation pending */
    if (op != NULL)
        talas__state_playback_redis_cancel(op);
}
