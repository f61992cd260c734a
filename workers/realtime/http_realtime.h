/*
 * http_realtime.h - the HTTP side of the realtime channel (http_realtime.c):
 *
 *   GET  /api/ws/stats                connections and messages, all workers
 *   POST /api/events                  a backend publishes an event (backend key);
 *                                     PlaylistShared also records the editors
 *   GET  /api/analytics/tracks/{id}   plays, listeners, listening time
 *   GET  /api/analytics/users/{id}    a user's listening history
 */
#ifndef TALAS_HTTP_REALTIME_H
#define TALAS_HTTP_REALTIME_H

#include <h2o.h>

#include "worker/worker_ctx.h"

int talas_realtime_ws_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req);
int talas_realtime_events(const struct talas_worker_ctx *ctx, h2o_req_t *req);
int talas_realtime_track_analytics(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                   size_t len);
int talas_realtime_user_analytics(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                  size_t len);

#endif
