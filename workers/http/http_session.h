/*
 * http_session.h - the streaming sessions API (/api/streaming/...).
 *
 * Each handler answers the request (never returns -1) and returns 0.
 */
#ifndef TALAS_HTTP_SESSION_H
#define TALAS_HTTP_SESSION_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* POST /api/streaming/session: creates a session, counted against its
 * owner (the token's user, the backend's client_id, or the client's
 * address): 429 quota_exceeded past the owner's bound, 503
 * too_many_sessions past the global cap or, for all but the backend key,
 * past the part of it not reserved to the backend. */
int talas_session_api_create(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* /api/streaming/session/{id} (GET, DELETE), .../{id}/quality (PUT),
 * .../{id}/metrics (POST); REST (LEN bytes) is what follows "session/". */
int talas_session_api_session(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *rest,
                              size_t len);
/* GET /api/streaming/stats. */
int talas_session_api_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req);

/* Called by the worker's loop after each iteration: now and then, deletes
 * the sessions that have expired (a read-only scan, and a short write
 * when it found some). */
void talas_session_api_tick(const struct talas_worker_ctx *ctx);

#endif
