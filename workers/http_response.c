/*
 * http_response.c - JSON answers, errors and query parsing for the handlers.
 *
 * Entry points are declared in http_response.h. Nothing here logs: the
 * access log records every answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "http_response.h"
#include "json.h"

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

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int talas_http_query_param(h2o_req_t *req, const char *name, h2o_iovec_t *value_r)
{
    size_t name_len = strlen(name);
    const char *p, *end;

    if (req->query_at == SIZE_MAX)
        return 0;
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
        const char *pair_end = amp != NULL ? amp : end;

        eq = memchr(p, '=', (size_t)(pair_end - p));
        if ((size_t)((eq != NULL ? eq : pair_end) - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *v = eq != NULL ? eq + 1 : pair_end;
            char *out = h2o_mem_alloc_pool(&req->pool, (size_t)(pair_end - v) + 1);
            size_t n = 0;
            for (; v < pair_end; v++) {
                if (*v == '%') {
                    int hi, lo;
                    if (pair_end - v < 3 || (hi = hex_value(v[1])) < 0 || (lo = hex_value(v[2])) < 0)
                        return -1;
                    out[n++] = (char)(hi << 4 | lo);
                    v += 2;
                } else {
                    out[n++] = *v == '+' ? ' ' : *v;
                }
            }
            out[n] = '\0';
            *value_r = h2o_iovec_init(out, n);
            return 1;
        }
        p = pair_end + 1;
    }
    return 0;
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
