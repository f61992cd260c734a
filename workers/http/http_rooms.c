/*
 * http_rooms.c - listening rooms over REST: POST /api/rooms creates one,
 * GET /api/rooms/{id} reads its state (the protocol is ws_rooms.c's, and
 * README.md's "Listening rooms").
 *
 * Entry points: talas_rooms_api, talas_rooms_api_one (http_router.c);
 * talas_rooms_invite_of (http_hls_queue.c, a room's continuous stream).
 *
 * Both need a user's token (Authorization: Bearer, with a sub). POST takes
 * {"name": 1..100 characters, "mode": "host"|"open"} and answers 201
 * {"id","invite_url","invite_token","room"}; the creator hosts the room
 * and is its first member; past rooms.max_per_user, 429 quota_exceeded.
 * GET answers the state to a member or the host, or to the holder of the
 * room's invite (?invite= or X-Room-Invite); 403 otherwise, 404 for an unknown
 * or expired room. In cluster mode both answer 501 rooms_unavailable.
 *
 * Logs: nothing of its own (the store logs its failures).
 */
#include <stdio.h>
#include <string.h>

#include "core/json_read.h"
#include "core/token.h"
#include "http/http_authorize.h"
#include "http/http_response.h"
#include "http/http_rooms.h"
#include "realtime/ws_rooms.h"
#include "state/state_rooms.h"

/* The user of the request's token into SUB_R; -1 when it answered. */
static int user_of(const struct talas_worker_ctx *ctx, h2o_req_t *req, char sub_r[TALAS_ROOM_USER_MAX + 1])
{
    struct talas_token_claims claims;
    const char *reason = NULL;
    h2o_iovec_t token;
    char ip[64];
    int found;

    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (found == 0) {
        talas_http_refuse(req, 401, "unauthorized", "a user's token is required");
        return -1;
    }
    switch (talas_token_verify(ctx->token, token.base, token.len, NULL, 0, talas_http_client_ip(req, ip),
                               &claims, &reason)) {
    case TALAS_TOKEN_OK:
        break;
    case TALAS_TOKEN_FORBIDDEN:
        talas_http_refuse(req, 403, "forbidden", reason);
        return -1;
    default:
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (claims.sub[0] == '\0' || strlen(claims.sub) > TALAS_ROOM_USER_MAX || claims.track[0] != '\0') {
        talas_http_refuse(req, 403, "forbidden", "a user's token (with a sub, for no track) is required");
        return -1;
    }
    strcpy(sub_r, claims.sub);
    return 0;
}

static int unavailable(h2o_req_t *req)
{
    talas_http_send_error(req, 501, "rooms_unavailable", "%s", talas_state_rooms_no_cluster);
    return 0;
}

struct body {
    char name[TALAS_ROOM_NAME_MAX + 1];
    int has_name, host_mode;
    const char *bad_field, *bad_reason;
    char field[72];
};

static int body_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct body *b = arg;
    size_t chars = 0;

    if (strcmp(key, "name") == 0) {
        if (v->type != TALAS_JSON_STRING) {
            b->bad_field = "name";
            b->bad_reason = "must be a string";
            return 1;
        }
        for (size_t i = 0; i < v->len; i++)
            chars += ((unsigned char)v->str[i] & 0xc0) != 0x80;
        if (chars == 0 || chars > TALAS_ROOM_NAME_CHARS || v->len > TALAS_ROOM_NAME_MAX) {
            b->bad_field = "name";
            b->bad_reason = "must be 1 to 100 characters";
            return 1;
        }
        memcpy(b->name, v->str, v->len + 1);
        b->has_name = 1;
        return 0;
    }
    if (strcmp(key, "mode") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || (strcmp(v->str, "host") != 0 && strcmp(v->str, "open") != 0)) {
            b->bad_field = "mode";
            b->bad_reason = "must be \"host\" or \"open\"";
            return 1;
        }
        b->host_mode = strcmp(v->str, "host") == 0;
        return 0;
    }
    snprintf(b->field, sizeof(b->field), "%.64s", key);
    b->bad_field = b->field;
    b->bad_reason = "not a member (name, mode)";
    return 1;
}

