/*
 * state_comments.h - timed comments on tracks, whichever store holds
 * them: one asynchronous interface for the handlers (http_comments.c),
 * two backends behind it, as state_playlists.h describes:
 *
 *   local   (no cluster section)  LMDB, store/comments.c: each call
 *           completes at once, its callback called before it returns;
 *   cluster (cluster.postgres)    PostgreSQL, state_comments_pg.c: the
 *           answer comes later, on the loop (cluster/pg.h).
 *
 * Each call returns a pending operation to cancel, or NULL when the
 * callback has already run. The outcome is one of state_playlists.h's:
 * OK, REFUSED (no parent, parent on another track: reason), QUOTA (add:
 * the track holds comments.max_per_track, exactly in both stores), FORBIDDEN
 * (another user's comment), NOT_FOUND (no such comment), FULL, FAILED
 * (logged here), UNAVAILABLE (the cluster store: reason).
 */
#ifndef TALAS_STATE_COMMENTS_H
#define TALAS_STATE_COMMENTS_H

#include <stddef.h>

#include "state/state_playlists.h"
#include "store/comments.h"
#include "worker/worker_ctx.h"

struct talas_state_comment_result {
    enum talas_state_outcome outcome;
    const char *reason;
    /* add, edit: the comment as stored; delete: as it was */
    const struct talas_comment *comment;
    /* list: every comment of the tracks asked, in no given order */
    const struct talas_comment *comments;
    size_t count;
};

typedef void talas_state_comment_fn(void *data, const struct talas_state_comment_result *r);

struct talas_state_comment_op;

/* Adds C (its id made by the caller, talas_comment_id_make). */
struct talas_state_comment_op *talas_state_comment_add(const struct talas_worker_ctx *ctx,
                                                       const struct talas_comment *c,
                                                       talas_state_comment_fn *cb, void *data);
/* Edits (BODY not NULL) or deletes (BODY NULL) comment ID as USER (NULL:
 * the backend). */
struct talas_state_comment_op *talas_state_comment_change(const struct talas_worker_ctx *ctx, const char *id,
                                                          const char *user, const char *body,
                                                          size_t body_len, talas_state_comment_fn *cb,
                                                          void *data);
/* Lists the comments of the N TRACKS. */
struct talas_state_comment_op *talas_state_comment_list(const struct talas_worker_ctx *ctx,
                                                        const char *const *tracks, size_t n,
                                                        talas_state_comment_fn *cb, void *data);
/* Detaches OP from its caller: its callback will not run. */
void talas_state_comment_cancel(struct talas_state_comment_op *op);

/* The cluster backend (state_comments_pg.c), with the same contract. */
struct talas_state_comment_op *talas__state_comment_pg_add(const struct talas_worker_ctx *ctx,
                                                           const struct talas_comment *c,
                                                           talas_state_comment_fn *cb, void *data);
struct talas_state_comment_op *talas__state_comment_pg_change(const struct talas_worker_ctx *ctx,
                                                              const char *id, const char *user,
                                                              const char *body, size_t body_len,
                                                              uint64_t now_ms, talas_state_comment_fn *cb,
                                                              void *data);
struct talas_state_comment_op *talas__state_comment_pg_list(const struct talas_worker_ctx *ctx,
                                                            const char *const *tracks, size_t n,
                                                            talas_state_comment_fn *cb, void *data);
void talas__state_comment_pg_cancel(struct talas_state_comment_op *op);

#endif
