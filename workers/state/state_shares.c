/*
 * state_shares.c - private links behind one interface (state_shares.h):
 * the local backend (store/shares.c), and the cluster mode's refusal
 * until a PostgreSQL backend is written.
 *
 * Entry points: talas_state_share_create/get/revoke/admit/count/list.
 *
 * Logs: storage failures (a full map once a minute,
 * talas_storage_log_write_error), damaged records.
 */
#include <string.h>

#include "core/log.h"
#include "state/state_shares.h"

const char talas_state_shares_no_cluster[] = "private links are not available in cluster mode yet";

static enum talas_state_outcome outcome(int rc, const char *what)
{
    switch (rc) {
    case 0:
        return TALAS_STATE_OK;
    case MDB_NOTFOUND:
        return TALAS_STATE_NOT_FOUND;
    case TALAS_SHARE_FULL:
        return TALAS_STATE_REFUSED;
    case TALAS_SHARE_DAMAGED:
        log_error("shares: %s: the stored record is damaged", what);
        return TALAS_STATE_FAILED;
    default:
        talas_storage_log_write_error(what, rc);
        return rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
    }
}

enum talas_state_outcome talas_state_share_create(const struct talas_worker_ctx *ctx,
                                                  const struct talas_share *s)
{
    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    return outcome(talas_share_put(ctx->storage, s), "shares: creating");
}

enum talas_state_outcome talas_state_share_get(const struct talas_worker_ctx *ctx, const char *id,
                                               struct talas_share *s_r)
{
    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    return outcome(talas_share_get(ctx->storage, NULL, id, s_r), "shares: reading");
}

enum talas_state_outcome talas_state_share_revoke(const struct talas_worker_ctx *ctx, const char *id,
                                                  struct talas_share *s_r)
{
    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    return outcome(talas_share_delete(ctx->storage, id, s_r), "shares: revoking");
}

enum talas_state_outcome talas_state_share_admit(const struct talas_worker_ctx *ctx, const char *id,
                                                 const char *listener)
{
    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    return outcome(talas_share_admit(ctx->storage, id, listener), "shares: admitting a listener");
}

enum talas_state_outcome talas_state_share_count(const struct talas_worker_ctx *ctx, const char *id,
                                                 uint64_t plays, uint64_t listening_ms)
{
    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    return outcome(talas_share_count(ctx->storage, id, plays, listening_ms), "shares: counting");
}

enum talas_state_outcome talas_state_share_list(const struct talas_worker_ctx *ctx, const char *owner,
                                                talas_share_fn *fn, void *arg)
{
    MDB_txn *txn;
    int rc;

    if (ctx->records != NULL)
        return TALAS_STATE_UNAVAILABLE;
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0)
        return outcome(rc, "shares: listing");
    rc = talas_share_list(ctx->storage, txn, owner, fn, arg);
    mdb_txn_abort(txn);
    return outcome(rc, "shares: listing");
}
