/*
 * http_playlists.c - /api/playlists: GET /api/playlists/{id}, a
 * playlist's details (name, comment, public, created, changed), owner,
 * editors and tracks in order, with their titles from the catalog; DELETE
 * /api/playlists/{id}; GET /api/playlists?user=U, the playlists U may
 * list (owned, shared with U, public), without their tracks.
 *
 * Entry points: talas_playlists_get, talas_playlists_list (http_router.c).
 * Anyone may read a playlist: with auth.required, any valid token
 * (whoever it names; a token for a track will do) or the backend key;
 * without it, anyone. A list, which shows private playlists, takes with
 * auth.required the backend key or a token whose sub is the user.
 * A delete takes the backend key (any playlist) or a token whose sub owns
 * the playlist, and publishes a PlaylistUpdated event (action Deleted,
 * deleted true).
 * Changes go through /api/ws (ws_conn.c) and POST /api/events
 * (http_realtime.c). The playlist comes from its store
 * (state/state_playlists.h: LMDB, or PostgreSQL in cluster mode, then a
 * 503 store_unavailable while it cannot be reached), the titles from this
 * node's catalog.
 *
 * Logs: refused tokens (the reason and the address, never the token).
 */
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "http/http_authorize.h"
#include "http/http_playlists.h"
#include "http/http_response.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "store/catalog.h"
#include "state/state_playlists.h"
#include "store/playlists.h"

/* 1 when the request may read playlists; else it answered 401, 0. */
static int may_read(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    h2o_iovec_t token;
    const char *reason = "no token";
    char ip[64];
    int rc;

    if (!ctx->conf->auth_required)
        return 1;
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    if ((rc = talas_http_token(req, &token, &reason)) == 1 &&
        talas_token_verify(ctx->token, token.base, token.len, NULL, 0, talas_http_client_ip(req, ip), NULL,
                           &reason) == TALAS_TOKEN_OK)
        return 1;
    log_warn("auth: 401 for %.*s %.*s from %s: %s", (int)req->method.len, req->method.base,
             (int)req->path_normalized.len, req->path_normalized.base, talas_http_client_ip(req, ip), reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"talas\""));
    talas_http_send_error(req, 401, "unauthorized", "a valid token or the backend key is required");
    return 0;
}

/* Who asks for a change: 1 with *BACKEND_R set for the backend key, or
 * with SUB (TALAS_PLAYLIST_ID_MAX + 1 bytes) the sub of a valid token
 * that names one; else it answered 401 and returns 0. */
static int who_asks(const struct talas_worker_ctx *ctx, h2o_req_t *req, int *backend_r, char *sub)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    struct talas_token_claims claims;
    const char *reason = "no token";
    h2o_iovec_t token;
    char ip[64];

    *backend_r = 0;
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len)) {
        *backend_r = 1;
        return 1;
    }
    if (talas_http_token(req, &token, &reason) == 1 &&
        talas_token_verify(ctx->token, token.base, token.len, NULL, 0, talas_http_client_ip(req, ip), &claims,
                           &reason) == TALAS_TOKEN_OK) {
        if (claims.sub[0] != '\0' && strlen(claims.sub) <= TALAS_PLAYLIST_ID_MAX) {
            strcpy(sub, claims.sub);
            return 1;
        }
        reason = "the token names no user";
    }
    log_warn("auth: 401 for %.*s %.*s from %s: %s", (int)req->method.len, req->method.base,
             (int)req->path_normalized.len, req->path_normalized.base, talas_http_client_ip(req, ip), reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"talas\""));
    talas_http_send_error(req, 401, "unauthorized",
                          "the backend key or a token naming the playlist's owner is "
                          "required");
    return 0;
}

/* A request waiting for the store; lives in the request's pool, and
 * cancels the operation when the request goes first. */
struct get_request {
    h2o_req_t *req;
    const struct talas_worker_ctx *ctx;
    struct talas_state_op *op;
    char playlist[TALAS_PLAYLIST_ID_MAX + 1];
    char user[TALAS_PLAYLIST_ID_MAX + 1];
};

