/*
 * http_versions.c - versions of a song over HTTP (http_versions.h).
 *
 * Entry points: talas_versions_song_serve (GET /api/songs/{id}),
 * talas_versions_link_serve (PUT /api/tracks/{id}/version-of),
 * talas_versions_track_members (http_api.c, GET /api/tracks/{id}).
 *
 * Songs are what the scanner grouped (store/song_versions.h), read from
 * this node's LMDB. Reading a song takes what reading a track takes:
 * with auth.required, any valid token or the backend key. An explicit
 * link is the backend's alone (the platform decides what is a version of
 * what): its key, else 401; a user's token gets 403. The link goes
 * through the state interface (state/state_versions.h); the track that
 * joined a song is published on /api/ws as TrackVersionAdded.
 *
 * Logs: refused credentials (warn, with the address, never the token),
 * storage errors.
 */
#include <string.h>

#include "core/json_read.h"
#include "core/log.h"
#include "http/http_authorize.h"
#include "http/http_response.h"
#include "http/http_versions.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "state/state_versions.h"

#define MAX_BODY 1024

/* 1 when the request may read the catalog; else it answered 401, 0. */
static int may_read(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    const char *reason = "no token";
    h2o_iovec_t token;
    char ip[64];

    if (!ctx->conf->auth_required)
        return 1;
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    if (talas_http_token(req, &token, &reason) == 1 &&
        talas_token_verify(ctx->token, token.base, token.len, NULL, 0, talas_http_client_ip(req, ip), NULL,
                           &reason) == TALAS_TOKEN_OK)
        return 1;
    talas_http_refuse(req, 401, "unauthorized", "a valid token or the backend key is required");
    return 0;
}

void talas_versions_track_members(struct talas_storage *st, MDB_txn *txn, const char *track,
                                  struct talas_json *json)
{
    char song[TALAS_SONG_ID_LEN + 1];
    struct talas_song s = {0};
    const char *label = NULL;
    int found = talas_track_song_get(st, txn, track, song) == 0 && talas_song_get(st, txn, song, &s) == 0;

    talas_json_key(json, "song_id");
    if (found)
        talas_json_string(json, song);
    else
        talas_json_null(json);
    talas_json_key(json, "versions");
    talas_json_array_begin(json);
    for (size_t i = 0; found && i < s.count; i++) {
        talas_json_string(json, s.members[i].track);
        if (strcmp(s.members[i].track, track) == 0)
            label = s.members[i].label;
    }
    talas_json_array_end(json);
    talas_json_key(json, "version");
    talas_json_string(json, label != NULL && label[0] != '\0' ? label : NULL);
    talas_song_free(&s);
}

int talas_versions_song_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char song_id[TALAS_SONG_ID_LEN + 1];
    struct talas_buf body = {0};
    struct talas_json json;
    struct talas_song s;
    MDB_txn *txn;
    int rc;

    if (talas_http_reject_unless_get(req) || !may_read(ctx, req))
        return 0;
    if (!talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "not_found", "no such song");
        return 0;
    }
    memcpy(song_id, id, len);
    song_id[len] = '\0';
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        log_error("versions: mdb_txn_begin() failed: %s", mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the song could not be read");
        return 0;
    }
    if ((rc = talas_song_get(ctx->storage, txn, song_id, &s)) != 0) {
        mdb_txn_abort(txn);
        if (rc != MDB_NOTFOUND)
            log_error("versions: reading a song failed: %s", rc == -1 ? "damaged record" : mdb_strerror(rc));
        talas_http_send_error(req, rc == MDB_NOTFOUND ? 404 : 500, rc == MDB_NOTFOUND ? "not_found" : "storage_error",
                              rc == MDB_NOTFOUND ? "no such song" : "the song could not be read");
        return 0;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "song_id");
    talas_json_string(&json, song_id);
    talas_json_key(&json, "versions");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < s.count; i++) {
        const struct talas_song_member *m = &s.members[i];
        struct talas_track t;
        int found = talas_catalog_get(ctx->storage, txn, m->track, &t) == 0 && t.error == NULL;
        talas_json_object_begin(&json);
        talas_json_key(&json, "position");
        talas_json_uint(&json, i);
        talas_json_key(&json, "track_id");
        talas_json_string(&json, m->track);
        talas_json_key(&json, "version");
        talas_json_string(&json, m->label[0] != '\0' ? m->label : NULL);
        talas_json_key(&json, "date_ms");
        talas_json_uint(&json, m->date_ms);
        talas_json_key(&json, "explicit");
        talas_json_bool(&json, m->explicit_link);
        talas_json_key(&json, "title");
        talas_json_string(&json, found ? t.title : NULL);
        talas_json_key(&json, "duration_ms");
        if (found)
            talas_json_uint(&json, t.duration_ms);
        else
            talas_json_null(&json);
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    mdb_txn_abort(txn);
    talas_song_free(&s);
    talas_http_send_json_doc(req, 200, &body);
    return 0;
}

