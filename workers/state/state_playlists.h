/*
 * state_playlists.h - playlists, whichever store holds them: one
 * asynchronous interface for the handlers (/api/ws, POST /api/events,
 * GET /api/playlists/{id}), two backends behind it.
 *
 *   local   (no cluster section)  LMDB, store/playlists.c: each call
 *           completes at once, its callback called before it returns;
 *   cluster (cluster.postgres)    PostgreSQL, state_playlists_pg.c: the
 *           answer comes later, on the loop, through the worker's
 *           connection (cluster/pg.h).
 *
 * A handler never knows which. Each call takes the worker's context and a
 * completion callback; it returns a handle to cancel the operation, or
 * NULL when the callback has already run (always, with the local backend;
 * with the cluster one, when the store cannot be reached now). The
 * callback runs once, on the loop, unless the caller cancels first:
 * something that goes away before the answer (a WebSocket connection, an
 * HTTP request) cancels, and is never touched. A change that was sent to
 * the store before its caller cancelled may still happen.
 *
 * The outcome carries what store/playlists.h does today: the refusal's
 * reason (its texts, the same from both stores), the quota that refused
 * (TALAS_STATE_QUOTA: its key and value), or that the store failed (the
 * failure is logged here, a full LMDB map once a minute).
 *
 * Limits: the playlists.* keys hold in both stores, inside the write's own
 * transaction. storage.user_data_max bounds what users keep in the
 * node's LMDB map: it applies to the local store only.
 */
#ifndef TALAS_STATE_PLAYLISTS_H
#define TALAS_STATE_PLAYLISTS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"
#include "store/quota.h"
#include "worker/worker_ctx.h"


/* A playlist as read. Strings and arrays live until the callback returns. */
struct talas_state_playlist {
    const char *id;
    const char *owner;          /* "" when nobody owns it (one from before owners) */
    const char *name, *comment; /* "" when it has none (a playlist from before names) */
    int public_;
    uint64_t created_ms, changed_ms; /* wall clock; 0 when unknown */
    const char *const *editors;
    size_t editor_count;
    const char *const *tracks; /* in order */
    size_t track_count;
};

struct talas_state_playlist_result {
    enum talas_state_outcome outcome;
    uint64_t position;                            /* add: where the track went; remove: where it was */
    int created;                                  /* add: the playlist is new, the user's */
    size_t editors_added;                         /* share */
    const char *reason;                           /* REFUSED, FORBIDDEN, NOT_FOUND, UNAVAILABLE */
    struct talas_quota_refusal refusal;           /* QUOTA */
    const struct talas_state_playlist *playlist;  /* get, OK */
    const struct talas_state_playlist *playlists; /* list, OK: PLAYLIST_COUNT of them, in id order */
    size_t playlist_count;
};

typedef void talas_state_playlist_fn(void *data, const struct talas_state_playlist_result *r);

/* A pending operation; see talas_state_cancel. */
struct talas_state_op;

/*
 * The changes, as store/playlists.h describes them; USER is the sub of the
 * user asking (share: NULL for the backend). Ids are copied. Each returns
 * the pending operation or NULL when CB(DATA, result) already ran.
 */
struct talas_state_op *talas_state_playlist_add(const struct talas_worker_ctx *ctx, const char *user,
                                                const char *playlist, const char *track, int has_position,
                                                uint64_t position, talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas_state_playlist_remove(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *playlist, const char *track,
                                                   talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas_state_playlist_share(const struct talas_worker_ctx *ctx, const char *user,
                                                  const char *playlist, const char *const *to_users, size_t n,
                                                  talas_state_playlist_fn *cb, void *data);
/* Reads the whole playlist: owner, editors, tracks in order. */
struct talas_state_op *talas_state_playlist_get(const struct talas_worker_ctx *ctx, const char *playlist,
                                                talas_state_playlist_fn *cb, void *data);

/* The changes of store/playlists.h's talas_playlist_edit and
 * talas_playlist_delete (USER NULL: the backend); E's arrays and strings
 * are copied. Edit's result position is the track count after. */
struct talas_playlist_edit;
struct talas_state_op *talas_state_playlist_edit(const struct talas_worker_ctx *ctx, const char *user,
                                                 const char *playlist, const struct talas_playlist_edit *e,
                                                 talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas_state_playlist_delete(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *playlist, talas_state_playlist_fn *cb,
                                                   void *data);
/* The playlists USER may list (owned, edited, public), each whole. */
struct talas_state_op *talas_state_playlist_list(const struct talas_worker_ctx *ctx, const char *user,
                                                 talas_state_playlist_fn *cb, void *data);

/* Detaches OP from its caller: its callback will not run. */
void talas_state_cancel(struct talas_state_op *op);

/* -------------------------------------------------------- internals */

/* The cluster backend (state_playlists_pg.c), with the same contract;
 * LIM are the playlists.* limits. */
struct talas_playlist_limits;
struct talas_state_op *talas__state_pg_add(const struct talas_worker_ctx *ctx,
                                           const struct talas_playlist_limits *lim, const char *user,
                                           const char *playlist, const char *track, int has_position,
                                           uint64_t position, talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_remove(const struct talas_worker_ctx *ctx, const char *user,
                                              const char *playlist, const char *track,
                                              talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_share(const struct talas_worker_ctx *ctx,
                                             const struct talas_playlist_limits *lim, const char *user,
                                             const char *playlist, const char *const *to_users, size_t n,
                                             talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_get(const struct talas_worker_ctx *ctx, const char *playlist,
                                           talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_edit(const struct talas_worker_ctx *ctx,
                                            const struct talas_playlist_limits *lim, const char *user,
                                            const char *playlist, const struct talas_playlist_edit *e,
                                            talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_delete(const struct talas_worker_ctx *ctx, const char *user,
                                              const char *playlist, talas_state_playlist_fn *cb, void *data);
struct talas_state_op *talas__state_pg_list(const struct talas_worker_ctx *ctx, const char *user,
                                            talas_state_playlist_fn *cb, void *data);
void talas__state_pg_cancel(struct talas_state_op *op);

#endif
