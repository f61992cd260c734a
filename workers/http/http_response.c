/*
 * http_response.c - JSON answers, errors and query parsing for the handlers.
 *
 * Entry points are declared in http_response.h. Nothing here logs but the
 * access check (talas_http_authorize), which logs every refusal with its
 * reason: the access log records every answer, not why it was refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "store/catalog.h"
#include "core/config.h"
#include "http/http_parse.h"
#include "http/http_response.h"
#include "core/json.h"
#include "core/log.h"
#include "worker/worker.h"

const char *talas_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void talas_http_send_json(h2o_req_t *req, int status, const struct talas_buf *body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_strdup(&req->pool, body->data ? body->data : "", body->len);

    req->res.status = status;
    req->res.reason = talas_http_reason(status);
    req->res.content_length = buf.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (talas_http_method_is(req, "HEAD"))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void talas_http_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
{
    struct talas_buf body = {0};
    struct talas_json json;
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "error");
    talas_json_object_begin(&json);
    talas_json_key(&json, "code");
    talas_json_string(&json, code);
    talas_json_key(&json, "message");
    talas_json_string(&json, message);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_buf_append(&body, "\n", 1);
    talas_http_send_json(req, status, &body);
    talas_buf_free(&body);
}

int talas_http_method_is(h2o_req_t *req, const char *method)
{
    size_t len = strlen(method);

    return req->method.len == len && memcmp(req->method.base, method, len) == 0;
}

int talas_http_reject_unless_get(h2o_req_t *req)
{
    if (talas_http_method_is(req, "GET") || talas_http_method_is(req, "HEAD"))
        return 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
    talas_http_send_error(req, 405, "method_not_allowed", "%.*s is not allowed here", (int)req->method.len,
                          req->method.base);
    return 1;
}

int talas_http_query_param(h2o_req_t *req, const char *name, h2o_iovec_t *value_r)
{
    const char *raw;
    size_t raw_len;
    ssize_t n;
    char *out;

    if (req->query_at == SIZE_MAX)
        return 0;
    if (talas_http_query_find(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, name,
                              &raw, &raw_len) == 0)
        return 0;
    out = h2o_mem_alloc_pool(&req->pool, raw_len + 1);
    /* a NUL would end the value early for every string function that
     * reads it: "t=1%00x" would read as "t=1" */
    if ((n = talas_http_percent_decode(raw, raw_len, out)) == -1 || memchr(out, '\0', (size_t)n) != NULL)
        return -1;
    *value_r = h2o_iovec_init(out, (size_t)n);
    return 1;
}

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

const h2o_iovec_t *talas_http_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);

    return i == -1 ? NULL : &req->headers.entries[i].value;
}

char *talas_http_client_ip(h2o_req_t *req, char buf[64])
{
    struct sockaddr_storage ss;
    socklen_t len;

    strcpy(buf, "-");
    if (req->conn->callbacks->get_peername == NULL ||
        (len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss)) == 0)
        return buf;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, 64);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, 64);
    return buf;
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
                            : strcmp(reason, "no token") == 0 ? "Bearer realm=\"talas\""
                                                              : "Bearer realm=\"talas\", error=\"invalid_token\"";

    /* the normalised path: no query, so never the token */
    log_warn("auth: %d for %.*s %.*s from %s: %s", status, (int)req->method.len, req->method.base,
             (int)(req->path_normalized.len > 200 ? 200 : req->path_normalized.len), req->path_normalized.base, ip,
             reason);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, challenge, strlen(challenge));
    if (status == 403)
        talas_http_send_error(req, 403, "forbidden", "%s", reason);
    else
        talas_http_send_error(req, 401, strcmp(reason, "no token") == 0 ? "unauthorized" : "invalid_token", "%s",
                              strcmp(reason, "no token") == 0 ? "a token is required" : reason);
}

int talas_http_authorize(h2o_req_t *req, const char *track, enum talas_token_kind kind,
                         struct talas_token_claims *claims_r)
{
    const char *reason = NULL;
    h2o_iovec_t token = {NULL, 0};
    char ip[64];
    int found;

    memset(claims_r, 0, sizeof(*claims_r));
    if (!talas_worker_config()->auth_required)
        return 0;
    talas_http_client_ip(req, ip);
    if ((found = talas_http_token(req, &token, &reason)) == -1) {
        refuse(req, 401, reason, ip);
        return -1;
    }
    switch (talas_token_verify(talas_worker_auth(), token.base, found ? token.len : 0, track, kind, ip, claims_r,
                              &reason)) {
    case TALAS_TOKEN_OK:
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
