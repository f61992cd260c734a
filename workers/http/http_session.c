/*
 * http_session.c - streaming sessions over HTTP: create, read, change
 * quality, report metrics, end, and the sessions' statistics.
 *
 * Entry points are declared in http_session.h. Sessions are kept behind
 * the state interface (workers/state/state_sessions.h): LMDB records
 * (src/store/sessions.c), or in cluster mode Redis, so a player may talk
 * to any worker of any node; the choices are made by
 * workers/media/adaptive.c. A handler asks the store and answers in its
 * callback (at once with LMDB, later on the loop with Redis); a request
 * that goes away first cancels its operation. Redis unreachable: 503
 * store_unavailable (the media routes do not need it).
 *
 * Access: with auth.required, a session is created by the platform's
 * backend (its key, as for POST /api/stream-url) or by a listener whose
 * token is valid for the track (scope hls or stream); the answer's URLs
 * carry tokens minted for the track. The session id itself (128 random
 * bits) is what lets a player read, report on and end its session: a
 * player keeps reporting long after the token it started with expired.
 *
 * Slots: every session counts against an owner, which the store bounds
 * (talas_session_create, streaming.max_sessions_per_user and
 * _per_address): the user a listener's token names (sub), or the user
 * the backend names in client_id; a client with no user (a token without
 * sub, or auth.required false) counts against its address, taken from
 * the socket as conn_limits.c does (an IPv4 client seen through an IPv6
 * socket is the same client). The backend key's sessions for no user
 * count only against streaming.max_sessions, the last
 * streaming.backend_reserved_sessions of which only it may take.
 *
 * Logs: refused creations (the reason, never the token), storage errors,
 * URLs that could not be minted. Creations refused by a bound are
 * answered, not logged: a flood would fill the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "media/adaptive.h"
#include "store/catalog.h"
#include "core/config.h"
#include "http/http_authorize.h"
#include "http/http_profile.h"
#include "http/http_response.h"
#include "http/http_session.h"
#include "core/json.h"
#include "core/json_read.h"
#include "core/log.h"
#include "state/state_sessions.h"
#include "store/sessions.h"
#include "media/transcode_jobs.h"

/* A session's body is a few hundred bytes; more is not a player talking. */
#define MAX_BODY 16384

#define U32_MAX_JSON 4294967295.0

/* ----------------------------------------------------------- responses */

/* 400 with the offending field named in the message and in "field". */
static void send_field_error(h2o_req_t *req, const char *field, const char *reason)
{
    struct talas_buf body = {0};
    struct talas_json json;
    char message[256];

    snprintf(message, sizeof(message), "%.80s: %s", field, reason);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "error");
    talas_json_object_begin(&json);
    talas_json_key(&json, "code");
    talas_json_string(&json, "invalid_parameter");
    talas_json_key(&json, "message");
    talas_json_string(&json, message);
    talas_json_key(&json, "field");
    talas_json_string(&json, field);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 400, &body);
}

static void send_storage_error(h2o_req_t *req, const char *what, int rc)
{
    log_error("streaming session: %s failed: %s", what, mdb_strerror(rc));
    talas_http_send_error(req, 500, "storage_error", "the sessions could not be %s",
                          strstr(what, "read") != NULL ? "read" : "written");
}

static void send_not_found(h2o_req_t *req)
{
    talas_http_send_error(req, 404, "not_found", "no such session (it may have ended or expired)");
}

/* A store's failure (FAILED, logged by the store) or absence (UNAVAILABLE:
 * Redis cannot be reached; the media routes go on without it). */
static void send_store_error(h2o_req_t *req, const struct talas_state_session_result *r)
{
    if (r->outcome == TALAS_STATE_SESSION_UNAVAILABLE)
        talas_http_send_error(req, 503, "store_unavailable",
                              "the sessions' store (cluster.redis) cannot be reached; try again later");
    else
        talas_http_send_error(req, 500, "storage_error", "the sessions could not be %s",
                              r->wrote ? "written" : "read");
}

/*
 * A request waiting for the sessions' store: lives in the request's pool,
 * and cancels the operation if the request goes away first (the client
 * left). The callbacks clear OP before they answer.
 */
struct pending {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    struct talas_state_session_op *op;
    void *body; /* what the change's function reads and fills */
    /* create */
    const struct talas_config_profile *profile;
    char *master, *stream;
    int backend, reserved;
    uint64_t now;
};

static void pending_dispose(void *p)
{
    struct pending *g = p;

    if (g->op != NULL)
        talas_state_session_cancel(g->op);
}

static struct pending *pending_new(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct pending *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), pending_dispose);

    memset(g, 0, sizeof(*g));
    g->ctx = ctx;
    g->req = req;
    return g;
}

static int reject_method(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here", (int)req->method.len,
                          req->method.base);
    return 0;
}

static void time_json(struct talas_json *json, const char *key, uint64_t ms)
{
    char buf[32];

    talas_token_format_time((time_t)(ms / 1000), buf);
    talas_json_key(json, key);
    talas_json_string(json, buf);
}

