/*
 * state_shares.h - private links (shares) whichever store holds them:
 * the interface of http_shares.c and of the media routes' share check.
 *
 *   local   (no cluster section)  LMDB, store/shares.c: each call is one
 *           short read or write transaction on the loop;
 *   cluster (cluster.postgres)    not written yet: every call answers
 *           TALAS_STATE_UNAVAILABLE with talas_state_shares_no_cluster,
 *           which the handlers turn into 501 shares_unavailable.
 *
 * The calls are synchronous: the media routes check a share on every
 * request before anything is opened, as they check a token. Outcomes are
 * state_playlists.h's: OK, NOT_FOUND, REFUSED (admit: the listener limit),
 * FULL, FAILED (logged here), UNAVAILABLE.
 */
#ifndef TALAS_STATE_SHARES_H
#define TALAS_STATE_SHARES_H

#include "state/state_playlists.h"
#include "store/shares.h"
#include "worker/worker_ctx.h"

extern const char talas_state_shares_no_cluster[];

enum talas_state_outcome talas_state_share_create(const struct talas_worker_ctx *ctx,
                                                  const struct talas_share *s);
/* Reads share ID into *S_R. */
enum talas_state_outcome talas_state_share_get(const struct talas_worker_ctx *ctx, const char *id,
                                               struct talas_share *s_r);
/* Revokes share ID at once (deletes it); *S_R (may be NULL) as it was. */
enum talas_state_outcome talas_state_share_revoke(const struct talas_worker_ctx *ctx, const char *id,
                                                  struct talas_share *s_r);
/* Lets LISTENER into share ID: REFUSED when max_listeners are in. */
enum talas_state_outcome talas_state_share_admit(const struct talas_worker_ctx *ctx, const char *id,
                                                 const char *listener);
/* Adds to share ID's plays and listening time. */
enum talas_state_outcome talas_state_share_count(const struct talas_worker_ctx *ctx, const char *id,
                                                 uint64_t plays, uint64_t listening_ms);
/* Calls FN for every share (OWNER NULL) or OWNER's. */
enum talas_state_outcome talas_state_share_list(const struct talas_worker_ctx *ctx, const char *owner,
                                                talas_share_fn *fn, void *arg);

#endif
