/*
 * http_realtime.c - /api/ws/stats, POST /api/events and /api/analytics/...
 * (http_realtime.h).
 *
 * POST /api/events always needs the backend key ("Authorization: Bearer
 * KEY", auth.backend_key_file). A PlaylistShared it publishes also makes
 * its to_users editors of the playlist, when Talas stores one of that id
 * (state/state_playlists.h; the backend may share any playlist): a
 * refused quota answers 429 (playlists.max_editors) or 507
 * (storage.user_data_max) and publishes nothing; so does a cluster store
 * that cannot be reached (503 store_unavailable). Analytics are open when auth.required is false and
 * need the backend key when it is true: they are the platform backend's
 * view of its users. /api/ws/stats is open, like /api/stats. Analytics
 * read their store (state/state_analytics.h: LMDB, or PostgreSQL in
 * cluster mode, which answers later, and 503 store_unavailable when it
 * cannot be reached).
 *
 * Logs: refused backend keys, storage errors (a full map once a minute).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/cluster_bus.h"
#include "store/catalog.h"
#include "realtime/http_realtime.h"
#include "http/http_response.h"
#include "core/json.h"
#include "core/log.h"
#include "store/playback.h"
#include "state/state_analytics.h"
#include "state/state_playlists.h"
#include "realtime/ws_hub.h"

#define MAX_WORKERS 300

/* 1 when the request carries the backend key; else answers 401, returns 0. */
static int require_backend_key(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    char ip[64];

    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    if (h != NULL)
        log_warn("auth: 401 for %.*s %.*s from %s: wrong backend key", (int)req->method.len, req->method.base,
                 (int)req->path_normalized.len, req->path_normalized.base, talas_http_client_ip(req, ip));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"talas\""));
    talas_http_send_error(req, 401, "unauthorized", "a valid backend key is required");
    return 0;
}

static void send_json(h2o_req_t *req, struct talas_buf *body)
{
    talas_buf_append(body, "\n", 1);
    talas_http_send_json(req, 200, body);
    talas_buf_free(body);
}

static void stats_fields(struct talas_json *json, const struct talas_ipc_stats *s)
{
    talas_json_key(json, "total_connections");
    talas_json_uint(json, s->total_connections);
    talas_json_key(json, "current_connections");
    talas_json_uint(json, s->current_connections);
    talas_json_key(json, "messages_sent");
    talas_json_uint(json, s->messages_sent);
    talas_json_key(json, "messages_received");
    talas_json_uint(json, s->messages_received);
    talas_json_key(json, "events_broadcasted");
    talas_json_uint(json, s->events_broadcast);
    talas_json_key(json, "concurrent_listeners");
    talas_json_uint(json, s->open_streams);
}

int talas_realtime_ws_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_ipc_stats sum, *per;
    struct talas_buf body = {0};
    struct talas_json json;
    size_t n;

    if (talas_http_reject_unless_get(req))
        return 0;
    per = xcalloc(MAX_WORKERS, sizeof(*per));
    talas_ws_hub_stats(&sum, per, MAX_WORKERS, &n);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    stats_fields(&json, &sum);
    talas_json_key(&json, "workers");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < n; i++) {
        talas_json_object_begin(&json);
        talas_json_key(&json, "pid");
        talas_json_uint(&json, per[i].pid);
        stats_fields(&json, &per[i]);
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    /* the figures above are this node's; the cluster's are apart */
    if (ctx->cluster != NULL) {
        talas_json_key(&json, "cluster");
        talas_cluster_bus_json(ctx->cluster, &json);
    }
    talas_json_object_end(&json);
    free(per);
    send_json(req, &body);
    return 0;
}

/* Publishes P and answers; SHARED is how many editors its PlaylistShared
 * added, or -1 when Talas stores no playlist of that id. */
static void publish(h2o_req_t *req, const struct talas_ws_publish *p, long shared)
{
    struct talas_buf body = {0};
    struct talas_json json;

    talas_ws_hub_publish(p->target, p->to, p->json.data, p->json.len);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "published");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "target");
    talas_json_string(&json, p->target == TALAS_WS_TO_ALL    ? "all"
                             : p->target == TALAS_WS_TO_USER ? "user"
                                                             : "connection");
    if (p->playlist_id != NULL) {
        talas_json_key(&json, "editors_added");
        if (shared >= 0)
            talas_json_uint(&json, (uint64_t)shared);
        else
            talas_json_null(&json); /* Talas stores no playlist of that id */
    }
    talas_json_object_end(&json);
    send_json(req, &body);
}

/* A PlaylistShared waiting for the store; in the request's pool, it owns
 * the parsed event and cancels the share if the request goes first. */
struct share_request {
    h2o_req_t *req;
    struct talas_ws_publish p;
    struct talas_state_op *op;
};

static void share_dispose(void *data)
{
    struct share_request *s = data;

    if (s->op != NULL)
        talas_state_cancel(s->op);
    talas_ws_publish_free(&s->p);
}