/* The StreamingSession of the seed, and when it will expire. */
static void session_json(const struct talas_worker_ctx *ctx, struct talas_json *json,
                         const struct talas_session *s)
{
    const struct talas_config *conf = ctx->conf;
    const struct talas_client_capabilities *c = &s->client_capabilities;
    const struct talas_performance_metrics *m = &s->performance_metrics;
    const struct talas_config_profile *p =
        talas_adaptive_find(conf->transcode_profiles, conf->transcode_profile_count, s->current_quality);

    talas_json_object_begin(json);
    talas_json_key(json, "session_id");
    talas_json_string(json, s->session_id);
    talas_json_key(json, "track_id");
    talas_json_string(json, s->track_id);
    talas_json_key(json, "client_id");
    talas_json_string(json, s->client_id);
    talas_json_key(json, "current_quality");
    talas_json_string(json, s->current_quality);
    talas_json_key(json, "current_profile");
    if (p != NULL)
        talas_http_profile_json(json, p);
    else
        talas_json_null(json);

    talas_json_key(json, "client_capabilities");
    talas_json_object_begin(json);
    talas_json_key(json, "estimated_bandwidth_kbps");
    talas_json_uint(json, c->estimated_bandwidth_kbps);
    talas_json_key(json, "buffer_duration_ms");
    talas_json_uint(json, c->buffer_duration_ms);
    talas_json_key(json, "connection_type");
    talas_json_string(json, talas_adaptive_connection_name(c->connection_type));
    talas_json_key(json, "device_type");
    talas_json_string(json, talas_adaptive_device_name(c->device_type));
    talas_json_key(json, "preferred_quality");
    if (c->preferred_quality[0] != '\0')
        talas_json_string(json, c->preferred_quality);
    else
        talas_json_null(json);
    talas_json_key(json, "adaptive_enabled");
    talas_json_bool(json, (int)c->adaptive_enabled);
    talas_json_object_end(json);

    talas_json_key(json, "performance_metrics");
    talas_json_object_begin(json);
    talas_json_key(json, "buffer_health_percentage");
    talas_json_double(json, m->buffer_health_percentage);
    talas_json_key(json, "download_speed_kbps");
    talas_json_uint(json, m->download_speed_kbps);
    talas_json_key(json, "packet_loss_percentage");
    talas_json_double(json, m->packet_loss_percentage);
    talas_json_key(json, "latency_ms");
    talas_json_uint(json, m->latency_ms);
    talas_json_key(json, "rebuffer_count");
    talas_json_uint(json, m->rebuffer_count);
    talas_json_key(json, "rebuffer_duration_ms");
    talas_json_uint(json, m->rebuffer_duration_ms);
    talas_json_key(json, "quality_switches");
    talas_json_uint(json, m->quality_switches);
    talas_json_key(json, "reports");
    talas_json_uint(json, m->reports);
    talas_json_object_end(json);

    time_json(json, "created_at", s->created_at_ms);
    time_json(json, "last_updated", s->last_updated_ms);
    time_json(json, "expires_at", s->last_updated_ms + conf->streaming_session_timeout_ms);
    talas_json_object_end(json);
}

static void send_session(const struct talas_worker_ctx *ctx, h2o_req_t *req, const struct talas_session *s)
{
    struct talas_buf body = {0};
    struct talas_json json;

    talas_json_init(&json, &body);
    session_json(ctx, &json, s);
    talas_http_send_json_doc(req, 200, &body);
}

/* ---------------------------------------------------------------- URLs */

/* Seconds the tokens of a session's URLs live: long enough to play the
 * whole track twice over (a player keeps asking for segments with the
 * token of the master playlist it was given), at least auth.default_ttl,
 * at most auth.max_ttl. */
static uint64_t session_token_ttl(const struct talas_worker_ctx *ctx, const char *track)
{
    const struct talas_config *conf = ctx->conf;
    uint64_t ttl = conf->auth_default_ttl_ms / 1000, want;
    struct talas_track t;
    MDB_txn *txn;

    if (talas_storage_read_begin(ctx->storage, &txn) != 0)
        return ttl;
    if (talas_catalog_resolve(ctx->storage, txn, track, &t) == 0) {
        want = t.duration_ms / 1000 * 2 + 60;
        if (want > ttl)
            ttl = want;
        if (ttl > conf->auth_max_ttl_ms / 1000)
            ttl = conf->auth_max_ttl_ms / 1000;
    }
    mdb_txn_abort(txn);
    return ttl;
}

/*
 * The master playlist's and the progressive stream's URLs of a session:
 * malloc'd into *MASTER_R and *STREAM_R. With auth.required they carry
 * tokens for the track (scopes hls and stream, sub CLIENT_ID when not
 * empty). Returns 0, or -1 with a malloc'd message.
 */
static int session_urls(const struct talas_worker_ctx *ctx, const char *track, const char *quality,
                        const char *client_id, char **master_r, char **stream_r, char **error_r)
{
    const struct talas_config *conf = ctx->conf;
    const char *sub = client_id[0] != '\0' ? client_id : NULL;
    char *url, *q;
    uint64_t ttl;
    time_t exp;

    if (!conf->auth_required) {
        *master_r = xasprintf("%s/hls/%s/master.m3u8", conf->http_public_url, track);
        *stream_r = xasprintf("%s/stream/%s?profile=%s", conf->http_public_url, track, quality);
        return 0;
    }
    ttl = session_token_ttl(ctx, track);
    if (talas_token_mint_url(ctx->token, track, sub, TALAS_TOKEN_HLS, ttl, master_r, &exp, error_r) != 0)
        return -1;
    if (talas_token_mint_url(ctx->token, track, sub, TALAS_TOKEN_STREAM, ttl, &url, &exp, error_r) != 0) {
        free(*master_r);
        return -1;
    }
    /* ".../stream/ID?token=T" -> ".../stream/ID?profile=Q&token=T" */
    q = strchr(url, '?');
    *stream_r = xasprintf("%.*s?profile=%s&%s", (int)(q - url), url, quality, q + 1);
    free(url);
    return 0;
}

/* -------------------------------------------------------------- parsing */

/* Reads a count (kbit/s, ms): a non-negative number up to MAX; fractions
 * are dropped (browsers report Mbit/s * 1000 with decimals). */
