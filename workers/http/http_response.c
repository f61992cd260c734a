/*
 * http_response.c - JSON answers, errors, request headers and query
 * parameters for the handlers.
 *
 * Entry points are declared in http_response.h. Nothing here logs. Who may
 * ask for a track is decided in http_authorize.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http/http_parse.h"
#include "http/http_response.h"
#include "core/json.h"
#include "store/quota.h"

const char *talas_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 308: return "Permanent Redirect";
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

void talas_http_send_body(h2o_req_t *req, int status, const char *type, const struct talas_buf *body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t buf = h2o_strdup(&req->pool, body->data ? body->data : "", body->len);

    req->res.status = status;
    req->res.reason = talas_http_reason(status);
    req->res.content_length = buf.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_start_response(req, &generator);
    if (talas_http_method_is(req, "HEAD"))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

void talas_http_send_json(h2o_req_t *req, int status, const struct talas_buf *body)
{
    talas_http_send_body(req, status, "application/json; charset=utf-8", body);
}

void talas_http_send_json_doc(h2o_req_t *req, int status, struct talas_buf *body)
{
    talas_buf_append(body, "\n", 1);
    talas_http_send_json(req, status, body);
    talas_buf_free(body);
}

int talas_http_read_json_body(h2o_req_t *req, size_t max, int flags, talas_json_member_fn *fn, void *arg)
{
    const char *error = NULL;
    int rc;

    if (req->entity.len > max) {
        talas_http_send_error(req, 413, "body_too_large", "the body exceeds %zu bytes", max);
        return -1;
    }
    rc = (flags & TALAS_HTTP_BODY_NESTED)
             ? talas_json_read_object_nested(req->entity.base, req->entity.len, fn, arg, &error)
             : talas_json_read_object(req->entity.base, req->entity.len, fn, arg, &error);
    if (rc != -1)
        return 0;
    if (error == talas_json_error_utf8)
        talas_http_send_error(req, 400, "invalid_utf8", "the body's strings must be valid UTF-8");
    else if (error == talas_json_error_nul)
        talas_http_send_error(req, 400, "nul_character", "the body's strings must not contain NUL (U+0000)");
    else
        talas_http_send_error(req, 400, "invalid_json", "the body must be a JSON object: %s",
                              error != NULL ? error : "a member could not be read");
    return -1;
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
    talas_http_send_json_doc(req, status, &body);
}

void talas_http_send_refusal(h2o_req_t *req, int status, const struct talas_quota_refusal *r)
{
    struct talas_buf body = {0};
    struct talas_json json;
    char message[256];

    snprintf(message, sizeof(message), "limit %s (%llu) reached", r->limit, (unsigned long long)r->max);
    talas_json_init(&json, &body);
    talas_json_object_begin(&json);
    talas_json_key(&json, "error");
    talas_json_object_begin(&json);
    talas_json_key(&json, "code");
    talas_json_string(&json, "quota_exceeded");
    talas_json_key(&json, "limit");
    talas_json_string(&json, r->limit);
    talas_json_key(&json, "max");
    talas_json_uint(&json, r->max);
    talas_json_key(&json, "message");
    talas_json_string(&json, message);
    talas_json_object_end(&json);
    talas_json_object_end(&json);
    talas_http_send_json_doc(req, status, &body);
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

const h2o_iovec_t *talas_http_header(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);

    return i == -1 ? NULL : &req->headers.entries[i].value;
}

char *talas_http_put_u64(char *p, uint64_t v, unsigned base)
{
    char tmp[20], *t = tmp + sizeof(tmp);

    do {
        *--t = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    memcpy(p, t, (size_t)(tmp + sizeof(tmp) - t));
    return p + (tmp + sizeof(tmp) - t);
}

char *talas_http_put_etag_start(char *p, int64_t mtime, uint64_t size)
{
    *p++ = '"';
    p = talas_http_put_u64(p, (uint64_t)mtime, 16);
    *p++ = '-';
    return talas_http_put_u64(p, size, 16);
}

void talas_http_content_range(h2o_req_t *req, uint64_t start, uint64_t end, uint64_t total)
{
    char *cr = h2o_mem_alloc_pool(&req->pool, sizeof("bytes -/") + 3 * 20), *p = cr;

    memcpy(p, "bytes ", 6);
    p += 6;
    if (end == 0) {
        *p++ = '*';
    } else {
        p = talas_http_put_u64(p, start, 10);
        *p++ = '-';
        p = talas_http_put_u64(p, end - 1, 10);
    }
    *p++ = '/';
    p = talas_http_put_u64(p, total, 10);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr, (size_t)(p - cr));
}

char *talas_http_client_ip(h2o_req_t *req, char buf[64])
{
    struct sockaddr_storage ss;
    socklen_t len;

    strcpy(buf, "-");
    if (req->conn->callbacks->get_peername == NULL ||
        (len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss)) == 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        /* inet_ntop's form, without its sprintf: once per request */
        const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
        char *p = buf;
        for (int i = 0; i < 4; i++) {
            if (a[i] >= 100)
                *p++ = (char)('0' + a[i] / 100);
            if (a[i] >= 10)
                *p++ = (char)('0' + a[i] / 10 % 10);
            *p++ = (char)('0' + a[i] % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
    } else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, 64);
    return buf;
}
