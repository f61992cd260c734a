/*
 * http_router.c - the one h2o handler of a worker; dispatches by path.
 *
 * Entry points: talas_router_register, talas_router_dispatch,
 * talas_router_route (the route label of /metrics, beside the dispatch it
 * must agree with). Every route
 * function gets the worker's context (worker_ctx.h) as its first argument:
 * the router's h2o handler holds the pointer. Routing uses h2o's normalised path
 * (percent-decoded, dot-segments resolved), so "/stream/../x" never reaches
 * the stream handler, and every id is validated again by its handler.
 */
#include <string.h>

#include "http/http_api.h"
#include "http/http_comments.h"
#include "http/http_versions.h"
#include "http/http_response.h"
#include "http/http_router.h"
#include "http/http_hls.h"
#include "http/http_metrics.h"
#include "http/http_peaks.h"
#include "http/http_playlists.h"
#include "http/http_session.h"
#include "http/http_shares.h"
#include "http/http_rooms.h"
#include "http/http_stream.h"
#include "subsonic/http_subsonic.h"
#include "http/http_users.h"
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

/* h2o's handler, with the context every route gets as its first argument */
struct router {
    h2o_handler_t super; /* must stay first: h2o hands it back */
    const struct talas_worker_ctx *ctx;
};

int talas_router_dispatch(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    size_t at;

    if (has_prefix(path, "/stream/", &at)) {
        if (talas_transcode_requested(req))
            return talas_transcode_serve(ctx, req, path.base + at, path.len - at, 0);
        return talas_stream_original(ctx, req, path.base + at, path.len - at);
    }
    if (has_prefix(path, "/hls/", &at))
        return talas_hls_serve(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/preview/", &at))
        return talas_transcode_serve(ctx, req, path.base + at, path.len - at, 1);
    if (is_path(path, "/api/stats"))
        return talas_api_stats(ctx, req);
    if (is_path(path, "/api/tracks") || is_path(path, "/api/tracks/"))
        return talas_api_tracks(ctx, req);
    if (has_prefix(path, "/api/tracks/", &at) && path.len - at > 6 &&
        memcmp(path.base + path.len - 6, "/peaks", 6) == 0)
        return talas_peaks_serve(ctx, req, path.base + at, path.len - at - 6);
    if (has_prefix(path, "/api/tracks/", &at) && path.len - at > 9 &&
        memcmp(path.base + path.len - 9, "/comments", 9) == 0)
        return talas_comments_track_serve(ctx, req, path.base + at, path.len - at - 9);
    if (has_prefix(path, "/api/tracks/", &at) && path.len - at > 11 &&
        memcmp(path.base + path.len - 11, "/version-of", 11) == 0)
        return talas_versions_link_serve(ctx, req, path.base + at, path.len - at - 11);
    if (has_prefix(path, "/api/tracks/", &at))
        return talas_api_track(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/songs/", &at))
        return talas_versions_song_serve(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/comments/", &at))
        return talas_comments_serve(ctx, req, path.base + at, path.len - at);
    if (is_path(path, "/api/shares") || is_path(path, "/api/shares/"))
        return talas_shares_api(ctx, req);
    if (has_prefix(path, "/api/shares/", &at))
        return talas_shares_api_one(ctx, req, path.base + at, path.len - at);
    if (is_path(path, "/api/rooms") || is_path(path, "/api/rooms/"))
        return talas_rooms_api(ctx, req);
    if (has_prefix(path, "/api/rooms/", &at))
        return talas_rooms_api_one(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/s/", &at))
        return talas_shares_page(ctx, req, path.base + at, path.len - at);
    if (is_path(path, "/api/stream-url"))
        return talas_api_stream_url(ctx, req);
    if (is_path(path, "/api/profiles"))
        return talas_api_profiles(ctx, req);
    if (is_path(path, "/api/health"))
        return talas_api_health(ctx, req);
    if (is_path(path, "/api/streaming/session"))
        return talas_session_api_create(ctx, req);
    if (has_prefix(path, "/api/streaming/session/", &at))
        return talas_session_api_session(ctx, req, path.base + at, path.len - at);
    if (is_path(path, "/api/streaming/stats"))
        return talas_session_api_stats(ctx, req);
    if (is_path(path, "/api/ws"))
        return talas_ws_serve(ctx, req);
    if (is_path(path, "/api/ws/stats"))
        return talas_realtime_ws_stats(ctx, req);
    if (is_path(path, "/api/events"))
        return talas_realtime_events(ctx, req);
    if (has_prefix(path, "/api/analytics/tracks/", &at))
        return talas_realtime_track_analytics(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/analytics/users/", &at))
        return talas_realtime_user_analytics(ctx, req, path.base + at, path.len - at);
    if (has_prefix(path, "/api/users/", &at) && path.len - at >= 9 &&
        memcmp(path.base + path.len - 9, "/settings", 9) == 0)
        return talas_users_settings_serve(ctx, req, path.base + at, path.len - at - 9);
    if (is_path(path, "/api/playlists"))
        return talas_playlists_list(ctx, req);
    if (has_prefix(path, "/api/users/", &at) && path.len - at >= 6 &&
        memcmp(path.base + path.len - 6, "/likes", 6) == 0)
        return talas_users_likes_serve(ctx, req, path.base + at, path.len - at - 6);
    if (has_prefix(path, "/api/playlists/", &at))
        return talas_playlists_get(ctx, req, path.base + at, path.len - at);
    if (is_path(path, "/metrics"))
        return talas_metrics_serve(ctx, req);
    if (has_prefix(path, "/rest/", &at))
        return talas_subsonic_serve(ctx, req);
    talas_http_send_error(req, 404, "not_found", "no such resource");
    return 0;
}

enum talas_metrics_route talas_router_route(h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    size_t at;

    if (has_prefix(path, "/stream/", &at))
        return talas_transcode_requested(req) ? TALAS_ROUTE_TRANSCODE : TALAS_ROUTE_STREAM;
    if (has_prefix(path, "/hls/", &at))
        return TALAS_ROUTE_HLS;
    if (has_prefix(path, "/preview/", &at))
        return TALAS_ROUTE_PREVIEW;
    if (has_prefix(path, "/api/tracks/", &at) && path.len - at > 6 &&
        memcmp(path.base + path.len - 6, "/peaks", 6) == 0)
        return TALAS_ROUTE_PEAKS;
    if (is_path(path, "/api/ws"))
        return TALAS_ROUTE_WS;
    if (is_path(path, "/api") || has_prefix(path, "/api/", &at))
        return TALAS_ROUTE_API;
    return TALAS_ROUTE_OTHER;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return talas_router_dispatch(((struct router *)self)->ctx, req);
}

void talas_router_register(h2o_pathconf_t *pathconf, const struct talas_worker_ctx *ctx)
{
    struct router *r = (void *)h2o_create_handler(pathconf, sizeof(*r));

    r->super.on_req = on_req;
    r->ctx = ctx;
}