static int read_count(const struct talas_json_value *v, double max, uint32_t *v_r)
{
    if ((v->type != TALAS_JSON_INTEGER && v->type != TALAS_JSON_NUMBER) || !(v->dbl >= 0) || v->dbl > max)
        return -1;
    *v_r = (uint32_t)v->dbl;
    return 0;
}

static int read_percentage(const struct talas_json_value *v, double *v_r)
{
    if ((v->type != TALAS_JSON_INTEGER && v->type != TALAS_JSON_NUMBER) || !(v->dbl >= 0) || v->dbl > 100)
        return -1;
    *v_r = v->dbl;
    return 0;
}

/* A profile name's form (the config's): 1..31 of [a-z0-9_-]. */
static int quality_form_ok(const char *s, size_t len)
{
    if (len == 0 || len >= TALAS_SESSION_QUALITY_SIZE)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

struct parse {
    const struct talas_config *conf; /* the ladder that names in the body must come from */
    h2o_req_t *req;
    const char *bad_field, *bad_reason; /* the first problem; the field in the request pool */
};

/* Records the first bad field and lets the parse go on, so that a body
 * that is not JSON at all is reported as such, whatever came first. */
static int bad(struct parse *p, const char *prefix, const char *key, const char *reason)
{
    if (p->bad_field != NULL)
        return 0;
    p->bad_field =
        h2o_concat(&p->req->pool, h2o_iovec_init(prefix, strlen(prefix)), h2o_iovec_init(key, strlen(key)))
            .base;
    p->bad_reason = reason;
    return 0;
}

struct create_body {
    struct parse p;
    int have_track;
    char track[TALAS_TRACK_ID_LEN + 1];
    char client_id[TALAS_SESSION_CLIENT_ID_SIZE];
    struct talas_client_capabilities caps;
};

#define CAPS "client_capabilities."

static int caps_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct create_body *b = arg;
    struct talas_client_capabilities *c = &b->caps;

    if (strcmp(key, "estimated_bandwidth_kbps") == 0) {
        if (read_count(v, 100000000, &c->estimated_bandwidth_kbps) != 0)
            return bad(&b->p, CAPS, key, "must be a number of kbit/s from 0 to 100000000");
    } else if (strcmp(key, "buffer_duration_ms") == 0) {
        if (read_count(v, 3600000, &c->buffer_duration_ms) != 0)
            return bad(&b->p, CAPS, key, "must be a number of ms from 0 to 3600000");
    } else if (strcmp(key, "connection_type") == 0) {
        enum talas_connection_type t;
        if (v->type != TALAS_JSON_STRING || talas_adaptive_connection_parse(v->str, v->len, &t) != 0)
            return bad(&b->p, CAPS, key,
                       "must be Wifi, Cellular4G, Cellular3G, Cellular2G, Ethernet or Unknown");
        c->connection_type = t;
    } else if (strcmp(key, "device_type") == 0) {
        enum talas_device_type t;
        if (v->type != TALAS_JSON_STRING || talas_adaptive_device_parse(v->str, v->len, &t) != 0)
            return bad(&b->p, CAPS, key,
                       "must be Desktop, Mobile, Tablet, SmartSpeaker, CarAudio or Unknown");
        c->device_type = t;
    } else if (strcmp(key, "preferred_quality") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || !quality_form_ok(v->str, v->len))
            return bad(&b->p, CAPS, key, "must be null or a profile name (a-z, 0-9, _ and -, at most 31)");
        memcpy(c->preferred_quality, v->str, v->len + 1);
    } else if (strcmp(key, "adaptive_enabled") == 0) {
        if (v->type != TALAS_JSON_TRUE && v->type != TALAS_JSON_FALSE)
            return bad(&b->p, CAPS, key, "must be true or false");
        c->adaptive_enabled = v->type == TALAS_JSON_TRUE;
    } else {
        return bad(&b->p, CAPS, key, "unknown field");
    }
    return 0;
}

static int create_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct create_body *b = arg;

    if (strcmp(key, "track_id") == 0) {
        if (v->type != TALAS_JSON_STRING || !talas_track_id_valid(v->str, v->len))
            return bad(&b->p, "", key, "must be a track id");
        memcpy(b->track, v->str, v->len + 1);
        b->have_track = 1;
    } else if (strcmp(key, "client_id") == 0) {
        if (v->type == TALAS_JSON_NULL)
            return 0;
        if (v->type != TALAS_JSON_STRING || v->len == 0 || v->len >= sizeof(b->client_id))
            return bad(&b->p, "", key, "must be a string of 1 to 127 bytes");
        memcpy(b->client_id, v->str, v->len + 1);
    } else if (strcmp(key, "client_capabilities") == 0) {
        const char *error;
        int rc;
        if (v->type != TALAS_JSON_OBJECT)
            return bad(&b->p, "", key, "must be an object");
        rc = talas_json_read_object(v->str, v->len, caps_member, b, &error);
        if (rc == -1)
            return bad(&b->p, "", key, error);
        return 0;
    } else {
        return bad(&b->p, "", key, "unknown field");
    }
    return 0;
}

/* ---------------------------------------------------------------- access */

static void refuse(h2o_req_t *req, int status, const char *reason)
{
    const char *challenge = status == 403 ? "Bearer realm=\"talas\", error=\"insufficient_scope\""
                            : strcmp(reason, "no token") == 0
                                ? "Bearer realm=\"talas\""
                                : "Bearer realm=\"talas\", error=\"invalid_token\"";
    char ip[64];

    log_warn("auth: %d for %.*s %.*s from %s: %s", status, (int)req->method.len, req->method.base,
             (int)req->path_normalized.len, req->path_normalized.base, talas_http_client_ip(req, ip), reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge,
                   strlen(challenge));
    if (status == 403)
        talas_http_send_error(req, 403, "forbidden", "%s", reason);
    else
        talas_http_send_error(req, 401, "unauthorized", "%s",
                              strcmp(reason, "no token") == 0
                                  ? "the backend key or a token for the track is required"
                                  : reason);
}

