/*
 * state_sessions.h - streaming sessions, whichever store holds them: one
 * asynchronous interface for the handlers (workers/http/http_session.c),
 * two backends behind it.
 *
 *   local   (no cluster section)  LMDB, store/sessions.c: each call
 *           completes at once, its callback called before it returns;
 *   cluster (cluster.redis)       Redis, state_sessions_redis.c: the
 *           answer comes later, on the loop, through the worker's Redis
 *           commands connection (cluster/cluster_bus.h), so that a session
 *           made on one node is read, changed and ended on any other.
 *
 * The contract is state_playlists.h's: each call takes the worker's
 * context and a completion callback; it returns a handle to cancel the
 * operation, or NULL when the callback has already run (always, with the
 * local backend; with the cluster one, when Redis cannot be reached now).
 * The callback runs once, on the loop, unless the caller cancels first (a
 * request that goes away cancels and is never touched). A change that was
 * sent before its caller cancelled may still happen.
 *
 * Limits: the streaming.* bounds (struct talas_session_limits) hold in
 * both stores, checked and the session stored in one step: an LMDB write
 * transaction, or one Lua script in Redis, so that two nodes can never
 * both take the last slot.
 */
#ifndef TALAS_STATE_SESSIONS_H
#define TALAS_STATE_SESSIONS_H

#include <stddef.h>

#include "store/quota.h"
#include "store/sessions.h"
#include "worker/worker_ctx.h"

enum talas_state_session_outcome {
    TALAS_STATE_SESSION_OK = 0,
    TALAS_STATE_SESSION_NOT_FOUND,   /* no such session: never made, ended or expired */
    TALAS_STATE_SESSION_QUOTA,       /* create: an owner's bound refused (refusal) */
    TALAS_STATE_SESSION_FULL,        /* create: streaming.max_sessions (or its unreserved part) */
    TALAS_STATE_SESSION_FAILED,      /* the store failed (logged) */
    TALAS_STATE_SESSION_UNAVAILABLE, /* the cluster store cannot be reached */
};

/* What a call came to. Pointers live until the callback returns. */
struct talas_state_session_result {
    enum talas_state_session_outcome outcome;
    int wrote;                                   /* FAILED: 1 when a write failed, 0 a read */
    const struct talas_session *session;         /* create, get, update: OK */
    struct talas_quota_refusal refusal;          /* QUOTA */
    const struct talas_session_counters *totals; /* stats: OK */
    const struct talas_session *sessions;        /* stats: the live sessions */
    size_t count;
};

typedef void talas_state_session_fn(void *data, const struct talas_state_session_result *r);

/* A pending operation; see talas_state_session_cancel. */
struct talas_state_session_op;

/*
 * Stores new session S (copied; its last_updated_ms is "now") against its
 * owner, unless a bound of LIM refuses it (see talas_session_create: the
 * owner's bound first, then the global cap, of which the last
 * LIM->backend_reserved slots are for BACKEND only).
 */
struct talas_state_session_op *talas_state_session_create(const struct talas_worker_ctx *ctx,
                                                          const struct talas_session *s,
                                                          const struct talas_session_limits *lim, int backend,
                                                          talas_state_session_fn *cb, void *data);
/* Reads session ID (a valid id). */
struct talas_state_session_op *talas_state_session_get(const struct talas_worker_ctx *ctx, const char *id,
                                                       talas_state_session_fn *cb, void *data);
/*
 * Changes session ID with APPLY(session, delta, ARG) (store/sessions.h),
 * stored with last_updated_ms "now" and its expiry pushed back. APPLY may
 * run more than once (the cluster backend retries when another node
 * changed the session in between), each time on the stored session, and
 * never after a cancel; it returns 0 (another value: nothing is stored,
 * FAILED). The result's session is what was stored.
 */
struct talas_state_session_op *talas_state_session_update(const struct talas_worker_ctx *ctx, const char *id,
                                                          talas_session_update_fn *apply, void *arg,
                                                          talas_state_session_fn *cb, void *data);
/* Ends session ID (counted as ended). */
struct talas_state_session_op *talas_state_session_end(const struct talas_worker_ctx *ctx, const char *id,
                                                       talas_state_session_fn *cb, void *data);
/* The live sessions and the running totals. */
struct talas_state_session_op *talas_state_session_stats(const struct talas_worker_ctx *ctx,
                                                         talas_state_session_fn *cb, void *data);

/* Detaches OP from its caller: neither its callback nor an APPLY runs. */
void talas_state_session_cancel(struct talas_state_session_op *op);

/* Deletes expired sessions now and then (the local store; Redis expires
 * its own). Call it from the worker's tick. */
void talas_state_session_tick(const struct talas_worker_ctx *ctx);

/* -------------------------------------------------------- internals */

/* The cluster backend (state_sessions_redis.c), with the same contract. */
struct talas_state_session_op *talas__state_redis_session_create(const struct talas_worker_ctx *ctx,
                                                                 const struct talas_session *s,
                                                                 const struct talas_session_limits *lim,
                                                                 int backend, talas_state_session_fn *cb,
                                                                 void *data);
struct talas_state_session_op *talas__state_redis_session_get(const struct talas_worker_ctx *ctx,
                                                              const char *id, talas_state_session_fn *cb,
                                                              void *data);
struct talas_state_session_op *talas__state_redis_session_update(const struct talas_worker_ctx *ctx,
                                                                 const char *id,
                                                                 talas_session_update_fn *apply, void *arg,
                                                                 talas_state_session_fn *cb, void *data);
struct talas_state_session_op *talas__state_redis_session_end(const struct talas_worker_ctx *ctx,
                                                              const char *id, talas_state_session_fn *cb,
                                                              void *data);
struct talas_state_session_op *talas__state_redis_session_stats(const struct talas_worker_ctx *ctx,
                                                                talas_state_session_fn *cb, void *data);

#endif
