/*
 * http_comments.c - timed comments over HTTP (http_comments.h).
 *
 * Entry points: talas_comments_track_serve (GET, POST
 * /api/tracks/{id}/comments), talas_comments_serve (PATCH, DELETE
 * /api/comments/{id}); http_router.c.
 *
 * Who may: reading takes what reading a track takes (with auth.required,
 * any valid token or the backend key). Posting takes a user: a valid
 * token with a sub, who becomes the author (a media token, one that names
 * a track, only for that track's comments). Editing and deleting: the
 * author's token (not a media token), or the backend key for anyone's.
 * A share token (http_shares.h) may read and post on its link's tracks
 * when the link grants comments, as the user "share:LINK:LISTENER".
 *
 * A body is checked here, before any store sees it: valid UTF-8 without
 * NUL (the JSON reader refuses both), not empty nor only white space, at
 * most comments.max_body bytes; at_ms within the track (0 ..
 * duration_ms). It is stored byte for byte and written back JSON-escaped.
 * A track takes at most comments.max_per_track comments, replies included
 * (429 quota_exceeded naming the key): counted in the store's write
 * transaction, so racing workers and nodes cannot pass it.
 * The store is state/state_comments.h (LMDB, or PostgreSQL in cluster
 * mode). A listing holds the comments of every version of the track's
 * song, each with its track_id and version, as threads by at_ms (replies
 * by their creation). Each change is published on /api/ws as
 * TrackCommented, to the connections subscribed to it (a track_id filter
 * picks one track, a song_id filter every version of a song).
 *
 * Logs: refused credentials (warn, with the address, never the token).
 */
#include <stdlib.h>
#include <string.h>

#include "core/json_read.h"
#include "core/log.h"
#include "http/http_authorize.h"
#include "http/http_comments.h"
#include "http/http_response.h"
#include "http/http_shares.h"
#include "realtime/ws_hub.h"
#include "realtime/ws_protocol.h"
#include "state/state_comments.h"
#include "store/catalog.h"
#include "store/quota.h"
#include "store/song_versions.h"

#define USER_MAX 127

enum caller { CALLER_ANYONE, CALLER_BACKEND, CALLER_USER };

/*
 * Who is asking. NEED_USER: a user's token is required (the backend key
 * will not do); TRACK: the track a media token may name (NULL: none may).
 * Without NEED_USER and without auth.required, a request with no
 * credentials is CALLER_ANYONE. Returns the caller with the token's sub in
 * SUB_R (USER_MAX + 1 bytes), or -1 when it answered.
 */
static int caller(const struct talas_worker_ctx *ctx, h2o_req_t *req, int need_user, const char *track,
                  char *sub_r)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    struct talas_token_claims claims;
    enum talas_token_result r;
    const char *reason = NULL;
    h2o_iovec_t token;
    char ip[64];
    int found;

    sub_r[0] = '\0';
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len)) {
        if (need_user) {
            talas_http_refuse(req, 403, "forbidden", "a comment is a user's: post it with that user's token");
            return -1;
        }
        return CALLER_BACKEND;
    }
    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (found == 0) {
        if (!need_user && !ctx->conf->auth_required)
            return CALLER_ANYONE;
        talas_http_refuse(req, 401, "unauthorized", need_user ? "a user's token is required" :
                                                     "a valid token or the backend key is required");
        return -1;
    }
    r = talas_token_verify(ctx->token, token.base, token.len, NULL, TALAS_TOKEN_SHARE,
                           talas_http_client_ip(req, ip), &claims, &reason);
    if (r == TALAS_TOKEN_FORBIDDEN) {
        talas_http_refuse(req, 403, "forbidden", reason);
        return -1;
    }
    if (r != TALAS_TOKEN_OK) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (r == TALAS_TOKEN_OK && claims.share[0] != '\0') {
        /* a private link's listener: on its link's tracks, when it grants
         * comments, as the user "share:LINK:LISTENER" */
        if (track == NULL) {
            talas_http_refuse(req, 403, "forbidden", "a share token may only read and post comments on its link's tracks");
            return -1;
        }
        if (talas_shares_check(ctx, req, &claims, track, TALAS_SHARE_USE_COMMENT) != 0)
            return -1;
        snprintf(sub_r, USER_MAX + 1, "share:%s:%s", claims.share, claims.listener);
        return CALLER_USER;
    }
    if (claims.track[0] != '\0' && (track == NULL || strcmp(claims.track, track) != 0)) {
        talas_http_refuse(req, 403, "forbidden", "a media token names another track: use a user's token");
        return -1;
    }
    if (need_user && (claims.sub[0] == '\0' || strlen(claims.sub) > USER_MAX)) {
        talas_http_refuse(req, 403, "forbidden", "the token names no user (sub)");
        return -1;
    }
    strcpy(sub_r, claims.sub);
    return CALLER_USER;
}