/*
 * Before the body is read: 1 the backend key (whether or not
 * auth.required), 0 a token to check against the track (*TOKEN_R) or no
 * check at all (auth.required false); -1 answered (401: no credentials,
 * or an ambiguous token).
 */
static int access_before(const struct talas_worker_ctx *ctx, h2o_req_t *req, h2o_iovec_t *token_r)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    const char *reason = NULL;
    int found;

    token_r->base = NULL;
    token_r->len = 0;
    /* with auth off too: the backend's reserve and the user it names */
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    if (!ctx->conf->auth_required)
        return 0;
    if ((found = talas_http_token(req, token_r, &reason)) == -1) {
        refuse(req, 401, reason);
        return -1;
    }
    if (found == 0) {
        refuse(req, 401, "no token");
        return -1;
    }
    return 0;
}

/* After the body: a listener's token must be valid for TRACK with scope
 * hls or stream. Fills *CLAIMS_R (sub). Returns 0, or -1 answered. */
static int access_track(const struct talas_worker_ctx *ctx, h2o_req_t *req, h2o_iovec_t token,
                        const char *track, struct talas_token_claims *claims_r)
{
    const char *reason = NULL;
    enum talas_token_result r;
    char ip[64];

    talas_http_client_ip(req, ip);
    r = talas_token_verify(ctx->token, token.base, token.len, track, TALAS_TOKEN_HLS, ip, claims_r, &reason);
    if (r == TALAS_TOKEN_FORBIDDEN) {
        const char *reason2 = NULL;
        if (talas_token_verify(ctx->token, token.base, token.len, track, TALAS_TOKEN_STREAM, ip, claims_r,
                               &reason2) == TALAS_TOKEN_OK)
            return 0;
    }
    if (r == TALAS_TOKEN_OK)
        return 0;
    refuse(req, r == TALAS_TOKEN_FORBIDDEN ? 403 : 401, reason);
    return -1;
}

/* -------------------------------------------------------------- create */

/*
 * The client's address as text, as conn_limits.c counts it: the peer of
 * the socket (a proxy in front is one client), an IPv4-mapped IPv6
 * address as the IPv4 one. "unknown" when the connection has none: those
 * clients share one bound rather than escape it.
 */
static void client_address(h2o_req_t *req, char buf[TALAS_SESSION_OWNER_SIZE])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_storage ss;
    const struct in6_addr *a6;

    strcpy(buf, "unknown");
    if (req->conn->callbacks->get_peername == NULL ||
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)&ss)->sin_addr, buf,
                  TALAS_SESSION_OWNER_SIZE);
    } else if (ss.ss_family == AF_INET6) {
        a6 = &((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr;
        if (memcmp(a6->s6_addr, mapped, sizeof(mapped)) == 0)
            inet_ntop(AF_INET, a6->s6_addr + 12, buf, TALAS_SESSION_OWNER_SIZE);
        else
            inet_ntop(AF_INET6, a6, buf, TALAS_SESSION_OWNER_SIZE);
    }
}

/* Whom new session S counts against: the user a token names, the user the
 * backend names (client_id), the address of a client with no user, or no
 * one (the backend for no user). */
static void session_owner(h2o_req_t *req, int backend, const struct talas_token_claims *claims,
                          const char *client_id, struct talas_session *s)
{
    const char *user = backend ? client_id : claims->sub;

    if (user[0] != '\0') {
        s->owner_kind = TALAS_SESSION_OWNER_USER;
        snprintf(s->owner, sizeof(s->owner), "%s", user);
    } else if (backend) {
        s->owner_kind = TALAS_SESSION_OWNER_NONE;
    } else {
        /* a client_id in the body of a client with no user is its own
         * claim: it would make a new owner per request */
        s->owner_kind = TALAS_SESSION_OWNER_ADDRESS;
        client_address(req, s->owner);
    }
}

/* 503 too_many_sessions: the global cap, or for anyone but the backend,
 * the part of it that is not reserved to the backend. */
static void send_full(const struct talas_worker_ctx *ctx, h2o_req_t *req, int backend, int reserved)
{
    const struct talas_config *conf = ctx->conf;

    if (backend || reserved == 0)
        talas_http_send_error(req, 503, "too_many_sessions", "%d sessions are live (streaming.max_sessions)",
                              conf->streaming_max_sessions);
    else
        talas_http_send_error(req, 503, "too_many_sessions",
                              "%d sessions are live: the other %d of streaming.max_sessions (%d) are kept "
                              "for the platform's backend (streaming.backend_reserved_sessions)",
                              conf->streaming_max_sessions - reserved, reserved,
                              conf->streaming_max_sessions);
}

static int track_exists(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    struct talas_track t;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        send_storage_error(req, "reading the catalog", rc);
        return 0;
    }
    rc = talas_catalog_resolve(ctx->storage, txn, id, &t);
    if (rc == 0 && t.error != NULL)
        rc = MDB_NOTFOUND;
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND) {
        talas_http_send_error(req, 404, "not_found", "no such track");
        return 0;
    }
    if (rc != 0) {
        send_storage_error(req, "reading the catalog", rc);
        return 0;
    }
    return 1;
}

