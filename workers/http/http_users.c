/*
 * http_users.c - GET and PUT /api/users/{id}/settings: a user's settings,
 * for now "share my listening" (share_listening, store/users.h); and GET
 * /api/users/{id}/likes: the songs the user liked (starred, from a
 * Subsonic app: workers/state/state_stars.h, LMDB or PostgreSQL).
 *
 * Entry points: talas_users_settings_serve, talas_users_likes_serve
 * (http_router.c).
 *
 * Who may: the platform's backend with its key ("Authorization: Bearer
 * KEY", auth.backend_key_file), for any user; or the user, with a token
 * of their own (?token= or Authorization: Bearer) whose sub is {id}; a
 * valid token of another user gets 403. A media token (one that names a
 * track) is refused too: it travels in URLs that players, logs and
 * Referer headers pass around, and must not be enough to make someone's
 * listening public. The check holds whatever auth.required says: with no
 * key and no token configured, nobody changes anything, and everyone's
 * listening stays private (the default).
 *
 * Order: method (405), credentials (401), the id (400), whose settings
 * (403), then for PUT the body (413, 400 naming the field) and one short
 * write transaction, refused with 507 when a new record would pass the
 * user-data budget (storage.user_data_max).
 *
 * Logs: refused credentials and refused users (warn, with the client's
 * address, never the token), storage errors.
 */
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "http/http_authorize.h"
#include "http/http_response.h"
#include "http/http_users.h"
#include "state/state_stars.h"
#include "store/catalog.h"
#include "store/users.h"

/* A settings document is a few dozen bytes. */
#define MAX_BODY 4096

enum caller { CALLER_BACKEND, CALLER_USER };

/*
 * Who is asking: CALLER_BACKEND, or CALLER_USER with the token's sub in
 * SUB_R (TALAS_USERS_ID_MAX + 1 bytes); -1 when answered (401, or 403 for
 * a token that cannot name a user here).
 */
static int caller(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *sub_r)
{
    struct talas_token_claims claims;
    int rc;

    if ((rc = talas_http_backend_or_token(ctx, req, "the backend key or the user's own token is required",
                                          &claims)) != 0)
        return rc > 0 ? CALLER_BACKEND : -1;
    if (claims.track[0] != '\0') {
        talas_http_refuse(req, 403, "forbidden", "a media token (it names a track) cannot read or change settings");
        return -1;
    }
    if (claims.sub[0] == '\0' || strlen(claims.sub) > TALAS_USERS_ID_MAX) {
        talas_http_refuse(req, 403, "forbidden", "the token names no user (sub)");
        return -1;
    }
    strcpy(sub_r, claims.sub);
    return CALLER_USER;
}

static void send_settings(h2o_req_t *req, int status, const char *user, const struct talas_user_settings *s)
{
    struct talas_buf body = {0};
    struct talas_json json;

    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, user);
    talas_json_key(&json, "share_listening");
    talas_json_bool(&json, s->share_listening);
    talas_json_key(&json, "updated_at_ms");
    if (s->updated_ms != 0)
        talas_json_uint(&json, s->updated_ms);
    else
        talas_json_null(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, status, &body);
}

static int serve_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *user)
{
    struct talas_user_settings s;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        log_error("user settings: reading the storage failed: %s", mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the settings could not be read");
        return 0;
    }
    rc = talas_user_settings_get(ctx->storage, txn, user, &s);
    mdb_txn_abort(txn);
    /* a damaged record reads as the defaults (private), as the hub reads it */
    if (rc > 0) {
        log_error("user settings: reading those of a user failed: %s", mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the settings could not be read");
        return 0;
    }
    send_settings(req, 200, user, &s);
    return 0;
}

struct put_body {
    struct talas_user_settings s;
    int have_share;
    const char *bad_field, *bad_reason;
    char field[72];
};

static int put_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct put_body *b = arg;

    if (strcmp(key, "share_listening") == 0) {
        if (v->type != TALAS_JSON_TRUE && v->type != TALAS_JSON_FALSE) {
            b->bad_field = "share_listening";
            b->bad_reason = "must be true or false";
            return 1;
        }
        b->s.share_listening = v->type == TALAS_JSON_TRUE;
        b->have_share = 1;
        return 0;
    }
    snprintf(b->field, sizeof(b->field), "%.64s", key);
    b->bad_field = b->field;
    b->bad_reason = "not a setting (share_listening)";
    return 1;
}

static int serve_put(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *user)
{
    struct talas_quota_refusal refusal;
    struct put_body b;
    int rc;

    memset(&b, 0, sizeof(b));
    talas_user_settings_default(&b.s);
    if (talas_http_read_json_body(req, MAX_BODY, 0, put_member, &b) != 0)
        return 0;
    if (b.bad_field != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%s: %s", b.bad_field, b.bad_reason);
        return 0;
    }
    if (!b.have_share) {
        talas_http_send_error(req, 400, "invalid_parameter", "share_listening: required (true or false)");
        return 0;
    }
    b.s.updated_ms = talas_wall_ms();
    rc = talas_user_settings_put(ctx->storage, user, &b.s, ctx->conf->storage_user_data_max, &refusal);
    if (rc == TALAS_QUOTA_EXCEEDED) {
        talas_http_send_refusal(req, 507, &refusal);
        return 0;
    }
    if (rc != 0) {
        talas_storage_log_write_error("user settings: a change", rc);
        talas_http_send_error(req, 500, "storage_error", "the settings could not be stored");
        return 0;
    }
    if (b.s.share_listening == 0)
        b.s.updated_ms = 0; /* back to the defaults: nothing is stored */
    send_settings(req, 200, user, &b.s);
    return 0;
}