/*
 * The store's part of a PlaylistShared from the backend: its to_users
 * become editors, then the event is published. A playlist Talas does not
 * store is the backend's own business: the event is still published. A
 * refusal or a failure of the store answers, and publishes nothing.
 */
static void on_shared(void *data, const struct talas_state_playlist_result *r)
{
    struct share_request *s = data;
    h2o_req_t *req = s->req;

    s->op = NULL;
    switch (r->outcome) {
    case TALAS_STATE_OK:
        publish(req, &s->p, (long)r->editors_added);
        break;
    case TALAS_STATE_NOT_FOUND:
        publish(req, &s->p, -1);
        break;
    case TALAS_STATE_QUOTA:
        talas_http_send_refusal(req, strcmp(r->refusal.limit, "storage.user_data_max") == 0 ? 507 : 429,
                                &r->refusal);
        break;
    case TALAS_STATE_REFUSED:
    case TALAS_STATE_FORBIDDEN:
        talas_http_send_error(req, 409, "playlist_refused", "%s", r->reason);
        break;
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(req, 503, "store_unavailable", "playlists unavailable: %s: the playlist was not "
                                                             "shared, nothing was published",
                              r->reason);
        break;
    case TALAS_STATE_FULL:
        talas_http_send_error(req, 507, "storage_full", "the storage is full: the playlist was not shared");
        break;
    default:
        talas_http_send_error(req, 500, "storage_error", "the playlist could not be shared");
        break;
    }
}

int talas_realtime_events(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct share_request *s;
    struct talas_state_op *op;
    struct talas_ws_publish p;
    char *error;

    if (!talas_http_method_is(req, "POST")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here",
                              (int)req->method.len, req->method.base);
        return 0;
    }
    if (!require_backend_key(ctx, req))
        return 0;
    if (talas_ws_publish_parse(req->entity.base, req->entity.len, &p, &error) != 0) {
        talas_http_send_error(req, 400, "invalid_event", "%s", error);
        free(error);
        return 0;
    }
    if (p.playlist_id == NULL) {
        publish(req, &p, -1);
        talas_ws_publish_free(&p);
        return 0;
    }
    s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), share_dispose);
    s->req = req;
    s->p = p;
    s->op = NULL;
    /* on_shared answers, now (LMDB) or later (the cluster store) */
    if ((op = talas_state_playlist_share(ctx, NULL, s->p.playlist_id, (const char *const *)s->p.to_users,
                                         s->p.to_user_count, on_shared, s)) != NULL)
        s->op = op;
    return 0;
}

/* The common preamble: GET, the backend key when auth is on, an id of 1 to
 * 128 bytes of UTF-8 copied into ID_R. -1 when answered. */
static int preamble(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len,
                    char id_r[TALAS_PLAYBACK_ID_MAX + 1])
{
    if (talas_http_reject_unless_get(req))
        return -1;
    if (ctx->conf->auth_required && !require_backend_key(ctx, req))
        return -1;
    if (len == 0 || len > TALAS_PLAYBACK_ID_MAX || !talas_utf8_valid(id, len) ||
        memchr(id, '\0', len) != NULL || memchr(id, '/', len) != NULL) {
        talas_http_send_error(req, 404, "not_found", "no such resource");
        return -1;
    }
    memcpy(id_r, id, len);
    id_r[len] = '\0';
    return 0;
}

/* An analytics read waiting for its store (state_analytics.h); in the
 * request's pool, it cancels the read if the request goes first. */
struct analytics_request {
    h2o_req_t *req;
    struct talas_state_analytics_op *op;
    char id[TALAS_PLAYBACK_ID_MAX + 1];
};

static void analytics_dispose(void *data)
{
    struct analytics_request *a = data;

    if (a->op != NULL)
        talas_state_analytics_cancel(a->op);
}

static struct analytics_request *analytics_request(h2o_req_t *req, const char *id)
{
    struct analytics_request *a = h2o_mem_alloc_shared(&req->pool, sizeof(*a), analytics_dispose);

    a->req = req;
    a->op = NULL;
    snprintf(a->id, sizeof(a->id), "%s", id);
    return a;
}

/* Answers a read that failed; 1 when it did. */
static int analytics_failed(h2o_req_t *req, const struct talas_state_analytics_result *r, const char *what)
{
    if (r->outcome == TALAS_STATE_OK)
        return 0;
    if (r->outcome == TALAS_STATE_UNAVAILABLE)
        talas_http_send_error(req, 503, "store_unavailable", "analytics unavailable: %s", r->reason);
    else
        talas_http_send_error(req, 500, "storage_error", "%s could not be read", what);
    return 1;
}

