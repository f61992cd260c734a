/*
 * state_comments.c - timed comments behind one interface
 * (state_comments.h): the dispatch to the worker's backend, and the local
 * one (store/comments.c, one short LMDB transaction a change).
 *
 * Entry points: talas_state_comment_add/change/list/cancel.
 *
 * Logs: storage failures of the local store (a full map once a minute,
 * talas_storage_log_write_error).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "state/state_comments.h"

static void local_done(int rc, const struct talas_comment *c, const char *what, talas_state_comment_fn *cb,
                       void *data)
{
    struct talas_state_comment_result r;

    memset(&r, 0, sizeof(r));
    switch (rc) {
    case 0:
        r.outcome = TALAS_STATE_OK;
        r.comment = c;
        break;
    case TALAS_COMMENT_NO_PARENT:
        r.outcome = TALAS_STATE_REFUSED;
        r.reason = talas_comment_no_parent;
        break;
    case TALAS_COMMENT_PARENT_ELSEWHERE:
        r.outcome = TALAS_STATE_REFUSED;
        r.reason = talas_comment_parent_elsewhere;
        break;
    case TALAS_COMMENT_TRACK_FULL:
        r.outcome = TALAS_STATE_QUOTA;
        break;
    case TALAS_COMMENT_FORBIDDEN:
        r.outcome = TALAS_STATE_FORBIDDEN;
        r.reason = talas_comment_forbidden;
        break;
    case MDB_NOTFOUND:
        r.outcome = TALAS_STATE_NOT_FOUND;
        r.reason = talas_comment_no_such;
        break;
    default:
        if (rc == TALAS_COMMENT_DAMAGED)
            log_error("comments: %s: the stored record is damaged", what);
        else
            talas_storage_log_write_error(what, rc);
        r.outcome = rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
        break;
    }
    cb(data, &r);
}

struct talas_state_comment_op *talas_state_comment_add(const struct talas_worker_ctx *ctx,
                                                       const struct talas_comment *c,
                                                       talas_state_comment_fn *cb, void *data)
{
    char parent[TALAS_COMMENT_ID_LEN + 1];
    struct talas_comment stored;
    int rc;

    if (ctx->records != NULL)
        return talas__state_comment_pg_add(ctx, c, cb, data);
    stored = *c;
    rc = talas_comment_add(ctx->storage, c, (size_t)ctx->conf->comments_max_per_track, parent,
                           &stored.created_ms);
    stored.parent = parent;
    local_done(rc, &stored, "comments: adding", cb, data);
    return NULL;
}

struct talas_state_comment_op *talas_state_comment_change(const struct talas_worker_ctx *ctx, const char *id,
                                                          const char *user, const char *body,
                                                          size_t body_len, talas_state_comment_fn *cb,
                                                          void *data)
{
    struct talas_comment out;
    void *mem = NULL;
    uint64_t now = talas_wall_ms();
    int rc;

    if (ctx->records != NULL)
        return talas__state_comment_pg_change(ctx, id, user, body, body_len, now, cb, data);
    if (body != NULL)
        rc = talas_comment_edit(ctx->storage, id, user, body, body_len, now, &out, &mem);
    else
        rc = talas_comment_delete(ctx->storage, id, user, &out, &mem);
    local_done(rc, &out, body != NULL ? "comments: editing" : "comments: deleting", cb, data);
    free(mem);
    return NULL;
}

struct listing {
    struct talas_comment *c;
    size_t n;
};

static void on_comment(const struct talas_comment *c, void *arg)
{
    struct listing *l = arg;

    l->c = xrealloc(l->c, (l->n + 1) * sizeof(*l->c));
    l->c[l->n++] = *c;
}

struct talas_state_comment_op *talas_state_comment_list(const struct talas_worker_ctx *ctx,
                                                        const char *const *tracks, size_t n,
                                                        talas_state_comment_fn *cb, void *data)
{
    struct talas_state_comment_result r;
    struct listing l = {NULL, 0};
    MDB_txn *txn;
    int rc;

    if (ctx->records != NULL)
        return talas__state_comment_pg_list(ctx, tracks, n, cb, data);
    memset(&r, 0, sizeof(r));
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        log_error("comments: mdb_txn_begin() failed: %s", mdb_strerror(rc));
        r.outcome = TALAS_STATE_FAILED;
        cb(data, &r);
        return NULL;
    }
    /* the strings point into the map: the callback runs inside the
     * transaction */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = talas_comment_list(ctx->storage, txn, tracks[i], TALAS_COMMENT_LIST_MAX, on_comment, &l);
    if (rc != 0) {
        log_error("comments: listing failed: %s", mdb_strerror(rc));
        r.outcome = TALAS_STATE_FAILED;
    } else {
        r.comments = l.c;
        r.count = l.n;
    }
    cb(data, &r);
    mdb_txn_abort(txn);
    free(l.c);
    return NULL;
}

void talas_state_comment_cancel(struct talas_state_comment_op *op)
{
    if (op != NULL)
        talas__state_comment_pg_cancel(op);
}
