/*
 * state_rooms.h - listening rooms whichever store holds them: the
 * interface of ws_rooms.c and http_rooms.c.
 *
 *   local   (no cluster section)  LMDB, store/rooms.c: each call is one
 *           short transaction on the loop;
 *   cluster (a cluster section)   not written yet: every call answers
 *           TALAS_STATE_UNAVAILABLE (talas_state_rooms_no_cluster), which
 *           WebSocket commands answer "unavailable: ..." and REST 501.
 *
 * Calls are synchronous. Outcomes are state.h's: OK, NOT_FOUND (unknown or
 * expired room), REFUSED (invalid: a bad value, an unknown entry),
 * FORBIDDEN, QUOTA (the refusal names the rooms.* key), FULL, FAILED
 * (logged here), UNAVAILABLE.
 */
#ifndef TALAS_STATE_ROOMS_H
#define TALAS_STATE_ROOMS_H

#include "state/state.h"
#include "store/rooms.h"
#include "worker/worker_ctx.h"

extern const char talas_state_rooms_no_cluster[];

/* The rooms.* limits of CTX's configuration. */
void talas_state_rooms_limits(const struct talas_worker_ctx *ctx, struct talas_room_limits *lim);

/* Stores the new room R (R->host its first member); QUOTA in *REFUSAL. */
enum talas_state_outcome talas_state_room_create(const struct talas_worker_ctx *ctx,
                                                 const struct talas_room *r, uint64_t now,
                                                 struct talas_quota_refusal *refusal);

/*
 * Room ID made current (ACTOR, may be NULL, marked active) and changed by
 * FN (may be NULL: a read); talas_room_update. *ROOM_R gets the room as
 * it is now (free it with talas_room_free whatever the outcome), *NORM_R
 * (may be NULL) what normalize changed. FN's errors map to REFUSED
 * (TALAS_ROOM_INVALID), FORBIDDEN, QUOTA; a change that grows the room
 * past storage.user_data_max is QUOTA too, its limit in *REFUSAL_R (may
 * be NULL).
 */
enum talas_state_outcome talas_state_room_update(const struct talas_worker_ctx *ctx, const char *id,
                                                 const char *actor, uint64_t now, talas_room_change_fn *fn,
                                                 void *arg, struct talas_room *room_r, unsigned *norm_r,
                                                 struct talas_quota_refusal *refusal_r);

/* Deletes rooms idle past rooms.idle_timeout (a few per call). */
void talas_state_rooms_sweep(const struct talas_worker_ctx *ctx, uint64_t now);

#endif
