/*
 * http_router.c - the one h2o handler of a worker; dispatches by path.
 *
 * Entry point: talas_router_register. Routing uses h2o's normalised path
 * (percent-decoded, dot-segments resolved), so "/stream/../x" never reaches
 * the stream handler, and every id is validated again by its handler.
 */
#include <string.h>

#include "http/http_api.h"
#include "http/http_response.h"
#include "http/http_router.h"
#include "http/http_hls.h"
#include "http/http_peaks.h"
#include "http/http_session.h"
#include "http/http_stream.h"
#include "realtime/http_realtime.h"
#include "http/http_transcode.h"
#include "realtime/ws_conn.h"

static int has_prefix(h2o_iovec_t path, const char *prefix, size_t *rest_r)
{
    size_t n = strlen(prefix);

    if (path.len < n || memcmp(path.base, prefix, n) != 0)
        return 0;
    *rest_r = n;
    return 1;
}

static int is_path(h2o_iovec_t path, const char *p)
{
    size_t n = strlen(p);

    return path.len == n && memcmp(path.base, p, n) == 0;
}

/* h2o's handler, with the context the routes get as their first argument */
struct router {
    h2o_handler_t super; /* must stay first: h2o hands it back */
    const struct talas_worker_ctx *ctx;
};

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    const struct talas_worker_ctx *ctx = ((struct router *)self)->ctx;
    h2o_iovec_t path = req->path_normalized;
    size_t at;

    if (has_prefix(path, "/stream/", &at)) {
        if (talas_transcode_requested(req))
            return talas_transcode_serve(ctx, req, path.base + at, path.len - at, 0);
        return talas_stream_original(req, path.base + at, path.len - at);
    }
    if (has_prefix(path, "/hls/", &at))
        return talas_hls_serve(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/preview/", &at))
        return talas_transcode_serve(ctx, req, path.base + at, path.len - at, 1);
    if (is_path(path, "/api/stats"))
        return talas_api_stats(req);
    if (is_path(path, "/api/tracks") || is_path(path, "/api/tracks/"))
        return talas_api_tracks(req);
    if (has_prefix(path, "/api/tracks/", &at) && path.len - at > 6 &&
        memcmp(path.base + path.len - 6, "/peaks", 6) == 0)
        return talas_peaks_serve(ctx, req, path.base + at, path.len - at - 6);
    if (has_prefix(path, "/api/tracks/", &at))
        return talas_api_track(req, path.base + at, path.len - at);
    if (is_path(path, "/api/stream-url"))
        return talas_api_stream_url(req);
    if (is_path(path, "/api/health"))
        return talas_api_health(req);
    if (is_path(path, "/api/streaming/session"))
        return talas_session_api_create(req);
    if (has_prefix(path, "/api/streaming/session/", &at))
        return talas_session_api_session(req, path.base + at, path.len - at);
    if (is_path(path, "/api/streaming/stats"))
        return talas_session_api_stats(req);
    if (is_path(path, "/api/ws"))
        return talas_ws_serve(req);
    if (is_path(path, "/api/ws/stats"))
        return talas_realtime_ws_stats(req);
    if (is_path(path, "/api/events"))
        return talas_realtime_events(req);
    if (has_prefix(path, "/api/analytics/tracks/", &at))
        return talas_realtime_track_analytics(req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/analytics/users/", &at))
        return talas_realtime_user_analytics(req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/playlists/", &at))
        return talas_realtime_playlist(req, path.base + at, path.len - at);
    talas_http_send_error(req, 404, "not_found", "no such resource");
    return 0;
}

void talas_router_register(h2o_pathconf_t *pathconf, const struct talas_worker_ctx *ctx)
{
    struct router *r = (void *)h2o_create_handler(pathconf, sizeof(*r));

    r->super.on_req = on_req;
    r->ctx = ctx;
}
