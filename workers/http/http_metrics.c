/*
 * http_metrics.c - GET /metrics: the node's figures for Prometheus, and
 * the one place HTTP requests are counted.
 *
 * Entry points (http_metrics.h): talas_metrics_serve (dispatched by
 * http_router.c), talas_metrics_http_register (worker.c, on every path).
 *
 * A scrape sums the slots of every worker of the node (core/metrics.h):
 * memory reads only, whichever worker answers, without asking the others
 * or the master. Only clients in metrics.allow (default: loopback) get an
 * answer; the others a 403. With metrics.enabled false the path is
 * unknown: the router's 404.
 *
 * Requests are counted by an h2o logger, which h2o calls for every request
 * of the path when it disposes of it, whatever handler answered and
 * however it ended: the status class under the route label of the
 * router's paths, and the time from the request's first byte to its
 * response's headers (h2o's timestamps) into the histogram. A request
 * that got no response (the client left first) is not counted.
 *
 * Logs nothing: a refused scrape is in the access log.
 */
#include <string.h>
#include <sys/socket.h>

#include "core/cidr.h"
#include "core/metrics.h"
#include "http/http_metrics.h"
#include "http/http_response.h"
#include "http/http_router.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* metrics.allow, parsed on the first scrape (the configuration checked
 * every entry already) */
static struct talas_cidr *allow;
static size_t allow_count;
static int allow_parsed;

static int client_allowed(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct sockaddr_storage ss;

    if (!allow_parsed) {
        allow = xcalloc(ctx->conf->metrics_allow_count, sizeof(*allow));
        for (size_t i = 0; i < ctx->conf->metrics_allow_count; i++)
            if (talas_cidr_parse(ctx->conf->metrics_allow[i], &allow[allow_count]) == 0)
                allow_count++;
        allow_parsed = 1;
    }
    if (req->conn->callbacks->get_peername == NULL ||
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return 0;
    for (size_t i = 0; i < allow_count; i++)
        if (talas_cidr_match(&allow[i], (struct sockaddr *)&ss))
            return 1;
    return 0;
}

int talas_metrics_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    struct talas_metrics_slot sum;
    struct talas_buf text = {0};
    h2o_iovec_t body;

    if (!ctx->conf->metrics_enabled) {
        talas_http_send_error(req, 404, "not_found", "no such resource");
        return 0;
    }
    if (!client_allowed(ctx, req)) {
        talas_http_send_error(req, 403, "forbidden", "this address may not read /metrics (metrics.allow)");
        return 0;
    }
    if (talas_http_reject_unless_get(req))
        return 0;
    if (ctx->metrics_node == NULL) {
        talas_http_send_error(req, 503, "metrics_unavailable",
                              "this worker could not map the node's figures (see the error log)");
        return 0;
    }
    talas_metrics_sum(ctx->metrics_node, &sum);
    talas_metrics_format(&sum, PACKAGE_VERSION, &text);
    body = h2o_strdup(&req->pool, text.data, text.len);
    talas_buf_free(&text);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT(CONTENT_TYPE));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (talas_http_method_is(req, "HEAD"))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

/* ---------------------------------------------------------- counting */

struct metrics_logger {
    h2o_logger_t super; /* must stay first: h2o hands it back */
    const struct talas_worker_ctx *ctx;
};

static void on_request_done(h2o_logger_t *self, h2o_req_t *req)
{
    struct talas_metrics_slot *m = talas_worker_ctx_metrics(((struct metrics_logger *)self)->ctx);
    int status = talas_metrics_status_class(req->res.status);
    enum talas_metrics_route route;
    int64_t us;

    if (status < 0)
        return;
    route = talas_router_route(req);
    talas_metrics_add(&m->count.http_requests[route][status], 1);
    if (h2o_timeval_is_null(&req->timestamps.request_begin_at) ||
        h2o_timeval_is_null(&req->timestamps.response_start_at))
        return;
    us = h2o_timeval_subtract(&req->timestamps.request_begin_at, &req->timestamps.response_start_at);
    if (us < 0)
        us = 0;
    talas_metrics_add(&m->count.http_first_byte[route][talas_metrics_bucket((uint64_t)us)], 1);
    talas_metrics_add(&m->count.http_first_byte_us[route], (uint64_t)us);
}

void talas_metrics_http_register(h2o_pathconf_t *pathconf, const struct talas_worker_ctx *ctx)
{
    struct metrics_logger *self = (void *)h2o_create_logger(pathconf, sizeof(*self));

    self->super.log_access = on_request_done;
    self->ctx = ctx;
}