static void on_track_read(void *data, const struct talas_state_analytics_result *r)
{
    struct analytics_request *a = data;
    h2o_req_t *req = a->req;
    const char *track = a->id;
    struct talas_ipc_stats sum, *per;
    struct talas_buf body = {0};
    struct talas_json json;
    uint64_t current = 0;
    size_t n;

    a->op = NULL;
    if (analytics_failed(req, r, "the figures of this track"))
        return;
    per = xcalloc(MAX_WORKERS, sizeof(*per));
    talas_ws_hub_stats(&sum, per, MAX_WORKERS, &n);
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < per[i].track_count; k++)
            if (strcmp(per[i].tracks[k].id, track) == 0)
                current += per[i].tracks[k].listeners;
    free(per);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, track);
    talas_json_key(&json, "plays");
    talas_json_uint(&json, r->plays.plays);
    talas_json_key(&json, "listeners");
    talas_json_uint(&json, r->plays.listeners);
    talas_json_key(&json, "total_listening_time_ms");
    talas_json_uint(&json, r->plays.total_listening_ms);
    talas_json_key(&json, "current_listeners");
    talas_json_uint(&json, current);
    talas_json_object_end(&json);
    send_json(req, &body);
}

int talas_realtime_track_analytics(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                   size_t len)
{
    char track[TALAS_PLAYBACK_ID_MAX + 1];
    struct analytics_request *a;
    struct talas_state_analytics_op *op;
    struct talas_track t;
    MDB_txn *txn;
    int known;

    if (preamble(ctx, req, id, len, track) != 0)
        return 0;
    if (talas_storage_read_begin(ctx->storage, &txn) != 0) {
        talas_http_send_error(req, 500, "storage_error", "the storage could not be read");
        return 0;
    }
    known = talas_track_id_valid(track, strlen(track)) &&
            talas_catalog_resolve(ctx->storage, txn, track, &t) == 0 && t.error == NULL;
    if (known)
        memcpy(track, t.id, TALAS_TRACK_ID_LEN + 1); /* totals move with a former id (an alias) */
    mdb_txn_abort(txn);
    if (!known) {
        talas_http_send_error(req, 404, "not_found", "no such track");
        return 0;
    }
    a = analytics_request(req, track);
    /* on_track_read answers, now (LMDB) or later (the cluster store) */
    if ((op = talas_state_analytics_track(ctx, a->id, on_track_read, a)) != NULL)
        a->op = op;
    return 0;
}

static void session_json(const struct talas_listen_session *s, void *arg)
{
    struct talas_json *json = arg;

    talas_json_object_begin(json);
    talas_json_key(json, "track_id");
    talas_json_string(json, s->track_id);
    talas_json_key(json, "started_at_ms");
    talas_json_uint(json, s->started_ms);
    talas_json_key(json, "ended_at_ms");
    if (s->ended_ms != 0)
        talas_json_uint(json, s->ended_ms);
    else
        talas_json_null(json);
    talas_json_key(json, "position_ms");
    talas_json_uint(json, s->position_ms);
    talas_json_key(json, "total_played_ms");
    talas_json_uint(json, s->total_played_ms);
    talas_json_key(json, "quality");
    talas_json_string(json, s->quality);
    talas_json_key(json, "platform");
    talas_json_string(json, s->platform);
    talas_json_object_end(json);
}

static void on_sessions_read(void *data, const struct talas_state_analytics_result *r)
{
    struct analytics_request *a = data;
    h2o_req_t *req = a->req;
    struct talas_buf body = {0};
    struct talas_json json;

    a->op = NULL;
    if (analytics_failed(req, r, "the history"))
        return;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, a->id);
    talas_json_key(&json, "history");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < r->count; i++)
        session_json(&r->sessions[i], &json);
    talas_json_array_end(&json);
    talas_json_key(&json, "total");
    talas_json_uint(&json, r->total);
    talas_json_object_end(&json);
    send_json(req, &body);
}

int talas_realtime_user_analytics(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                  size_t len)
{
    char user[TALAS_PLAYBACK_ID_MAX + 1];
    size_t limit = 50;
    h2o_iovec_t v;
    struct analytics_request *a;
    struct talas_state_analytics_op *op;
    int rc;

    if (preamble(ctx, req, id, len, user) != 0)
        return 0;
    if ((rc = talas_http_query_param(req, "limit", &v)) != 0) {
        char *end;
        unsigned long n;
        errno = 0;
        n = rc == 1 && v.len > 0 && v.base[0] >= '0' && v.base[0] <= '9' ? strtoul(v.base, &end, 10) : 0;
        if (rc != 1 || errno != 0 || v.len == 0 || *end != '\0' || n < 1 || n > 1000) {
            talas_http_send_error(req, 400, "invalid_parameter", "limit: must be an integer from 1 to 1000");
            return 0;
        }
        limit = n;
    }
    a = analytics_request(req, user);
    if ((op = talas_state_analytics_sessions(ctx, a->id, limit, on_sessions_read, a)) != NULL)
        a->op = op;
    return 0;
}