static void on_created(void *data, const struct talas_state_session_result *r)
{
    struct pending *g = data;
    const struct talas_config *conf = g->ctx->conf;
    h2o_req_t *req = g->req;
    struct talas_buf body = {0};
    struct talas_json json;

    g->op = NULL;
    if (r->outcome == TALAS_STATE_SESSION_QUOTA) {
        talas_http_send_refusal(req, 429, &r->refusal);
        return;
    }
    if (r->outcome == TALAS_STATE_SESSION_FULL) {
        send_full(g->ctx, req, g->backend, g->reserved);
        return;
    }
    if (r->outcome != TALAS_STATE_SESSION_OK) {
        send_store_error(req, r);
        return;
    }
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "session_id");
    talas_json_string(&json, r->session->session_id);
    talas_json_key(&json, "initial_profile");
    talas_http_profile_json(&json, g->profile);
    talas_json_key(&json, "master_playlist");
    talas_json_string(&json, g->master);
    talas_json_key(&json, "stream_url");
    talas_json_string(&json, g->stream);
    time_json(&json, "expires_at", g->now + conf->streaming_session_timeout_ms);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
}

int talas_session_api_create(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    const struct talas_config *conf = ctx->conf;
    struct create_body b;
    struct talas_token_claims claims;
    struct talas_session s;
    const struct talas_config_profile *p;
    struct talas_session_limits limits;
    struct pending *g;
    char *master = NULL, *stream = NULL, *error;
    h2o_iovec_t token;
    uint64_t now;
    int access, reserved;

    if (!talas_http_method_is(req, "POST"))
        return reject_method(req, "POST");
    /* credentials first: without them, nothing about the body or the catalog */
    if ((access = access_before(ctx, req, &token)) == -1)
        return 0;
    memset(&b, 0, sizeof(b));
    b.p.conf = ctx->conf;
    b.p.req = req;
    b.caps.connection_type = TALAS_CONNECTION_UNKNOWN;
    b.caps.device_type = TALAS_DEVICE_UNKNOWN;
    b.caps.adaptive_enabled = 1;
    if (talas_http_read_json_body(req, MAX_BODY, TALAS_HTTP_BODY_NESTED, create_member, &b) != 0)
        return 0;
    if (b.p.bad_field != NULL) {
        send_field_error(req, b.p.bad_field, b.p.bad_reason);
        return 0;
    }
    if (!b.have_track) {
        send_field_error(req, "track_id", "required");
        return 0;
    }
    memset(&claims, 0, sizeof(claims));
    if (conf->auth_required && access == 0 && access_track(ctx, req, token, b.track, &claims) != 0)
        return 0;
    if (!track_exists(ctx, req, b.track))
        return 0;

    memset(&s, 0, sizeof(s));
    if (talas_session_new_id(s.session_id) != 0) {
        log_error("%s: getrandom() failed: %s", __func__, strerror(errno));
        talas_http_send_error(req, 500, "internal_error", "no session id could be made");
        return 0;
    }
    memcpy(s.track_id, b.track, sizeof(s.track_id));
    /* a listener is who its token says; the backend names its user */
    snprintf(s.client_id, sizeof(s.client_id), "%s", claims.sub[0] != '\0' ? claims.sub : b.client_id);
    s.client_capabilities = b.caps;
    p = &conf->transcode_profiles[talas_adaptive_initial(
        conf->transcode_profiles, conf->transcode_profile_count, &s.client_capabilities)];
    snprintf(s.current_quality, sizeof(s.current_quality), "%s", p->name);
    s.created_at_ms = s.last_updated_ms = now = talas_wall_ms();
    session_owner(req, access == 1, &claims, b.client_id, &s);

    /* the URLs before the record: a session nobody can play is never stored */
    if (session_urls(ctx, s.track_id, p->name, s.client_id, &master, &stream, &error) != 0) {
        log_error("%s: minting URLs for %s failed: %s", __func__, s.track_id, error);
        talas_http_send_error(req, 500, "cannot_sign", "%s", error);
        free(error);
        return 0;
    }
    /* without a backend key nobody could take a reserve: there is none */
    reserved = conf->auth_backend_key_file != NULL ? conf->streaming_backend_reserved_sessions : 0;
    limits.max_sessions = (size_t)conf->streaming_max_sessions;
    limits.max_per_user = (size_t)conf->streaming_max_sessions_per_user;
    limits.max_per_address = (size_t)conf->streaming_max_sessions_per_address;
    limits.backend_reserved = (size_t)reserved;
    g = pending_new(ctx, req);
    g->profile = p;
    g->master = h2o_strdup(&req->pool, master, SIZE_MAX).base;
    g->stream = h2o_strdup(&req->pool, stream, SIZE_MAX).base;
    g->backend = access == 1;
    g->reserved = reserved;
    g->now = now;
    free(master);
    free(stream);
    g->op = talas_state_session_create(ctx, &s, &limits, access == 1, on_created, g);
    return 0;
}

/* ------------------------------------------------------------ one session */

static void on_read(void *data, const struct talas_state_session_result *r)
{
    struct pending *g = data;

    g->op = NULL;
    if (r->outcome == TALAS_STATE_SESSION_NOT_FOUND)
        send_not_found(g->req);
    else if (r->outcome != TALAS_STATE_SESSION_OK)
        send_store_error(g->req, r);
    else
        send_session(g->ctx, g->req, r->session);
}

static int get_session(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    struct pending *g = pending_new(ctx, req);

    g->op = talas_state_session_get(ctx, id, on_read, g);
    return 0;
}