struct link_body {
    char song[TALAS_SONG_ID_LEN + 1], track[TALAS_TRACK_ID_LEN + 1];
    const char *bad;
};

static int link_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct link_body *b = arg;
    char *dst;

    if (strcmp(key, "song_id") == 0)
        dst = b->song;
    else if (strcmp(key, "track_id") == 0)
        dst = b->track;
    else {
        b->bad = "unknown member (song_id or track_id)";
        return 1;
    }
    if (v->type != TALAS_JSON_STRING || !talas_track_id_valid(v->str, v->len)) {
        b->bad = dst == b->song ? "song_id: must be a song id (16 base64url characters)"
                                : "track_id: must be a track id (16 base64url characters)";
        return 1;
    }
    memcpy(dst, v->str, v->len + 1);
    return 0;
}

struct link_answer {
    h2o_req_t *req;
    const char *track;
};

static void on_linked(void *data, const struct talas_state_version_result *r)
{
    struct link_answer *a = data;
    struct talas_buf body = {0}, ev = {0};
    struct talas_json json;

    switch (r->outcome) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_http_send_error(a->req, 404, "not_found", "%s", r->reason);
        return;
    case TALAS_STATE_REFUSED:
        talas_http_send_error(a->req, 400, "invalid_parameter", "%s", r->reason);
        return;
    case TALAS_STATE_FULL:
        talas_http_send_error(a->req, 507, "storage_full", "the store is full");
        return;
    default:
        talas_http_send_error(a->req, 500, "storage_error", "the link could not be stored");
        return;
    }
    talas_ws_event_begin(&json, &ev, "TrackVersionAdded");
    talas_json_key(&json, "song_id");
    talas_json_string(&json, r->song);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, a->track);
    talas_json_key(&json, "version");
    talas_json_string(&json, r->label[0] != '\0' ? r->label : NULL);
    talas_json_key(&json, "explicit");
    talas_json_bool(&json, 1);
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);

    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, a->track);
    talas_json_key(&json, "song_id");
    talas_json_string(&json, r->song);
    talas_json_object_end(&json);
    talas_http_send_json_doc(a->req, 200, &body);
}

int talas_versions_link_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    char track[TALAS_TRACK_ID_LEN + 1];
    struct link_body b;
    struct link_answer a;
    h2o_iovec_t token;
    const char *reason;

    if (!talas_http_method_is(req, "PUT")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("PUT"));
        talas_http_send_error(req, 405, "method_not_allowed", "use PUT");
        return 0;
    }
    if (h == NULL || !talas_token_backend_key_ok(ctx->token, h->base, h->len)) {
        if (talas_http_token(req, &token, &reason) == 1)
            talas_http_refuse(req, 403, "forbidden", "only the backend key may link versions");
        else
            talas_http_refuse(req, 401, "unauthorized", "the backend key is required");
        return 0;
    }
    if (!talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "not_found", "no such track");
        return 0;
    }
    memcpy(track, id, len);
    track[len] = '\0';
    memset(&b, 0, sizeof(b));
    if (talas_http_read_json_body(req, MAX_BODY, 0, link_member, &b) != 0)
        return 0;
    if (b.bad != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%s", b.bad);
        return 0;
    }
    if ((b.song[0] != '\0') == (b.track[0] != '\0')) {
        talas_http_send_error(req, 400, "invalid_parameter", "give song_id or track_id, one of them");
        return 0;
    }
    a.req = req;
    a.track = track;
    talas_state_version_link(ctx, track, b.song[0] != '\0' ? b.song : NULL, b.track[0] != '\0' ? b.track : NULL,
                             on_linked, &a);
    return 0;
}
