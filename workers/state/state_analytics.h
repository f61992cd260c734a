/*
 * state_analytics.h - listening sessions and per-track totals (plays,
 * listeners, listening time), whichever store holds them: what
 * /api/analytics/tracks/{id} and /api/analytics/users/{id} read, and what
 * the cluster backend of playback state writes.
 *
 *   local   (no cluster section)  LMDB, store/playback.c: written by each
 *           playback change in its own transaction (state_playback.c);
 *           reads complete before the call returns, which returns NULL;
 *   cluster (cluster.postgres)    PostgreSQL, state_analytics_pg.c: every
 *           node writes there (talas_state_analytics_record), so the totals
 *           are the cluster's, read on any node; reads answer later.
 *
 * The contract of reads is state_playlists.h's (a handle to cancel, or
 * NULL once the callback ran). A store that cannot be reached answers
 * TALAS_STATE_UNAVAILABLE (the routes: 503 store_unavailable).
 */
#ifndef TALAS_STATE_ANALYTICS_H
#define TALAS_STATE_ANALYTICS_H

#include <stddef.h>

#include "state/state_playlists.h"
#include "store/playback.h"
#include "worker/worker_ctx.h"

struct talas_state_analytics_result {
    enum talas_state_outcome outcome; /* OK, FAILED, UNAVAILABLE (reason) */
    const char *reason;
    struct talas_track_plays plays; /* a track's read: zeros when never played */
    const struct talas_listen_session
        *sessions; /* a user's read: newest first, live until the callback returns */
    size_t count;
    size_t total; /* the user's sessions, all of them */
};

typedef void talas_state_analytics_fn(void *data, const struct talas_state_analytics_result *r);

struct talas_state_analytics_op;

/* TRACK's totals (TRACK: a canonical id, aliases resolved by the caller). */
struct talas_state_analytics_op *talas_state_analytics_track(const struct talas_worker_ctx *ctx,
                                                             const char *track, talas_state_analytics_fn *cb,
                                                             void *data);
/* USER's sessions, newest first, at most LIMIT, and how many there are. */
struct talas_state_analytics_op *talas_state_analytics_sessions(const struct talas_worker_ctx *ctx,
                                                                const char *user, size_t limit,
                                                                talas_state_analytics_fn *cb, void *data);
/* Detaches OP from its caller: its callback will not run. */
void talas_state_analytics_cancel(struct talas_state_analytics_op *op);

/*
 * The cluster backend of playback state hands each session a change
 * touched (W, with its id SID, the same from every node) to the analytics
 * store, and does not wait: with a record store, one call of
 * talas_listen_session_put (store/pg_schema.c), which a repeat never
 * counts twice. A write PostgreSQL cannot take (down, refusing, failing)
 * is dropped, counted (talas_listen_sessions_dropped_total) and logged
 * once per outage: the next write of the same session carries it whole
 * (its listening time so far), so only what the session's last write
 * would have added is lost. Without a record store: nothing.
 */
void talas_state_analytics_record(const struct talas_worker_ctx *ctx, const char *user,
                                  const struct talas_playback_session_write *w, const char *sid);

/* -------------------------------------------------------- internals */

struct talas_state_analytics_op *talas__state_analytics_pg_track(const struct talas_worker_ctx *ctx,
                                                                 const char *track,
                                                                 talas_state_analytics_fn *cb, void *data);
struct talas_state_analytics_op *talas__state_analytics_pg_sessions(const struct talas_worker_ctx *ctx,
                                                                    const char *user, size_t limit,
                                                                    talas_state_analytics_fn *cb, void *data);
void talas__state_analytics_pg_cancel(struct talas_state_analytics_op *op);

#endif