static void on_ended(void *data, const struct talas_state_session_result *r)
{
    static h2o_generator_t generator = {NULL, NULL};
    struct pending *g = data;
    h2o_req_t *req = g->req;

    g->op = NULL;
    if (r->outcome == TALAS_STATE_SESSION_NOT_FOUND) {
        send_not_found(req);
        return;
    }
    if (r->outcome != TALAS_STATE_SESSION_OK) {
        send_store_error(req, r);
        return;
    }
    req->res.status = 204;
    req->res.reason = talas_http_reason(204);
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static int end_session(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    struct pending *g = pending_new(ctx, req);

    g->op = talas_state_session_end(ctx, id, on_ended, g);
    return 0;
}

struct quality_change {
    const char *quality;
};

static int apply_quality(struct talas_session *s, struct talas_session_counters *d, void *arg)
{
    struct quality_change *q = arg;

    if (strcmp(s->current_quality, q->quality) != 0) {
        snprintf(s->current_quality, sizeof(s->current_quality), "%s", q->quality);
        s->performance_metrics.quality_switches++;
        d->quality_switches++;
        /* what the monitor saw was about the old rung */
        memset(&s->monitor, 0, sizeof(s->monitor));
    }
    return 0;
}

struct quality_body {
    struct parse p;
    char quality[TALAS_SESSION_QUALITY_SIZE];
};

static int quality_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct quality_body *b = arg;
    const struct talas_config *conf = b->p.conf;

    if (strcmp(key, "quality") != 0)
        return bad(&b->p, "", key, "unknown field");
    if (v->type != TALAS_JSON_STRING || !quality_form_ok(v->str, v->len) ||
        talas_adaptive_find(conf->transcode_profiles, conf->transcode_profile_count, v->str) == NULL)
        return bad(&b->p, "", key, "must be the name of a profile of transcode.profiles");
    memcpy(b->quality, v->str, v->len + 1);
    return 0;
}

static int put_quality(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    struct quality_body b;
    struct quality_change *q;
    struct pending *g;

    memset(&b, 0, sizeof(b));
    b.p.conf = ctx->conf;
    b.p.req = req;
    if (talas_http_read_json_body(req, MAX_BODY, 0, quality_member, &b) != 0)
        return 0;
    if (b.p.bad_field != NULL) {
        send_field_error(req, b.p.bad_field, b.p.bad_reason);
        return 0;
    }
    if (b.quality[0] == '\0') {
        send_field_error(req, "quality", "required");
        return 0;
    }
    /* the change may run after this frame is gone: its data in the pool */
    g = pending_new(ctx, req);
    q = h2o_mem_alloc_pool(&req->pool, sizeof(*q));
    q->quality = h2o_strdup(&req->pool, b.quality, SIZE_MAX).base;
    g->body = q;
    g->op = talas_state_session_update(ctx, id, apply_quality, q, on_read, g);
    return 0;
}

/* A metrics report: what was given, over what the session had. */
struct metrics_body {
    struct parse p;
    struct talas_performance_metrics m;
    unsigned given; /* 1 << index in metric_names */
    struct talas_adaptive_advice advice;
    char recommended[TALAS_SESSION_QUALITY_SIZE];
};

enum { M_BUFFER, M_SPEED, M_LOSS, M_LATENCY, M_REBUFFERS, M_REBUFFER_MS, M_SWITCHES };
static const char *const metric_names[] = {
    [M_BUFFER] = "buffer_health_percentage", [M_SPEED] = "download_speed_kbps",
    [M_LOSS] = "packet_loss_percentage",     [M_LATENCY] = "latency_ms",
    [M_REBUFFERS] = "rebuffer_count",        [M_REBUFFER_MS] = "rebuffer_duration_ms",
    [M_SWITCHES] = "quality_switches",
};

static int metrics_member(const char *key, const struct talas_json_value *v, void *arg)
{
    struct metrics_body *b = arg;
    size_t i;
    int rc = 0;

    for (i = 0; i < sizeof(metric_names) / sizeof(metric_names[0]); i++)
        if (strcmp(key, metric_names[i]) == 0)
            break;
    switch (i) {
    case M_BUFFER:
        rc = read_percentage(v, &b->m.buffer_health_percentage);
        break;
    case M_LOSS:
        rc = read_percentage(v, &b->m.packet_loss_percentage);
        break;
    case M_SPEED:
        rc = read_count(v, U32_MAX_JSON, &b->m.download_speed_kbps);
        break;
    case M_LATENCY:
        rc = read_count(v, U32_MAX_JSON, &b->m.latency_ms);
        break;
    case M_REBUFFERS:
        rc = v->type == TALAS_JSON_INTEGER ? read_count(v, U32_MAX_JSON, &b->m.rebuffer_count) : -1;
        break;
    case M_REBUFFER_MS:
        rc = read_count(v, U32_MAX_JSON, &b->m.rebuffer_duration_ms);
        break;
    case M_SWITCHES: {
        uint32_t ignored; /* the server counts switches itself */
        rc = v->type == TALAS_JSON_INTEGER ? read_count(v, U32_MAX_JSON, &ignored) : -1;
        break;
    }
    default:
        return bad(&b->p, "", key, "unknown field");
    }
    if (rc != 0)
        return bad(&b->p, "", key,
                   i == M_BUFFER || i == M_LOSS          ? "must be a number from 0 to 100"
                   : i == M_REBUFFERS || i == M_SWITCHES ? "must be an integer from 0 to 4294967295"
                                                         : "must be a number from 0 to 4294967295");
    b->given |= 1u << i;
    return 0;
}

