/*
 * http_authorize.c - who may ask for a track: the preamble of the track
 * routes and the token check of the media routes; who calls an API open
 * to the backend and to a user for himself (http_shares.c,
 * http_users.c).
 *
 * Entry points are declared in http_authorize.h. The token comes from
 * ?token= or "Authorization: Bearer" (never both, unless they agree) and
 * is verified with the worker's verifier (ctx->token, core/token.c) for the
 * track, the route's scope and the client's address.
 *
 * Logs: every refusal with its reason and the client's address, never the
 * token: the access log records every answer, not why it was refused.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/catalog.h"
#include "http/http_authorize.h"
#include "http/http_parse.h"
#include "http/http_response.h"
#include "http/http_shares.h"

int talas_http_track_request(h2o_req_t *req, const char *id, size_t len, char *id_r)
{
    if (talas_http_reject_unless_get(req))
        return -1;
    if (!talas_track_id_valid(id, len)) {
        talas_http_send_error(req, 404, "not_found", "no such track");
        return -1;
    }
    memcpy(id_r, id, len);
    id_r[len] = '\0';
    return 0;
}

/* Counts the "token" parameters of the query; the first one's raw value. */
static int query_tokens(h2o_req_t *req, h2o_iovec_t *first_r)
{
    const char *raw;
    size_t raw_len;
    int found;

    if (req->query_at == SIZE_MAX)
        return 0;
    found = talas_http_query_find(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1,
                                  "token", &raw, &raw_len);
    if (found > 0)
        *first_r = h2o_iovec_init(raw, raw_len);
    return found;
}

int talas_http_token(h2o_req_t *req, h2o_iovec_t *token_r, const char **reason_r)
{
    h2o_iovec_t q = {NULL, 0}, h = {NULL, 0};
    int nq = query_tokens(req, &q), nh = 0;
    ssize_t i = -1;

    if (nq > 1) {
        *reason_r = "token given more than once in the query";
        return -1;
    }
    /* base64url and dots need no percent-encoding; anything encoded is not a token */
    if (nq == 1 && memchr(q.base, '%', q.len) != NULL) {
        *reason_r = "malformed token (percent-encoded)";
        return -1;
    }
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i)) != -1) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        const char *t;
        size_t t_len;
        if (talas_http_bearer(v->base, v->len, &t, &t_len)) {
            if (++nh > 1) {
                *reason_r = "more than one Authorization: Bearer header";
                return -1;
            }
            h = h2o_iovec_init(t, t_len);
        }
    }
    if (nq == 1 && nh == 1 && !h2o_memis(q.base, q.len, h.base, h.len)) {
        *reason_r = "the tokens in the query and in Authorization differ";
        return -1;
    }
    if (nq == 0 && nh == 0)
        return 0;
    *token_r = nq == 1 ? q : h;
    return 1;
}

static void refuse(h2o_req_t *req, int status, const char *reason, const char *ip)
{
    const char *challenge = status == 403 ? "Bearer realm=\"talas\", error=\"insufficient_scope\""
                            : strcmp(reason, "no token") == 0
                                ? "Bearer realm=\"talas\""
                                : "Bearer realm=\"talas\", error=\"invalid_token\"";

    /* the normalised path: no query, so never the token */
    log_warn("auth: %d for %.*s %.*s from %s: %s", status, (int)req->method.len, req->method.base,
             (int)(req->path_normalized.len > 200 ? 200 : req->path_normalized.len),
             req->path_normalized.base, ip, reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge,
                   strlen(challenge));
    if (status == 403)
        talas_http_send_error(req, 403, "forbidden", "%s", reason);
    else
        talas_http_send_error(req, 401, strcmp(reason, "no token") == 0 ? "unauthorized" : "invalid_token",
                              "%s", strcmp(reason, "no token") == 0 ? "a token is required" : reason);
}