/* ------------------------------------------------------------ bodies */

struct body {
    int has_at, has_body, has_parent;
    int64_t at_ms;
    char *text; /* in the request's pool */
    size_t text_len;
    char parent[TALAS_COMMENT_ID_LEN + 1];
    const char *bad_field, *bad_reason;
    char field[72];
    h2o_mem_pool_t *pool;
    int patch;
};

static int body_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct body *b = arg;

    if (strcmp(key, "body") == 0) {
        if (v->type != TALAS_JSON_STRING) {
            b->bad_field = "body";
            b->bad_reason = "must be a string";
            return 1;
        }
        b->text = h2o_mem_alloc_pool(b->pool, v->len + 1);
        memcpy(b->text, v->str, v->len + 1);
        b->text_len = v->len;
        b->has_body = 1;
        return 0;
    }
    if (!b->patch && strcmp(key, "at_ms") == 0) {
        if (v->type != TALAS_JSON_INTEGER) {
            b->bad_field = "at_ms";
            b->bad_reason = "must be an integer (milliseconds from the start of the track)";
            return 1;
        }
        b->at_ms = v->num;
        b->has_at = 1;
        return 0;
    }
    if (!b->patch && strcmp(key, "parent_id") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || v->len != TALAS_COMMENT_ID_LEN ||
            !talas_track_id_valid(v->str, v->len)) {
            b->bad_field = "parent_id";
            b->bad_reason = "must be a comment id";
            return 1;
        }
        memcpy(b->parent, v->str, v->len + 1);
        b->has_parent = 1;
        return 0;
    }
    snprintf(b->field, sizeof(b->field), "%.64s", key);
    b->bad_field = b->field;
    b->bad_reason = b->patch ? "not a member (body)" : "not a member (at_ms, body, parent_id)";
    return 1;
}

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Reads and checks the request's body into B; -1 when it answered. */
static int read_body(const struct talas_worker_ctx *ctx, h2o_req_t *req, struct body *b, int patch)
{
    size_t max = (size_t)ctx->conf->comments_max_body;

    memset(b, 0, sizeof(*b));
    b->pool = &req->pool;
    b->patch = patch;
    /* escapes make a body up to six times its size, plus the members */
    if (req->entity.len > max * 6 + 1024) {
        talas_http_send_error(req, 413, "comment_too_long", "body: at most %zu bytes (comments.max_body)", max);
        return -1;
    }
    if (talas_http_read_json_body(req, SIZE_MAX, 0, body_member, b) != 0)
        return -1;
    if (b->bad_field != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%s: %s", b->bad_field, b->bad_reason);
        return -1;
    }
    if (!b->has_body || blank(b->text, b->text_len)) {
        talas_http_send_error(req, 400, "empty_body", "body: required, and not only white space");
        return -1;
    }
    if (b->text_len > max) {
        talas_http_send_error(req, 413, "comment_too_long", "body: at most %zu bytes (comments.max_body)", max);
        return -1;
    }
    if (!patch && !b->has_at) {
        talas_http_send_error(req, 400, "invalid_parameter", "at_ms: required (milliseconds from the start)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ output */

static void comment_members(struct talas_json *json, const struct talas_comment *c)
{
    talas_json_key(json, "comment_id");
    talas_json_string(json, c->id);
    talas_json_key(json, "track_id");
    talas_json_string(json, c->track);
    talas_json_key(json, "user_id");
    talas_json_string(json, c->user);
    talas_json_key(json, "parent_id");
    talas_json_string(json, c->parent[0] != '\0' ? c->parent : NULL);
    talas_json_key(json, "at_ms");
    talas_json_int(json, c->at_ms);
    talas_json_key(json, "body");
    talas_json_string_n(json, c->body, c->body_len);
    talas_json_key(json, "created_ms");
    talas_json_uint(json, c->created_ms);
    talas_json_key(json, "edited_ms");
    if (c->edited_ms != 0)
        talas_json_uint(json, c->edited_ms);
    else
        talas_json_null(json);
}

/* TrackCommented to the connections subscribed to it. The song_id lets a
 * player follow every version of what it plays with one subscription (a
 * filter matches one value); it comes right after track_id, among the
 * first string members that filters see. */
static void publish(const struct talas_worker_ctx *ctx, const struct talas_comment *c, const char *action)
{
    char song[TALAS_SONG_ID_LEN + 1] = "";
    struct talas_buf ev = {0};
    struct talas_json json;
    MDB_txn *txn;

    if (talas_storage_read_begin(ctx->storage, &txn) == 0) {
        if (talas_track_song_get(ctx->storage, txn, c->track, song) != 0)
            song[0] = '\0';
        mdb_txn_abort(txn);
    }
    talas_ws_event_begin(&json, &ev, "TrackCommented");
    talas_json_key(&json, "track_id");
    talas_json_string(&json, c->track);
    talas_json_key(&json, "song_id");
    talas_json_string(&json, song[0] != '\0' ? song : NULL);
    talas_json_key(&json, "comment_id");
    talas_json_string(&json, c->id);
    talas_json_key(&json, "action");
    talas_json_string(&json, action);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, c->user);
    talas_json_key(&json, "at_ms");
    talas_json_int(&json, c->at_ms);
    talas_json_key(&json, "parent_id");
    talas_json_string(&json, c->parent[0] != '\0' ? c->parent : NULL);
    if (strcmp(action, "deleted") != 0) {
        talas_json_key(&json, "body");
        talas_json_string_n(&json, c->body, c->body_len);
    }
    talas_json_object_end(&json);
    talas_ws_hub_publish(TALAS_WS_TO_ALL, NULL, ev.data, ev.len);
    talas_buf_free(&ev);
}

/* An answer of the store that is not OK; 1 when it answered. */
static int store_error(const struct talas_worker_ctx *ctx, h2o_req_t *req,
                       const struct talas_state_comment_result *r)
{
    struct talas_quota_refusal full;

    switch (r->outcome) {
    case TALAS_STATE_OK:
        return 0;
    case TALAS_STATE_QUOTA:
        full.limit = "comments.max_per_track";
        full.max = (uint64_t)ctx->conf->comments_max_per_track;
        talas_http_send_refusal(req, 429, &full);
        break;
    case TALAS_STATE_REFUSED:
        talas_http_send_error(req, 400, r->reason == talas_comment_parent_elsewhere ? "parent_elsewhere"
                                                                                    : "unknown_parent",
                              "%s", r->reason);
        break;
    case TALAS_STATE_FORBIDDEN:
        talas_http_send_error(req, 403, "forbidden", "%s", r->reason);
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_http_send_error(req, 404, "not_found", "%s", r->reason);
        break;
    case TALAS_STATE_UNAVAILABLE:
        talas_http_send_error(req, 503, "store_unavailable", "comments unavailable: %s", r->reason);
        break;
    case TALAS_STATE_FULL:
        talas_http_send_error(req, 507, "storage_full", "the store is full");
        break;
    default:
        talas_http_send_error(req, 500, "storage_error", "the comments could not be stored or read");
        break;
    }
    return 1;
}

/* ------------------------------------------------------------ requests */

/* A request waiting for the store; in the request's pool, cancelling the
 * operation when the request goes first. */
struct pending {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_state_comment_op *op;
    const char *action;
    /* GET: the versions listed, their labels */
    char (*tracks)[TALAS_TRACK_ID_LEN + 1];
    char (*labels)[16];
    size_t n;
    char song[TALAS_SONG_ID_LEN + 1];
};

static void pending_dispose(void *p)
{
    struct pending *pd = p;

    if (pd->op != NULL)
        talas_state_comment_cancel(pd->op);
}

static struct pending *pending_new(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct pending *pd = h2o_mem_alloc_shared(&req->pool, sizeof(*pd), pending_dispose);

    memset(pd, 0, sizeof(*pd));
    pd->ctx = ctx;
    pd->req = req;
    return pd;
}

static void on_changed(void *data, const struct talas_state_comment_result *r)
{
    struct pending *pd = data;
    struct talas_buf body = {0};
    struct talas_json json;

    pd->op = NULL;
    if (store_error(pd->ctx, pd->req, r))
        return;
    publish(pd->ctx, r->comment, pd->action);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    comment_members(&json, r->comment);
    if (strcmp(pd->action, "deleted") == 0) {
        talas_json_key(&json, "deleted");
        talas_json_bool(&json, 1);
    }
    talas_json_object_end(&json);
    talas_http_send_json_doc(pd->req, strcmp(pd->action, "created") == 0 ? 201 : 200, &body);
}

/* The creation time of a new comment: the wall clock, but after the last
 * one this worker stamped. The store moves it after the track's latest
 * comment when another worker or node stamped that one in the same
 * millisecond, and the response gives the time stored. */
static uint64_t creation_stamp(void)
{
    static uint64_t last;
    uint64_t now = talas_wall_ms();

    last = now > last ? now : last + 1;
    return last;
}

static int by_time(const void *pa, const void *pb)
{
    const struct talas_comment *a = *(const struct talas_comment *const *)pa,
                               *b = *(const struct talas_comment *const *)pb;

    if (a->at_ms != b->at_ms)
        return a->at_ms < b->at_ms ? -1 : 1;
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int by_created(const void *pa, const void *pb)
{
    const struct talas_comment *a = *(const struct talas_comment *const *)pa,
                               *b = *(const struct talas_comment *const *)pb;

    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

static const char *label_of(const struct pending *pd, const char *track)
{
    for (size_t i = 0; i < pd->n; i++)
        if (strcmp(pd->tracks[i], track) == 0)
            return pd->labels[i][0] != '\0' ? pd->labels[i] : NULL;
    return NULL;
}

static void comment_json(struct talas_json *json, const struct pending *pd, const struct talas_comment *c)
{
    talas_json_object_begin(json);
    comment_members(json, c);
    talas_json_key(json, "version");
    talas_json_string(json, label_of(pd, c->track));
}

static void on_listed(void *data, const struct talas_state_comment_result *r)
{
    struct pending *pd = data;
    const struct talas_comment **roots, **replies;
    size_t nroots = 0, nreplies = 0;
    struct talas_buf body = {0};
    struct talas_json json;

    pd->op = NULL;
    if (store_error(pd->ctx, pd->req, r))
        return;
    roots = xcalloc(r->count + 1, sizeof(*roots));
    replies = xcalloc(r->count + 1, sizeof(*replies));
    for (size_t i = 0; i < r->count; i++) {
        if (r->comments[i].parent[0] == '\0')
            roots[nroots++] = &r->comments[i];
        else
            replies[nreplies++] = &r->comments[i];
    }
    qsort(roots, nroots, sizeof(*roots), by_time);
    qsort(replies, nreplies, sizeof(*replies), by_created);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "track_id");
    talas_json_string(&json, pd->tracks[0]);
    talas_json_key(&json, "song_id");
    talas_json_string(&json, pd->song[0] != '\0' ? pd->song : NULL);
    talas_json_key(&json, "count");
    talas_json_uint(&json, r->count);
    talas_json_key(&json, "threads");
    talas_json_array_begin(&json);
    for (size_t i = 0; i < nroots; i++) {
        comment_json(&json, pd, roots[i]);
        talas_json_key(&json, "replies");
        talas_json_array_begin(&json);
        for (size_t j = 0; j < nreplies; j++)
            if (strcmp(replies[j]->parent, roots[i]->id) == 0) {
                comment_json(&json, pd, replies[j]);
                talas_json_object_end(&json);
            }
        talas_json_array_end(&json);
        talas_json_object_end(&json);
    }
    talas_json_array_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(pd->req, 200, &body);
    free(roots);
    free(replies);
}

/* Looks the track up: 0 with its current id in ID_R and its duration, or
 * -1 when it answered 404 or 500. PD (may be NULL) gets the versions. */
static int find_track(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, char *id_r,
                      uint64_t *duration_r, struct pending *pd)
{
    struct talas_track t;
    struct talas_song s = {0};
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        log_error("comments: mdb_txn_begin() failed: %s", mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    rc = talas_catalog_resolve(ctx->storage, txn, id, &t);
    if (rc != 0 || t.error != NULL) {
        mdb_txn_abort(txn);
        talas_http_send_error(req, 404, "not_found", "no such track");
        return -1;
    }
    memcpy(id_r, t.id, TALAS_TRACK_ID_LEN + 1);
    *duration_r = t.duration_ms;
    if (pd != NULL) {
        int in_song = talas_track_song_get(ctx->storage, txn, t.id, pd->song) == 0 &&
                      talas_song_get(ctx->storage, txn, pd->song, &s) == 0;
        size_t cap = in_song ? s.count + 1 : 1;
        pd->tracks = h2o_mem_alloc_pool(&req->pool, cap * sizeof(*pd->tracks));
        pd->labels = h2o_mem_alloc_pool(&req->pool, cap * sizeof(*pd->labels));
        memcpy(pd->tracks[0], t.id, TALAS_TRACK_ID_LEN + 1);
        pd->labels[0][0] = '\0';
        pd->n = 1;
        if (!in_song)
            pd->song[0] = '\0';
        for (size_t i = 0; in_song && i < s.count; i++) {
            size_t k = 0;
            if (strcmp(s.members[i].track, t.id) != 0)
                k = pd->n++;
            memcpy(pd->tracks[k], s.members[i].track, TALAS_TRACK_ID_LEN + 1);
            snprintf(pd->labels[k], sizeof(pd->labels[k]), "%s", s.members[i].label);
        }
        talas_song_free(&s);
    }
    mdb_txn_abort(txn);
    return 0;
}

int talas_comments_track_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char track[TALAS_TRACK_ID_LEN + 1], user[USER_MAX + 1];
    int is_get = talas_http_method_is(req, "GET") || talas_http_method_is(req, "HEAD");
    struct talas_state_comment_op *op;
    struct talas_comment c;
    struct pending *pd;
    uint64_t duration;
    struct body b;

    if (!is_get && !talas_http_method_is(req, "POST")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD, POST"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here", (int)req->method.len,
                              req->method.base);
        return 0;
    }
    if (!talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "not_found", "no such track");
        return 0;
    }
    memcpy(track, id, len);
    track[len] = '\0';
    if (caller(ctx, req, !is_get, track, user) == -1)
        return 0;
    pd = pending_new(ctx, req);
    if (find_track(ctx, req, track, track, &duration, is_get ? pd : NULL) != 0)
        return 0;
    if (is_get) {
        const char **ids = h2o_mem_alloc_pool(&req->pool, pd->n * sizeof(*ids));
        for (size_t i = 0; i < pd->n; i++)
            ids[i] = pd->tracks[i];
        if ((op = talas_state_comment_list(ctx, ids, pd->n, on_listed, pd)) != NULL)
            pd->op = op;
        return 0;
    }
    if (read_body(ctx, req, &b, 0) != 0)
        return 0;
    if (b.at_ms < 0 || (uint64_t)b.at_ms > duration) {
        talas_http_send_error(req, 400, "at_out_of_range", "at_ms: must be 0 to %llu (the track's duration)",
                              (unsigned long long)duration);
        return 0;
    }
    memset(&c, 0, sizeof(c));
    talas_comment_id_make(c.id);
    c.track = track;
    c.user = user;
    c.parent = b.has_parent ? b.parent : "";
    c.at_ms = b.at_ms;
    c.created_ms = creation_stamp();
    c.body = b.text;
    c.body_len = b.text_len;
    pd->action = "created";
    if ((op = talas_state_comment_add(ctx, &c, on_changed, pd)) != NULL)
        pd->op = op;
    return 0;
}

int talas_comments_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char comment[TALAS_COMMENT_ID_LEN + 1], user[USER_MAX + 1];
    int is_patch = talas_http_method_is(req, "PATCH"), who;
    struct talas_state_comment_op *op;
    struct pending *pd;
    struct body b;

    if (!is_patch && !talas_http_method_is(req, "DELETE")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("PATCH, DELETE"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here", (int)req->method.len,
                              req->method.base);
        return 0;
    }
    /* a change takes the author or the backend, whatever auth.required */
    if ((who = caller(ctx, req, 0, NULL, user)) == -1)
        return 0;
    if (who == CALLER_ANYONE || (who == CALLER_USER && user[0] == '\0')) {
        talas_http_refuse(req, 401, "unauthorized", "the author's token or the backend key is required");
        return 0;
    }
    if (len != TALAS_COMMENT_ID_LEN || !talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "not_found", "%s", talas_comment_no_such);
        return 0;
    }
    memcpy(comment, id, len);
    comment[len] = '\0';
    if (is_patch && read_body(ctx, req, &b, 1) != 0)
        return 0;
    pd = pending_new(ctx, req);
    pd->action = is_patch ? "edited" : "deleted";
    if ((op = talas_state_comment_change(ctx, comment, who == CALLER_BACKEND ? NULL : user,
                                         is_patch ? b.text : NULL, is_patch ? b.text_len : 0, on_changed, pd)) !=
        NULL)
        pd->op = op;
    return 0;
}
