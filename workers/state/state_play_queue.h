/*
 * state_play_queue.h - each user's saved play queue (the Subsonic API's
 * savePlayQueue and getPlayQueue), whichever store holds it: one
 * asynchronous interface, two backends behind it.
 *
 *   local   (no cluster section)  LMDB, store/play_queue.c: each call
 *           completes at once, its callback called before it returns;
 *   cluster (cluster.postgres)    PostgreSQL, state_play_queue_pg.c: the
 *           answer comes later, on the loop, through the worker's
 *           connection (cluster/pg.h); one round trip per call.
 *
 * The contract is state_playlists.h's: a handle to cancel, or NULL when the
 * callback already ran; the callback runs once, on the loop, unless
 * cancelled first; a save sent before its caller cancelled may still
 * happen. Outcomes are enum talas_state_outcome's: OK, REFUSED (beyond the
 * limits of store/play_queue.h), QUOTA (storage.user_data_max, local
 * only), FULL, FAILED, UNAVAILABLE (reason).
 */
#ifndef TALAS_STATE_PLAY_QUEUE_H
#define TALAS_STATE_PLAY_QUEUE_H

#include "state/state_playlists.h"
#include "store/play_queue.h"
#include "worker/worker_ctx.h"

struct talas_state_play_queue_result {
    enum talas_state_outcome outcome;
    const char *reason;                 /* REFUSED, UNAVAILABLE */
    struct talas_quota_refusal refusal; /* QUOTA */
    const struct talas_play_queue
        *queue; /* a read, OK: NULL when the user saved none; valid during the callback */
};

typedef void talas_state_play_queue_fn(void *data, const struct talas_state_play_queue_result *r);

struct talas_state_play_queue_op;

/* Saves Q (copied; its changed_ms is set to now) as USER's queue; an empty
 * Q clears it. */
struct talas_state_play_queue_op *talas_state_play_queue_save(const struct talas_worker_ctx *ctx,
                                                              const char *user,
                                                              const struct talas_play_queue *q,
                                                              talas_state_play_queue_fn *cb, void *data);
/* Reads USER's queue. */
struct talas_state_play_queue_op *talas_state_play_queue_get(const struct talas_worker_ctx *ctx,
                                                             const char *user, talas_state_play_queue_fn *cb,
                                                             void *data);

/* Detaches OP from its caller: its callback will not run. */
void talas_state_play_queue_cancel(struct talas_state_play_queue_op *op);

/* -------------------------------------------------------- internals */

/* The cluster backend (state_play_queue_pg.c), same contract; Q's
 * changed_ms is already set. */
struct talas_state_play_queue_op *talas__state_play_queue_pg_save(const struct talas_worker_ctx *ctx,
                                                                  const char *user,
                                                                  const struct talas_play_queue *q,
                                                                  talas_state_play_queue_fn *cb, void *data);
struct talas_state_play_queue_op *talas__state_play_queue_pg_get(const struct talas_worker_ctx *ctx,
                                                                 const char *user,
                                                                 talas_state_play_queue_fn *cb, void *data);
void talas__state_play_queue_pg_cancel(struct talas_state_play_queue_op *op);

#endif