static int apply_metrics(struct talas_session *s, struct talas_session_counters *d, void *arg)
{
    struct metrics_body *b = arg;
    const struct talas_config *conf = b->p.conf;
    struct talas_performance_metrics m = s->performance_metrics;
    struct talas_quality_monitor monitor;

    /* fields not reported keep their last value */
#define TAKE(bit, field)                                                                                     \
    if (b->given & (1u << (bit)))                                                                            \
        m.field = b->m.field;
    TAKE(M_BUFFER, buffer_health_percentage)
    TAKE(M_SPEED, download_speed_kbps)
    TAKE(M_LOSS, packet_loss_percentage)
    TAKE(M_LATENCY, latency_ms)
    TAKE(M_REBUFFERS, rebuffer_count)
    TAKE(M_REBUFFER_MS, rebuffer_duration_ms)
#undef TAKE
    m.reports++;
    talas_adaptive_monitor(conf->transcode_profiles, conf->transcode_profile_count, s, &m, &monitor,
                           &b->advice);
    if (m.rebuffer_count > s->performance_metrics.rebuffer_count)
        d->rebuffers += m.rebuffer_count - s->performance_metrics.rebuffer_count;
    if (b->advice.sw != TALAS_SWITCH_NONE) {
        snprintf(s->current_quality, sizeof(s->current_quality), "%s",
                 conf->transcode_profiles[b->advice.profile].name);
        m.quality_switches++;
        d->quality_switches++;
    }
    snprintf(b->recommended, sizeof(b->recommended), "%s", conf->transcode_profiles[b->advice.profile].name);
    s->performance_metrics = m;
    s->monitor = monitor;
    return 0;
}

static void on_metrics(void *data, const struct talas_state_session_result *r)
{
    struct pending *g = data;
    const struct talas_worker_ctx *ctx = g->ctx;
    const struct talas_config *conf = ctx->conf;
    const struct metrics_body *b = g->body;
    const struct talas_session *s = r->session;
    h2o_req_t *req = g->req;
    struct talas_buf body = {0};
    struct talas_json json;
    char *master = NULL, *stream = NULL, *error = NULL;

    g->op = NULL;
    if (r->outcome == TALAS_STATE_SESSION_NOT_FOUND) {
        send_not_found(req);
        return;
    }
    if (r->outcome != TALAS_STATE_SESSION_OK) {
        send_store_error(req, r);
        return;
    }
    /* a progressive player needs the new quality's URL */
    if (b->advice.sw != TALAS_SWITCH_NONE &&
        session_urls(ctx, s->track_id, s->current_quality, s->client_id, &master, &stream, &error) != 0) {
        log_error("%s: minting URLs for %s failed: %s", __func__, s->track_id, error);
        free(error);
    }

    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "session_id");
    talas_json_string(&json, s->session_id);
    talas_json_key(&json, "recommended_quality");
    talas_json_string(&json, b->recommended);
    talas_json_key(&json, "switch");
    talas_json_string(&json, talas_adaptive_switch_name(b->advice.sw));
    talas_json_key(&json, "reason");
    talas_json_string(&json, b->advice.reason);
    talas_json_key(&json, "current_quality");
    talas_json_string(&json, s->current_quality);
    talas_json_key(&json, "quality_switches");
    talas_json_uint(&json, s->performance_metrics.quality_switches);
    talas_json_key(&json, "profile");
    talas_http_profile_json(&json, &conf->transcode_profiles[b->advice.profile]);
    if (stream != NULL) {
        talas_json_key(&json, "stream_url");
        talas_json_string(&json, stream);
    }
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, 200, &body);
    free(master);
    free(stream);
}

static int post_metrics(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id)
{
    struct metrics_body *mb;
    struct pending *g;

    /* the change may run after this frame is gone: the body in the pool */
    mb = h2o_mem_alloc_pool(&req->pool, sizeof(*mb));
    memset(mb, 0, sizeof(*mb));
    mb->p.conf = ctx->conf;
    mb->p.req = req;
    if (talas_http_read_json_body(req, MAX_BODY, 0, metrics_member, mb) != 0)
        return 0;
    if (mb->p.bad_field != NULL) {
        send_field_error(req, mb->p.bad_field, mb->p.bad_reason);
        return 0;
    }
    /* the monitor cannot judge a report without these two */
    if (!(mb->given & (1u << M_BUFFER))) {
        send_field_error(req, metric_names[M_BUFFER], "required");
        return 0;
    }
    if (!(mb->given & (1u << M_SPEED))) {
        send_field_error(req, metric_names[M_SPEED], "required");
        return 0;
    }
    g = pending_new(ctx, req);
    g->body = mb;
    g->op = talas_state_session_update(ctx, id, apply_metrics, mb, on_metrics, g);
    return 0;
}

int talas_session_api_session(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *rest,
                              size_t len)
{
    const char *slash = memchr(rest, '/', len);
    size_t id_len = slash != NULL ? (size_t)(slash - rest) : len;
    char id[TALAS_SESSION_ID_LEN + 1];

    if (!talas_session_id_valid(rest, id_len)) {
        send_not_found(req);
        return 0;
    }
    memcpy(id, rest, id_len);
    id[id_len] = '\0';
    if (slash == NULL) {
        if (talas_http_method_is(req, "GET") || talas_http_method_is(req, "HEAD"))
            return get_session(ctx, req, id);
        if (talas_http_method_is(req, "DELETE"))
            return end_session(ctx, req, id);
        return reject_method(req, "GET, HEAD, DELETE");
    }
    if (h2o_memis(slash, len - id_len, H2O_STRLIT("/quality"))) {
        if (!talas_http_method_is(req, "PUT"))
            return reject_method(req, "PUT");
        return put_quality(ctx, req, id);
    }
    if (h2o_memis(slash, len - id_len, H2O_STRLIT("/metrics"))) {
        if (!talas_http_method_is(req, "POST"))
            return reject_method(req, "POST");
        return post_metrics(ctx, req, id);
    }
    talas_http_send_error(req, 404, "not_found", "no such resource");
    return 0;
}

/* ---------------------------------------------------------------- stats */

struct stats {
    uint64_t now_ms, timeout_ms;
    const struct talas_config *conf;
    uint64_t *per_quality; /* by profile index; [count]: profiles no longer configured */
    uint64_t active, reporting, rebuffers, rebuffer_ms, switches;
    double buffer_health_sum;
};

