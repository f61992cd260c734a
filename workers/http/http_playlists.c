/*
 * http_playlists.c - GET /api/playlists/{id}: a playlist's owner, its
 * editors and its tracks in order, with their titles from the catalog.
 *
 * Entry point: talas_playlists_get (http_router.c). Anyone may read a
 * playlist: with auth.required, any valid token (whoever it names; a
 * token for a track will do) or the backend key; without it, anyone.
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

/* A read waiting for the store; lives in the request's pool, and cancels
 * the read when the request goes first. */
struct get_request {
    h2o_req_t *req;
    const struct talas_worker_ctx *ctx;
    struct talas_state_op *op;
    char playlist[TALAS_PLAYLIST_ID_MAX + 1];
};

static void request_dispose(void *p)
{
    struct get_request *g = p;

    if (g->op != NULL)
        talas_state_cancel(g->op);
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

    g->op = NULL;
    switch (r->outcome) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_http_send_error(g->req, 404, "not_found", "no such playlist");
        return;
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(g->req, 503, "store_unavailable", "playlists unavailable: %s", r->reason);
        return;
    default:
        talas_http_send_error(g->req, 500, "storage_error", "the playlist could not be read");
        return;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, g->playlist);
    talas_json_key(&json, "owner");
    if (p->owner[0] != '\0')
        talas_json_string(&json, p->owner);
    else
        talas_json_null(&json); /* a playlist from before owners */
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
    talas_buf_append(&body, "\n", 1);
    talas_http_send_json(g->req, 200, &body);
    talas_buf_free(&body);
}

int talas_playlists_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct get_request *g;
    struct talas_state_op *op;

    if (talas_http_reject_unless_get(req) || !may_read(ctx, req))
        return 0;
    if (len == 0 || len > TALAS_PLAYLIST_ID_MAX || !talas_utf8_valid(id, len) ||
        memchr(id, '\0', len) != NULL || memchr(id, '/', len) != NULL) {
        talas_http_send_error(req, 404, "not_found", "no such playlist");
        return 0;
    }
    g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), request_dispose);
    memset(g, 0, sizeof(*g));
    g->req = req;
    g->ctx = ctx;
    memcpy(g->playlist, id, len);
    g->playlist[len] = '\0';
    /* on_read answers, now (LMDB) or later (the cluster store) */
    if ((op = talas_state_playlist_get(ctx, g->playlist, on_read, g)) != NULL)
        g->op = op;
    return 0;
}