/* The details of P as JSON members. */
static void details_json(struct talas_json *json, const struct talas_state_playlist *p)
{
    char t[32];

    talas_json_key(json, "name");
    talas_json_string(json, p->name);
    talas_json_key(json, "comment");
    talas_json_string(json, p->comment);
    talas_json_key(json, "public");
    talas_json_bool(json, p->public_);
    talas_json_key(json, "owner");
    if (p->owner[0] != '\0')
        talas_json_string(json, p->owner);
    else
        talas_json_null(json); /* a playlist from before owners */
    /* null: a playlist from before times were kept */
    talas_json_key(json, "created");
    talas_token_format_time((time_t)(p->created_ms / 1000), t);
    talas_json_string(json, p->created_ms != 0 ? t : NULL);
    talas_json_key(json, "changed");
    talas_token_format_time((time_t)(p->changed_ms / 1000), t);
    talas_json_string(json, p->changed_ms != 0 ? t : NULL);
}

/* The answer of an outcome that is not OK. */
static void failed(h2o_req_t *req, const struct talas_state_playlist_result *r)
{
    switch (r->outcome) {
    case TALAS_STATE_NOT_FOUND:
        talas_http_send_error(req, 404, "not_found", "no such playlist");
        return;
    case TALAS_STATE_FORBIDDEN:
        talas_http_send_error(req, 403, "forbidden", "%s", r->reason);
        return;
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(req, 503, "store_unavailable", "playlists unavailable: %s", r->reason);
        return;
    default:
        talas_http_send_error(req, 500, "storage_error", "the playlist could not be read or changed");
        return;
    }
}

static void request_dispose(void *p)
{
    struct get_request *g = p;

    if (g->op != NULL)
        talas_state_cancel(g->op);
}

/* The store answered G with R: 1 when R is OK, else answers the failure
 * and returns 0. */
static int answered_ok(struct get_request *g, const struct talas_state_playlist_result *r)
{
    g->op = NULL;
    if (r->outcome != TALAS_STATE_OK) {
        failed(g->req, r);
        return 0;
    }
    return 1;
}

static void track_json(struct talas_json *json, struct talas_storage *st, MDB_txn *txn, const char *track,
                       size_t index)
{
    struct talas_track t;
    int found = txn != NULL && talas_track_id_valid(track, strlen(track)) &&
                talas_catalog_resolve(st, txn, track, &t) == 0 && t.error == NULL;

    talas_json_object_begin(json);
    talas_json_key(json, "position");
    talas_json_uint(json, index);
    /* a former id (an alias) is listed as the track's id now */
    talas_json_key(json, "track_id");
    talas_json_string(json, found ? t.id : track);
    talas_json_key(json, "title");
    talas_json_string(json, found ? t.title : NULL);
    talas_json_key(json, "artist");
    talas_json_string(json, found ? t.artist : NULL);
    talas_json_key(json, "duration_ms");
    if (found)
        talas_json_uint(json, t.duration_ms);
    else
        talas_json_null(json);
    talas_json_object_end(json);
}

static void on_read(void *data, const struct talas_state_playlist_result *r)
{
    struct get_request *g = data;
    const struct talas_state_playlist *p = r->playlist;
    struct talas_buf body = {0};
    struct talas_json json;
    MDB_txn *txn = NULL;

    if (!answered_ok(g, r))
        return;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, g->playlist);
    details_json(&json, p);
    talas_json_key(&json, "editors");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < p->editor_count; i++)
        talas_json_string(&json, p->editors[i]);
    talas_json_array_end(&json);
    /* titles from this node's catalog: a track it lacks has nulls */
    if (talas_storage_read_begin(g->ctx->storage, &txn) != 0)
        txn = NULL;
    talas_json_key(&json, "tracks");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < p->track_count; i++)
        track_json(&json, g->ctx->storage, txn, p->tracks[i], i);
    talas_json_array_end(&json);
    if (txn != NULL)
        mdb_txn_abort(txn);
    talas_json_object_end(&json);
    talas_http_send_json_doc(g->req, 200, &body);
}

