/*
 * state_rooms.c - listening rooms behind one interface (state_rooms.h):
 * the local backend (store/rooms.c), and cluster mode's refusal until a
 * shared backend is written.
 *
 * Entry points: talas_state_rooms_limits, talas_state_room_create,
 * talas_state_room_update, talas_state_rooms_sweep.
 *
 * Logs: storage failures (a full map once a minute,
 * talas_storage_log_write_error), damaged records, rooms swept.
 */
#include <string.h>

#include "core/log.h"
#include "state/state_rooms.h"

const char talas_state_rooms_no_cluster[] = "rooms are not available in cluster mode yet";

/* Rooms swept per call: the sweep is one short write transaction. */
#define SWEEP_BATCH 64

static int cluster_mode(const struct talas_worker_ctx *ctx)
{
    return ctx->records != NULL || ctx->conf->cluster_enabled;
}

void talas_state_rooms_limits(const struct talas_worker_ctx *ctx, struct talas_room_limits *lim)
{
    const struct talas_config *conf = ctx->conf;

    lim->idle_timeout_ms = conf->rooms_idle_timeout_ms;
    lim->max_members = (uint32_t)conf->rooms_max_members;
    lim->max_queue = (uint32_t)conf->rooms_max_queue;
    lim->max_per_user = (uint32_t)conf->rooms_max_per_user;
    lim->user_data_max = conf->storage_user_data_max;
}

static enum talas_state_outcome outcome(int rc, const char *what)
{
    switch (rc) {
    case 0:
        return TALAS_STATE_OK;
    case MDB_NOTFOUND:
        return TALAS_STATE_NOT_FOUND;
    case TALAS_ROOM_INVALID:
        return TALAS_STATE_REFUSED;
    case TALAS_ROOM_FORBIDDEN:
        return TALAS_STATE_FORBIDDEN;
    case TALAS_QUOTA_EXCEEDED:
        return TALAS_STATE_QUOTA;
    case TALAS_ROOM_DAMAGED:
        log_error("rooms: %s: the stored record is damaged", what);
        return TALAS_STATE_FAILED;
    default:
        talas_storage_log_write_error(what, rc);
        return rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
    }
}

enum talas_state_outcome talas_state_room_create(const struct talas_worker_ctx *ctx,
                                                 const struct talas_room *r, uint64_t now,
                                                 struct talas_quota_refusal *refusal)
{
    struct talas_room_limits lim;

    if (cluster_mode(ctx))
        return TALAS_STATE_UNAVAILABLE;
    talas_state_rooms_limits(ctx, &lim);
    return outcome(talas_room_create(ctx->storage, &lim, r, now, refusal), "rooms: creating");
}

enum talas_state_outcome talas_state_room_update(const struct talas_worker_ctx *ctx, const char *id,
                                                 const char *actor, uint64_t now, talas_room_change_fn *fn,
                                                 void *arg, struct talas_room *room_r, unsigned *norm_r,
                                                 struct talas_quota_refusal *refusal_r)
{
    struct talas_room_limits lim;

    if (cluster_mode(ctx)) {
        memset(room_r, 0, sizeof(*room_r));
        return TALAS_STATE_UNAVAILABLE;
    }
    talas_state_rooms_limits(ctx, &lim);
    return outcome(talas_room_update(ctx->storage, &lim, id, actor, now, fn, arg, room_r, norm_r, refusal_r),
                   "rooms: changing a room");
}

void talas_state_rooms_sweep(const struct talas_worker_ctx *ctx, uint64_t now)
{
    struct talas_room_limits lim;
    size_t deleted;
    int rc;

    if (cluster_mode(ctx))
        return;
    talas_state_rooms_limits(ctx, &lim);
    if ((rc = talas_room_sweep(ctx->storage, &lim, now, SWEEP_BATCH, &deleted)) != 0)
        outcome(rc, "rooms: sweeping idle rooms");
    else if (deleted > 0)
        log_info("rooms: %zu idle room%s deleted", deleted, deleted == 1 ? "" : "s");
}
