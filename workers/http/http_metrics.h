/*
 * http_metrics.h - GET /metrics, the node's figures in the Prometheus text
 * format (http_metrics.c), and the counting of every HTTP request into
 * them.
 */
#ifndef TALAS_HTTP_METRICS_H
#define TALAS_HTTP_METRICS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers GET or HEAD /metrics: the sum of every worker's slot
 * (core/metrics.h), to clients in metrics.allow (else 403), when
 * metrics.enabled (else the 404 of an unknown path). Returns 0. */
int talas_metrics_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req);

/* Counts every request of PATHCONF when h2o disposes of it: its route
 * (talas_router_route) and status class, and the time to its response's
 * headers. CTX is borrowed and may be filled in later, before the first
 * request (as for the router). */
void talas_metrics_http_register(h2o_pathconf_t *pathconf, const struct talas_worker_ctx *ctx);

#endif
