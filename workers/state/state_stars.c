/*
 * state_stars.c - stars and ratings behind one interface (state_stars.h):
 * the dispatch to the worker's backend, and the local one.
 *
 * Entry points: talas_state_stars_set, _rate, _list, _cancel.
 *
 * The local backend calls store/stars.c in one short LMDB transaction and
 * completes synchronously (the callback runs before the call returns,
 * which returns NULL). The cluster backend is state_stars_pg.c, chosen
 * when the worker has a record store (ctx->records, cluster.postgres).
 *
 * Logs: storage failures of the local store (a full map once a minute,
 * talas_storage_log_write_error, through state.c's talas_state_local_outcome).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "state/state_stars.h"

static const char bad_id[] = "an id must be 1 to 128 bytes, and a rating 0 to 5";

/* Completes a local call of outcome RC (and, for a list, its marks). */
static struct talas_state_stars_op *local_done(int rc, const struct talas_quota_refusal *refusal,
                                               const struct talas_star *stars, size_t count, const char *what,
                                               talas_state_stars_fn *cb, void *data)
{
    struct talas_state_stars_result r;

    memset(&r, 0, sizeof(r));
    if (rc == 0) {
        r.outcome = TALAS_STATE_OK;
        r.stars = stars;
        r.count = count;
    } else if ((r.outcome = talas_state_local_outcome(rc, what, bad_id, &r.reason)) == TALAS_STATE_QUOTA) {
        r.refusal = *refusal;
    }
    cb(data, &r);
    return NULL;
}

struct talas_state_stars_op *talas_state_stars_set(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *const *items, size_t n, int star,
                                                   talas_state_stars_fn *cb, void *data)
{
    struct talas_quota_refusal refusal = {NULL, 0};
    int rc;

    if (ctx->records != NULL)
        return talas__state_stars_pg_set(ctx, user, items, n, star, talas_wall_ms(), cb, data);
    rc = talas_stars_set(ctx->storage, user, items, n, star, talas_wall_ms(), ctx->conf->storage_user_data_max,
                         &refusal);
    return local_done(rc, &refusal, NULL, 0, "stars: a star", cb, data);
}

struct talas_state_stars_op *talas_state_stars_rate(const struct talas_worker_ctx *ctx, const char *user,
                                                    const char *item, unsigned rating, talas_state_stars_fn *cb,
                                                    void *data)
{
    struct talas_quota_refusal refusal = {NULL, 0};
    int rc;

    if (ctx->records != NULL)
        return talas__state_stars_pg_rate(ctx, user, item, rating, cb, data);
    rc = talas_stars_rate(ctx->storage, user, item, rating, ctx->conf->storage_user_data_max, &refusal);
    return local_done(rc, &refusal, NULL, 0, "stars: a rating", cb, data);
}

struct collect {
    struct talas_star *v;
    size_t n;
};

static int collect_one(const struct talas_star *s, void *arg)
{
    struct collect *c = arg;

    c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
    c->v[c->n] = *s;
    /* the item is the store's buffer for this call only */
    c->v[c->n++].item = xstrdup(s->item);
    return 0;
}

struct talas_state_stars_op *talas_state_stars_list(const struct talas_worker_ctx *ctx, const char *user,
                                                    talas_state_stars_fn *cb, void *data)
{
    struct collect c = {NULL, 0};
    MDB_txn *txn;
    int rc;

    if (ctx->records != NULL)
        return talas__state_stars_pg_list(ctx, user, cb, data);
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0)
        return local_done(rc, NULL, NULL, 0, "stars: reading", cb, data);
    rc = talas_stars_list(ctx->storage, txn, user, collect_one, &c);
    mdb_txn_abort(txn);
    local_done(rc, NULL, c.v, c.n, "stars: reading", cb, data);
    for (size_t i = 0; i < c.n; i++)
        free((char *)c.v[i].item);
    free(c.v);
    return NULL;
}

void talas_state_stars_cancel(struct talas_state_stars_op *op)
{
    /* the local backend never leaves an operation pending */
    if (op != NULL)
        talas__state_stars_pg_cancel(op);
}