static void on_deleted(void *data, const struct talas_state_playlist_result *r)
{
    struct get_request *g = data;
    struct talas_buf ev = {0}, body = {0};
    struct talas_json json;

    if (!answered_ok(g, r))
        return;
    talas_ws_event_begin(&json, &ev, "PlaylistUpdated");
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, g->playlist);
    talas_json_key(&json, "action");
    talas_json_string(&json, "Deleted");
    talas_json_key(&json, "deleted");
    talas_json_bool(&json, 1);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, g->user[0] != '\0' ? g->user : NULL);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, g->playlist);
    talas_json_key(&json, "deleted");
    talas_json_bool(&json, 1);
    talas_json_object_end(&json);
    talas_http_send_json_doc(g->req, 200, &body);
}

static void on_listed(void *data, const struct talas_state_playlist_result *r)
{
    struct get_request *g = data;
    struct talas_buf body = {0};
    struct talas_json json;

    if (!answered_ok(g, r))
        return;
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user");
    talas_json_string(&json, g->user);
    talas_json_key(&json, "playlists");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < r->playlist_count; i++) {
        talas_json_object_begin(&json);
        talas_json_key(&json, "playlist_id");
        talas_json_string(&json, r->playlists[i].id);
        details_json(&json, &r->playlists[i]);
        talas_json_key(&json, "track_count");
        talas_json_uint(&json, r->playlists[i].track_count);
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(g->req, 200, &body);
}

static struct get_request *request_new(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct get_request *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), request_dispose);

    memset(g, 0, sizeof(*g));
    g->req = req;
    g->ctx = ctx;
    return g;
}

int talas_playlists_list(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct get_request *g;
    struct talas_state_op *op;
    h2o_iovec_t user;

    char sub[TALAS_PLAYLIST_ID_MAX + 1] = "";
    int backend = 0;

    if (talas_http_reject_unless_get(req))
        return 0;
    /* a user's list shows their private playlists: with auth.required,
     * the backend key's or their own token's */
    if (ctx->conf->auth_required && !who_asks(ctx, req, &backend, sub))
        return 0;
    if (talas_http_query_param(req, "user", &user) != 1 || user.len == 0 ||
        user.len > TALAS_PLAYLIST_ID_MAX || !talas_utf8_valid(user.base, user.len) ||
        memchr(user.base, '\0', user.len) != NULL) {
        talas_http_send_error(req, 400, "bad_request", "user: a user id of 1 to 128 bytes is required");
        return 0;
    }
    if (ctx->conf->auth_required && !backend &&
        (strlen(sub) != user.len || memcmp(sub, user.base, user.len) != 0)) {
        talas_http_send_error(req, 403, "forbidden", "a token lists its own user's playlists only");
        return 0;
    }
    g = request_new(ctx, req);
    memcpy(g->user, user.base, user.len);
    g->user[user.len] = '\0';
    if ((op = talas_state_playlist_list(ctx, g->user, on_listed, g)) != NULL)
        g->op = op;
    return 0;
}

int talas_playlists_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct get_request *g;
    struct talas_state_op *op;
    int deleting = talas_http_method_is(req, "DELETE"), backend = 0;
    char sub[TALAS_PLAYLIST_ID_MAX + 1] = "";

    if (deleting) {
        if (!who_asks(ctx, req, &backend, sub))
            return 0;
    } else if (talas_http_reject_unless_get(req) || !may_read(ctx, req)) {
        return 0;
    }
    if (len == 0 || len > TALAS_PLAYLIST_ID_MAX || !talas_utf8_valid(id, len) ||
        memchr(id, '\0', len) != NULL || memchr(id, '/', len) != NULL) {
        talas_http_send_error(req, 404, "not_found", "no such playlist");
        return 0;
    }
    g = request_new(ctx, req);
    memcpy(g->playlist, id, len);
    g->playlist[len] = '\0';
    if (deleting) {
        strcpy(g->user, sub);
        if ((op = talas_state_playlist_delete(ctx, backend ? NULL : g->user, g->playlist, on_deleted, g)) !=
            NULL)
            g->op = op;
        return 0;
    }
    /* on_read answers, now (LMDB) or later (the cluster store) */
    if ((op = talas_state_playlist_get(ctx, g->playlist, on_read, g)) != NULL)
        g->op = op;
    return 0;
}
