/*
 * http_router.h - maps request paths to the handlers of the worker.
 *
 *   /api/health          http_api.c
 *   /api/profiles        http_api.c
 *   /api/tracks[/{id}]   http_api.c
 *   /stream/{id}         http_stream.c (the file), http_transcode.c (?profile, ?format, ?t)
 *   /preview/{id}        http_transcode.c
 *   /api/stats           http_api.c
 *   /api/ws              ws_conn.c (WebSocket)
 *   /api/ws/stats, /api/events, /api/analytics/{tracks,users}/{id}
 *                        http_realtime.c
 *   /api/playlists/{id}  http_playlists.c
 *   /metrics             http_metrics.c
 *
 * Anything else is a JSON 404.
 */
#ifndef TALAS_HTTP_ROUTER_H
#define TALAS_HTTP_ROUTER_H

#include <h2o.h>

#include "core/metrics.h"
#include "worker/worker_ctx.h"

/* Installs the router as the handler of PATHCONF. CTX is borrowed, not
 * copied: it must outlive the configuration, and may be filled in after
 * this call, as long as it is before the first request. */
void talas_router_register(h2o_pathconf_t *pathconf, const struct talas_worker_ctx *ctx);

/* Routes REQ by its normalised path and answers it (a JSON 404 when no
 * route matches); returns what the route returns (0). The h2o handler's
 * on_req, exposed so that a test can route a request of its own. */
int talas_router_dispatch(const struct talas_worker_ctx *ctx, h2o_req_t *req);

/* The route label REQ counts under in talas_http_* (core/metrics.h), by
 * the same paths as the dispatch. */
enum talas_metrics_route talas_router_route(h2o_req_t *req);

#endif