void talas_http_refuse(h2o_req_t *req, int status, const char *code, const char *reason)
{
    char ip[64];

    log_warn("auth: %d for %.*s %.*s from %s: %s", status, (int)req->method.len, req->method.base,
             (int)(req->path_normalized.len > 200 ? 200 : req->path_normalized.len),
             req->path_normalized.base, talas_http_client_ip(req, ip), reason);
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"talas\""));
    talas_http_send_error(req, status, code, "%s", reason);
}

int talas_http_authorize(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *track,
                         enum talas_token_kind kind, struct talas_token_claims *claims_r)
{
    const char *reason = NULL;
    h2o_iovec_t token = {NULL, 0};
    char ip[64];
    int found;

    enum talas_share_use use =
        kind & TALAS_TOKEN_ORIGINAL ? TALAS_SHARE_USE_DOWNLOAD : TALAS_SHARE_USE_STREAM;

    memset(claims_r, 0, sizeof(*claims_r));
    kind |= TALAS_TOKEN_SHARE;
    if (!ctx->conf->auth_required) {
        /* media are open to all; a share token is still its link's: a
         * revoked link fails, and its plays count (the peer's address is
         * formatted only then: an open stream's range costs no printf) */
        if (talas_http_token(req, &token, &reason) == 1 &&
            talas_token_verify(ctx->token, token.base, token.len, track, kind, talas_http_client_ip(req, ip),
                               claims_r, &reason) == TALAS_TOKEN_OK &&
            claims_r->share[0] != '\0')
            return talas_shares_check(ctx, req, claims_r, track, use);
        memset(claims_r, 0, sizeof(*claims_r));
        return 0;
    }
    talas_http_client_ip(req, ip);
    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        refuse(req, 401, reason, ip);
        return -1;
    }
    switch (talas_token_verify(ctx->token, token.base, found ? token.len : 0, track, kind, ip, claims_r,
                               &reason)) {
    case TALAS_TOKEN_OK:
        if (claims_r->share[0] != '\0')
            return talas_shares_check(ctx, req, claims_r, track, use);
        return 0;
    case TALAS_TOKEN_FORBIDDEN:
        refuse(req, 403, reason, ip);
        return -1;
    default:
        refuse(req, 401, reason, ip);
        return -1;
    }
}

h2o_iovec_t talas_http_media_cache_control(h2o_req_t *req, const struct talas_token_claims *claims)
{
    time_t left;
    char *v;

    if (claims->exp == 0)
        return h2o_iovec_init(H2O_STRLIT("public, max-age=3600"));
    /* the browser may keep it while the token lives; shared caches never */
    left = claims->exp - time(NULL);
    if (left < 0)
        left = 0;
    if (left > 3600)
        left = 3600;
    v = h2o_mem_alloc_pool(&req->pool, 48);
    return h2o_iovec_init(v, (size_t)snprintf(v, 48, "private, max-age=%ld", (long)left));
}

int talas_http_backend_or_token(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *required,
                                struct talas_token_claims *claims_r)
{
    const h2o_iovec_t *h = talas_http_header(req, H2O_TOKEN_AUTHORIZATION);
    enum talas_token_result r;
    const char *reason = NULL;
    h2o_iovec_t token;
    char ip[64];
    int found;

    memset(claims_r, 0, sizeof(*claims_r));
    if (h != NULL && talas_token_backend_key_ok(ctx->token, h->base, h->len))
        return 1;
    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    if (found == 0) {
        talas_http_refuse(req, 401, "unauthorized", required);
        return -1;
    }
    r = talas_token_verify(ctx->token, token.base, token.len, NULL, 0, talas_http_client_ip(req, ip),
                           claims_r, &reason);
    if (r == TALAS_TOKEN_FORBIDDEN) {
        talas_http_refuse(req, 403, "forbidden", reason);
        return -1;
    }
    if (r != TALAS_TOKEN_OK) {
        talas_http_refuse(req, 401, "invalid_token", reason);
        return -1;
    }
    return 0;
}