/* Whether ID (LEN bytes, from the path) can name a user; else answers 400. */
static int user_id_ok(h2o_req_t *req, const char *id, size_t len)
{
    if (len == 0 || len > TALAS_USERS_ID_MAX || !talas_utf8_valid(id, len) || memchr(id, '\0', len) != NULL ||
        memchr(id, '/', len) != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter",
                              "user id: must be 1 to %d bytes of UTF-8, without NUL or /",
                              TALAS_USERS_ID_MAX);
        return 0;
    }
    return 1;
}
int talas_users_settings_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char user[TALAS_USERS_ID_MAX + 1], sub[TALAS_USERS_ID_MAX + 1];
    int put = talas_http_method_is(req, "PUT"), who;

    if (!put && !talas_http_method_is(req, "GET") && !talas_http_method_is(req, "HEAD")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD, PUT"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here",
                              (int)req->method.len, req->method.base);
        return 0;
    }
    /* credentials first: without them, nothing about the user or the body */
    if ((who = caller(ctx, req, sub)) == -1)
        return 0;
    if (!user_id_ok(req, id, len))
        return 0;
    memcpy(user, id, len);
    user[len] = '\0';
    if (who == CALLER_USER && strcmp(sub, user) != 0) {
        talas_http_refuse(req, 403, "forbidden", "a user may read and change only their own settings");
        return 0;
    }
    return put ? serve_put(ctx, req, user) : serve_get(ctx, req, user);
}

/* ------------------------------------------------------------- likes */

/* A likes request while the store answers, in the request's pool. */
struct likes_call {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_state_stars_op *op;
    char user[TALAS_USERS_ID_MAX + 1];
};

static void likes_dispose(void *p)
{
    struct likes_call *l = p;

    if (l->op != NULL)
        talas_state_stars_cancel(l->op);
}

static void on_likes(void *data, const struct talas_state_stars_result *res)
{
    struct likes_call *l = data;
    struct talas_buf body = {0};
    struct talas_json json;
    struct talas_track t;
    uint64_t total = 0;
    MDB_txn *txn;
    int rc;

    l->op = NULL;
    if (res->outcome == TALAS_STATE_UNAVAILABLE) {
        talas_http_send_error(l->req, 503, "store_unavailable", "%s", res->reason);
        return;
    }
    if (res->outcome != TALAS_STATE_OK) {
        talas_http_send_error(l->req, 500, "storage_error", "the likes could not be read");
        return;
    }
    if ((rc = talas_storage_read_begin(l->ctx->storage, &txn)) != 0) {
        log_error("likes: reading the catalog failed: %s", mdb_strerror(rc));
        talas_http_send_error(l->req, 500, "storage_error", "the catalog could not be read");
        return;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "user_id");
    talas_json_string(&json, l->user);
    talas_json_key(&json, "likes");
    talas_json_array_begin(&json);
    /* songs only (a star may be an album's or an artist's), still in the
     * catalog; by track id */
    for (size_t i = 0; i < res->count; i++) {
        const struct talas_star *s = &res->stars[i];
        if (s->starred_ms == 0 || !talas_track_id_valid(s->item, strlen(s->item)) ||
            talas_catalog_get(l->ctx->storage, txn, s->item, &t) != 0)
            continue;
        talas_json_object_begin(&json);
        talas_json_key(&json, "track_id");
        talas_json_string(&json, s->item);
        talas_json_key(&json, "liked_at_ms");
        talas_json_uint(&json, s->starred_ms);
        talas_json_object_end(&json);
        total++;
    }
    mdb_txn_abort(txn);
    talas_json_array_end(&json);
    talas_json_key(&json, "total");
    talas_json_uint(&json, total);
    talas_json_object_end(&json);
    talas_http_send_json_doc(l->req, 200, &body);
}

int talas_users_likes_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    char sub[TALAS_USERS_ID_MAX + 1];
    struct likes_call *l;
    int who;

    if (talas_http_reject_unless_get(req))
        return 0;
    /* credentials first: without them, nothing about the user */
    if ((who = caller(ctx, req, sub)) == -1)
        return 0;
    if (!user_id_ok(req, id, len))
        return 0;
    if (who == CALLER_USER && (strlen(sub) != len || memcmp(sub, id, len) != 0)) {
        talas_http_refuse(req, 403, "forbidden", "a user may read only their own likes");
        return 0;
    }
    l = h2o_mem_alloc_shared(&req->pool, sizeof(*l), likes_dispose);
    memset(l, 0, sizeof(*l));
    l->ctx = ctx;
    l->req = req;
    memcpy(l->user, id, len);
    l->user[len] = '\0';
    l->op = talas_state_stars_list(ctx, l->user, on_likes, l);
    return 0;
}
