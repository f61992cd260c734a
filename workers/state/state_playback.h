/*
 * state_playback.h - each user's playback state (what they play, where,
 * paused or not), whichever store holds it: one asynchronous interface for
 * /api/ws (Play, Pause, Seek, Stop, GetStatus), two backends behind it.
 *
 *   local   (no cluster section)  LMDB, store/playback.c: the change, its
 *           listening sessions and the track totals in one short write
 *           transaction; the callback runs before the call returns, which
 *           returns NULL;
 *   cluster (cluster.redis)       Redis, state_playback_redis.c: a hash per
 *           user (core/cluster_keys.h), read, changed by the same rules
 *           (talas_playback_apply), written back with its TTL; the answer
 *           comes later, on the loop. The listening sessions the change
 *           touched then go to the analytics store (state_analytics.h),
 *           without waiting for it: Play answers while PostgreSQL is down.
 *
 * The contract is state_playlists.h's: a handle to cancel, or NULL when
 * the callback already ran; the callback runs once, on the loop, unless
 * cancelled first; a change sent before its caller cancelled may still
 * happen. Two changes of one user at once on two nodes: the last write
 * wins (one user rarely drives two players at the same instant).
 */
#ifndef TALAS_STATE_PLAYBACK_H
#define TALAS_STATE_PLAYBACK_H

#include "state/state_playlists.h"
#include "store/playback.h"
#include "worker/worker_ctx.h"

struct talas_state_playback_result {
    enum talas_state_outcome outcome; /* OK, REFUSED (reason), FULL, FAILED, UNAVAILABLE (reason) */
    const char *reason;
    struct talas_playback_result change; /* a change, OK */
    struct talas_playback_state state;   /* a read, OK: brought to now; STOPPED when none */
};

typedef void talas_state_playback_fn(void *data, const struct talas_state_playback_result *r);

struct talas_state_playback_op;

/* Applies CMD (strings copied) to USER's state. */
struct talas_state_playback_op *talas_state_playback_change(const struct talas_worker_ctx *ctx,
                                                            const char *user,
                                                            const struct talas_playback_command *cmd,
                                                            talas_state_playback_fn *cb, void *data);
/* Reads USER's state. */
struct talas_state_playback_op *talas_state_playback_get(const struct talas_worker_ctx *ctx, const char *user,
                                                         talas_state_playback_fn *cb, void *data);
/*
 * Now playing (the Subsonic API's getNowPlaying): every user whose state
 * is playing and whose last change (a Play, a Seek, a scrobble with
 * submission=false) is recent: less than the track's length plus
 * TALAS_NOW_PLAYING_GRACE_MS old (the grace alone when the length is
 * unknown). A user who left a track playing and went away thus drops out
 * by himself. Entries are by user; CB gets them, brought to NOW_MS, valid
 * during the call. The states are those the playback changes of every
 * worker write: this node's LMDB, or in cluster mode Redis (every node's,
 * through the sorted set TALAS_CLUSTER_NOW_PLAYING). At most
 * TALAS_NOW_PLAYING_MAX entries, the most recent first. Outcomes: OK,
 * FAILED (LMDB), UNAVAILABLE (Redis).
 */
#define TALAS_NOW_PLAYING_GRACE_MS (5 * 60 * 1000)
#define TALAS_NOW_PLAYING_MAX 500
struct talas_state_now_playing {
    const char *user;
    uint64_t changed_ms; /* the last change (minutesAgo counts from it) */
    struct talas_playback_state state;
};
struct talas_state_now_playing_result {
    enum talas_state_outcome outcome; /* OK, FAILED, UNAVAILABLE */
    const struct talas_state_now_playing *entries;
    size_t count;
};
typedef void talas_state_now_playing_fn(void *data, const struct talas_state_now_playing_result *r);
struct talas_state_playback_op *talas_state_playback_now_playing(const struct talas_worker_ctx *ctx,
                                                                 uint64_t now_ms,
                                                                 talas_state_now_playing_fn *cb, void *data);

/* Detaches OP from its caller: its callback will not run. */
void talas_state_playback_cancel(struct talas_state_playback_op *op);

/* -------------------------------------------------------- internals */

/* The cluster backend (state_playback_redis.c), same contract. */
struct talas_state_playback_op *talas__state_playback_redis_change(const struct talas_worker_ctx *ctx,
                                                                   const char *user,
                                                                   const struct talas_playback_command *cmd,
                                                                   talas_state_playback_fn *cb, void *data);
struct talas_state_playback_op *talas__state_playback_redis_get(const struct talas_worker_ctx *ctx,
                                                                const char *user, talas_state_playback_fn *cb,
                                                                void *data);
struct talas_state_playback_op *talas__state_playback_redis_now_playing(const struct talas_worker_ctx *ctx,
                                                                        uint64_t now_ms,
                                                                        talas_state_now_playing_fn *cb,
                                                                        void *data);
void talas__state_playback_redis_cancel(struct talas_state_playback_op *op);

#endif