static int stats_one(const struct talas_session *s, void *arg)
{
    struct stats *st = arg;
    const struct talas_config_profile *p;

    if (talas_session_expired(s, st->now_ms, st->timeout_ms))
        return 0;
    st->active++;
    p = talas_adaptive_find(st->conf->transcode_profiles, st->conf->transcode_profile_count,
                            s->current_quality);
    st->per_quality[p != NULL ? (size_t)(p - st->conf->transcode_profiles)
                              : st->conf->transcode_profile_count]++;
    if (s->performance_metrics.reports > 0) {
        st->reporting++;
        st->buffer_health_sum += s->performance_metrics.buffer_health_percentage;
    }
    st->rebuffers += s->performance_metrics.rebuffer_count;
    st->rebuffer_ms += s->performance_metrics.rebuffer_duration_ms;
    st->switches += s->performance_metrics.quality_switches;
    return 0;
}

/* The statistics document, with the HLS segments served from the cache
 * and encoded for their request (SEGMENTS). */
static void stats_json(struct talas_json *json, const struct stats *st,
                       const struct talas_session_counters *c, const uint64_t segments[2])
{
    const struct talas_config *conf = st->conf;

    talas_json_object_begin(json);
    talas_json_key(json, "active_sessions");
    talas_json_uint(json, st->active);
    talas_json_key(json, "max_sessions");
    talas_json_uint(json, (uint64_t)conf->streaming_max_sessions);
    talas_json_key(json, "sessions_per_quality");
    talas_json_object_begin(json);
    for (size_t i = 0; i < conf->transcode_profile_count; i++) {
        talas_json_key(json, conf->transcode_profiles[i].name);
        talas_json_uint(json, st->per_quality[i]);
    }
    if (st->per_quality[conf->transcode_profile_count] > 0) {
        talas_json_key(json, "(removed)");
        talas_json_uint(json, st->per_quality[conf->transcode_profile_count]);
    }
    talas_json_object_end(json);
    talas_json_key(json, "reporting_sessions");
    talas_json_uint(json, st->reporting);
    talas_json_key(json, "average_buffer_health_percentage");
    if (st->reporting > 0)
        talas_json_double(json,
                          (double)(int64_t)(st->buffer_health_sum / (double)st->reporting * 100 + 0.5) / 100);
    else
        talas_json_null(json);
    talas_json_key(json, "rebuffer_count");
    talas_json_uint(json, st->rebuffers);
    talas_json_key(json, "rebuffer_duration_ms");
    talas_json_uint(json, st->rebuffer_ms);
    talas_json_key(json, "quality_switches");
    talas_json_uint(json, st->switches);
    talas_json_key(json, "totals");
    talas_json_object_begin(json);
    talas_json_key(json, "sessions_created");
    talas_json_uint(json, c->created);
    talas_json_key(json, "sessions_ended");
    talas_json_uint(json, c->ended);
    talas_json_key(json, "sessions_expired");
    talas_json_uint(json, c->expired);
    talas_json_key(json, "quality_switches");
    talas_json_uint(json, c->quality_switches);
    talas_json_key(json, "rebuffers");
    talas_json_uint(json, c->rebuffers);
    talas_json_object_end(json);
    talas_json_key(json, "hls_segments");
    talas_json_object_begin(json);
    talas_json_key(json, "cache_hits");
    talas_json_uint(json, segments[0]);
    talas_json_key(json, "cache_misses");
    talas_json_uint(json, segments[1]);
    talas_json_key(json, "cache_hit_ratio");
    if (segments[0] + segments[1] > 0)
        talas_json_double(
            json,
            (double)(int64_t)((double)segments[0] / (double)(segments[0] + segments[1]) * 1000 + 0.5) / 1000);
    else
        talas_json_null(json);
    talas_json_object_end(json);
    talas_json_object_end(json);
}

static void on_stats(void *data, const struct talas_state_session_result *r)
{
    struct pending *g = data;
    const struct talas_config *conf = g->ctx->conf;
    h2o_req_t *req = g->req;
    struct stats st = {talas_wall_ms(), conf->streaming_session_timeout_ms, conf, NULL, 0, 0, 0, 0, 0, 0};
    uint64_t segments[2] = {0, 0};
    struct talas_buf body = {0};
    struct talas_json json;
    MDB_txn *txn;
    int rc;

    g->op = NULL;
    if (r->outcome != TALAS_STATE_SESSION_OK) {
        send_store_error(req, r);
        return;
    }
    /* the HLS segments this node served: its own LMDB's counters */
    if ((rc = talas_storage_read_begin(g->ctx->storage, &txn)) == 0) {
        rc = talas_storage_counters_get(g->ctx->storage, txn, TALAS_HLS_COUNTERS, segments, 2);
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        send_storage_error(req, "reading the sessions", rc);
        return;
    }
    st.per_quality = h2o_mem_alloc_pool(&req->pool, (conf->transcode_profile_count + 1) * sizeof(uint64_t));
    memset(st.per_quality, 0, (conf->transcode_profile_count + 1) * sizeof(uint64_t));
    for (size_t i = 0; i < r->count; i++)
        stats_one(&r->sessions[i], &st);
    talas_json_init(&json, &body);
    stats_json(&json, &st, r->totals, segments);
    talas_http_send_json_doc(req, 200, &body);
}

int talas_session_api_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req)
{
    struct pending *g;

    if (talas_http_reject_unless_get(req))
        return 0;
    g = pending_new(ctx, req);
    g->op = talas_state_session_stats(ctx, on_stats, g);
    return 0;
}

/* ---------------------------------------------------------------- sweep */

void talas_session_api_tick(const struct talas_worker_ctx *ctx)
{
    talas_state_session_tick(ctx);
}
