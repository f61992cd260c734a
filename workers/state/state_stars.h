/*
 * state_stars.h - each user's stars and ratings (the Subsonic API's star,
 * unstar, setRating, getStarred), whichever store holds them: one
 * asynchronous interface, two backends behind it.
 *
 *   local   (no cluster section)  LMDB, store/stars.c: each call completes
 *           at once, its callback called before it returns;
 *   cluster (cluster.postgres)    PostgreSQL, state_stars_pg.c: the answer
 *           comes later, on the loop, through the worker's connection
 *           (cluster/pg.h); one round trip per call.
 *
 * The contract is state_playlists.h's: a handle to cancel, or NULL when the
 * callback already ran; the callback runs once, on the loop, unless
 * cancelled first; a change sent before its caller cancelled may still
 * happen. Outcomes are enum talas_state_outcome's: OK, REFUSED (an id of 0
 * or more than TALAS_STARS_ID_MAX bytes, a rating out of range), QUOTA
 * (storage.user_data_max, local only), FULL, FAILED, UNAVAILABLE (reason).
 */
#ifndef TALAS_STATE_STARS_H
#define TALAS_STATE_STARS_H

#include "state/state_playlists.h"
#include "store/stars.h"
#include "worker/worker_ctx.h"

struct talas_state_stars_result {
    enum talas_state_outcome outcome;
    const char *reason;                 /* REFUSED, UNAVAILABLE */
    struct talas_quota_refusal refusal; /* QUOTA */
    const struct talas_star *stars;     /* a list, OK: by item; valid during the callback */
    size_t count;
};

typedef void talas_state_stars_fn(void *data, const struct talas_state_stars_result *r);

struct talas_state_stars_op;

/* Stars (STAR 1) or unstars (0) USER's N ITEMS (copied), now. */
struct talas_state_stars_op *talas_state_stars_set(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *const *items, size_t n, int star,
                                                   talas_state_stars_fn *cb, void *data);
/* Sets USER's RATING of ITEM (0 clears). */
struct talas_state_stars_op *talas_state_stars_rate(const struct talas_worker_ctx *ctx, const char *user,
                                                    const char *item, unsigned rating, talas_state_stars_fn *cb,
                                                    void *data);
/* Reads every mark of USER. */
struct talas_state_stars_op *talas_state_stars_list(const struct talas_worker_ctx *ctx, const char *user,
                                                    talas_state_stars_fn *cb, void *data);

/* Detaches OP from its caller: its callback will not run. */
void talas_state_stars_cancel(struct talas_state_stars_op *op);

/* -------------------------------------------------------- internals */

/* The cluster backend (state_stars_pg.c), same contract; NOW_MS is the
 * star's time. */
struct talas_state_stars_op *talas__state_stars_pg_set(const struct talas_worker_ctx *ctx, const char *user,
                                                       const char *const *items, size_t n, int star,
                                                       uint64_t now_ms, talas_state_stars_fn *cb, void *data);
struct talas_state_stars_op *talas__state_stars_pg_rate(const struct talas_worker_ctx *ctx, const char *user,
                                                        const char *item, unsigned rating,
                                                        talas_state_stars_fn *cb, void *data);
struct talas_state_stars_op *talas__state_stars_pg_list(const struct talas_worker_ctx *ctx, const char *user,
                                                        talas_state_stars_fn *cb, void *data);
void talas__state_stars_pg_cancel(struct talas_state_stars_op *op);

#endif
