/*
 * http_playlists.c - GET /api/playlists/{id}: a playlist's owner, its
 * editors and its tracks in order, with their titles from the catalog.
 *
 * Entry point: talas_playlists_get (http_router.c). Anyone may read a
 * playlist: with auth.required, any valid token (whoever it names; a
 * token for a track will do) or the backend key; without it, anyone.
 * Changes go through /api/ws (ws_conn.c) and POST /api/events
 * (http_realtime.c). One LMDB read transaction per request.
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

struct reading {
    struct talas_storage *storage;
    MDB_txn *txn;
    struct talas_json *json;
    int in; /* 0 before the editors, 1 in them, 2 in the tracks */
};

static void to_section(struct reading *rd, int section)
{
    while (rd->in < section) {
        if (rd->in == 1)
            talas_json_array_end(rd->json);
        rd->in++;
        talas_json_key(rd->json, rd->in == 1 ? "editors" : "tracks");
        talas_json_array_begin(rd->json);
    }
}

static void on_owner(const char *owner, void *arg)
{
    struct reading *rd = arg;

    talas_json_key(rd->json, "owner");
    if (owner[0] != '\0')
        talas_json_string(rd->json, owner);
    else
        talas_json_null(rd->json); /* a playlist from before owners */
}

static void on_editor(const char *user, size_t index, void *arg)
{
    struct reading *rd = arg;

    (void)index;
    to_section(rd, 1);
    talas_json_string(rd->json, user);
}

static void on_track(const char *track, size_t index, void *arg)
{
    struct reading *rd = arg;
    struct talas_track t;
    int found = talas_track_id_valid(track, strlen(track)) &&
                talas_catalog_resolve(rd->storage, rd->txn, track, &t) == 0 && t.error == NULL;

    to_section(rd, 2);
    talas_json_object_begin(rd->json);
    talas_json_key(rd->json, "position");
    talas_json_uint(rd->json, index);
    /* a former id (an alias) is listed as the track's id now */
    talas_json_key(rd->json, "track_id");
    talas_json_string(rd->json, found ? t.id : track);
    talas_json_key(rd->json, "title");
    talas_json_string(rd->json, found ? t.title : NULL);
    talas_json_key(rd->json, "artist");
    talas_json_string(rd->json, found ? t.artist : NULL);
    talas_json_key(rd->json, "duration_ms");
    if (found)
        talas_json_uint(rd->json, t.duration_ms);
    else
        talas_json_null(rd->json);
    talas_json_object_end(rd->json);
}

int talas_playlists_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    static const struct talas_playlist_reader reader = {on_owner, on_editor, on_track};
    char playlist[TALAS_PLAYLIST_ID_MAX + 1];
    struct talas_buf body = {0};
    struct talas_json json;
    struct reading rd = {ctx->storage, NULL, &json, 0};
    int rc;

    if (talas_http_reject_unless_get(req) || !may_read(ctx, req))
        return 0;
    if (len == 0 || len > TALAS_PLAYLIST_ID_MAX || !talas_utf8_valid(id, len) ||
        memchr(id, '\0', len) != NULL || memchr(id, '/', len) != NULL) {
        talas_http_send_error(req, 404, "not_found", "no such playlist");
        return 0;
    }
    memcpy(playlist, id, len);
    playlist[len] = '\0';
    if (talas_storage_read_begin(ctx->storage, &rd.txn) != 0) {
        talas_http_send_error(req, 500, "storage_error", "the storage could not be read");
        return 0;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "playlist_id");
    talas_json_string(&json, playlist);
    rc = talas_playlist_get(ctx->storage, rd.txn, playlist, &reader, &rd);
    mdb_txn_abort(rd.txn);
    if (rc != 0) {
        talas_buf_free(&body);
        if (rc == MDB_NOTFOUND)
            talas_http_send_error(req, 404, "not_found", "no such playlist");
        else
            talas_http_send_error(req, 500, "storage_error", "the playlist could not be read");
        return 0;
    }
    to_section(&rd, 2);
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    talas_buf_append(&body, "\n", 1);
    talas_http_send_json(req, 200, &body);
    talas_buf_free(&body);
    return 0;
}