static int create(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct talas_quota_refusal refusal = {0};
    struct talas_room_limits lim;
    struct talas_buf out = {0};
    struct talas_json json;
    struct talas_room r;
    struct body b;
    char user[TALAS_ROOM_USER_MAX + 1], *token;
    uint64_t now = talas_wall_ms();
    int joined;

    if (user_of(ctx, req, user) != 0)
        return 0;
    if (ctx->records != NULL || ctx->conf->cluster_enabled)
        return unavailable(req);
    memset(&b, 0, sizeof(b));
    if (talas_http_read_json_body(req, 64 * 1024, 0, body_member, &b) != 0)
        return 0;
    if (b.bad_field != NULL) {
        talas_http_send_error(req, 400, "invalid_parameter", "%s: %s", b.bad_field, b.bad_reason);
        return 0;
    }
    if (!b.has_name) {
        talas_http_send_error(req, 400, "invalid_parameter", "name: required (1 to 100 characters)");
        return 0;
    }
    memset(&r, 0, sizeof(r));
    talas_room_id_make(r.id);
    memcpy(r.name, b.name, sizeof(r.name));
    r.mode = b.host_mode ? TALAS_ROOM_HOST : TALAS_ROOM_OPEN;
    snprintf(r.host, sizeof(r.host), "%s", user);
    r.created_ms = now;
    talas_state_rooms_limits(ctx, &lim);
    talas_room_join(&r, &lim, user, 0, now, &joined, NULL);
    switch (talas_state_room_create(ctx, &r, now, &refusal)) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_QUOTA:
        talas_room_free(&r);
        /* the user-data budget is a full store (507), as for the other
         * user records; rooms.max_per_user a user's limit (429) */
        talas_http_send_refusal(req, strcmp(refusal.limit, "storage.user_data_max") == 0 ? 507 : 429, &refusal);
        return 0;
    case TALAS_STATE_UNAVAILABLE:
        talas_room_free(&r);
        return unavailable(req);
    case TALAS_STATE_FULL:
        talas_room_free(&r);
        talas_http_send_error(req, 507, "storage_full", "the room could not be stored");
        return 0;
    default:
        talas_room_free(&r);
        talas_http_send_error(req, 500, "storage_error", "the room could not be stored");
        return 0;
    }
    token = talas_ws_room_invite(ctx, r.id);
    talas_json_init(&json, &out);
    talas_json_object_begin(&json);
    talas_json_key(&json, "id");
    talas_json_string(&json, r.id);
    talas_json_key(&json, "invite_url");
    if (token != NULL) {
        struct talas_buf url = {0};
        talas_buf_printf(&url, "/?room=%s&invite=%s", r.id, token);
        talas_json_string_n(&json, url.data, url.len);
        talas_buf_free(&url);
    } else {
        talas_json_null(&json);
    }
    talas_json_key(&json, "invite_token");
    if (token != NULL)
        talas_json_string(&json, token);
    else
        talas_json_null(&json);
    free(token);
    talas_json_key(&json, "room");
    talas_ws_room_state_json(ctx, &json, &r, now, 1);
    talas_json_object_end(&json);
    talas_room_free(&r);
    talas_http_send_json_doc(req, 201, &out);
    return 0;
}

int talas_rooms_api(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    if (!talas_http_method_is(req, "POST")) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here",
                              (int)req->method.len, req->method.base);
        return 0;
    }
    return create(ctx, req);
}

h2o_iovec_t talas_rooms_invite_of(h2o_req_t *req)
{
    h2o_iovec_t v = {NULL, 0};
    ssize_t i;

    if (talas_http_query_param(req, "invite", &v) == 1)
        return v;
    if ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-room-invite"), -1)) != -1)
        return req->headers.entries[i].value;
    return (h2o_iovec_t){NULL, 0};
}

int talas_rooms_api_one(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct talas_token_claims claims;
    struct talas_buf out = {0};
    struct talas_json json;
    struct talas_room r;
    const char *reason;
    char user[TALAS_ROOM_USER_MAX + 1], room[TALAS_ROOM_ID_LEN + 1];
    uint64_t now = talas_wall_ms();
    h2o_iovec_t invite;
    int member, invited;

    if (talas_http_reject_unless_get(req))
        return 0;
    if (user_of(ctx, req, user) != 0)
        return 0;
    if (ctx->records != NULL || ctx->conf->cluster_enabled)
        return unavailable(req);
    if (len != TALAS_ROOM_ID_LEN) {
        talas_http_send_error(req, 404, "not_found", "no such room");
        return 0;
    }
    memcpy(room, id, len);
    room[len] = '\0';
    if (!talas_room_id_valid(room)) {
        talas_http_send_error(req, 404, "not_found", "no such room");
        return 0;
    }
    switch (talas_state_room_update(ctx, room, NULL, now, NULL, NULL, &r, NULL, NULL)) {
    case TALAS_STATE_OK:
        break;
    case TALAS_STATE_NOT_FOUND:
        talas_room_free(&r);
        talas_http_send_error(req, 404, "not_found", "no such room");
        return 0;
    case TALAS_STATE_UNAVAILABLE:
        talas_room_free(&r);
        return unavailable(req);
    default:
        talas_room_free(&r);
        talas_http_send_error(req, 500, "storage_error", "the room could not be read");
        return 0;
    }
    /* the host too: a creator who has not connected yet may have been
     * dropped as a silent member */
    member = talas_room_member_find(&r, user) != NULL || strcmp(r.host, user) == 0;
    invite = talas_rooms_invite_of(req);
    invited = invite.base != NULL &&
              talas_token_verify(ctx->token, invite.base, invite.len, NULL, TALAS_TOKEN_ROOM, NULL, &claims,
                                 &reason) == TALAS_TOKEN_OK &&
              strcmp(claims.room, room) == 0;
    if (!member && !invited) {
        talas_room_free(&r);
        talas_http_send_error(req, 403, "forbidden",
                              "only the room's members, or the holders of its invite, may read it");
        return 0;
    }
    talas_json_init(&json, &out);
    talas_ws_room_state_json(ctx, &json, &r, now, member);
    talas_room_free(&r);
    talas_http_send_json_doc(req, 200, &out);
    return 0;
}
