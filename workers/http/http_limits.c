/*
 * http_limits.c - the first handler of every path: refuses requests over
 * the configured limits before any work is done for them.
 *
 * Entry point: talas_limits_register. h2o 2.2.5 bounds a request's headers
 * only as a whole (about 400 KB), so a single 100 KB header would reach the
 * handlers; nginx refuses such requests (431-style) at 8 KB per line by
 * default, and so does Talas, at http.max_header_size for all of them.
 * It also counts each HTTP/2 request against its connection's stream
 * churn limits (conn_limits.c).
 */
#include "http/conn_limits.h"
#include "http/http_limits.h"
#include "http/http_response.h"

struct limits_handler {
    h2o_handler_t super;
    size_t max_header_size;
};

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    struct limits_handler *self = (void *)_self;
    size_t size = req->input.method.len + req->input.path.len + sizeof(" HTTP/1.1\r\n");

    if (talas_conn_count_request(req) != 0) {
        /* the connection is shut down: nobody reads this */
        talas_http_send_error(
            req, 429, "too_many_streams",
            "this connection opens or cancels streams too fast (http2.max_streams_per_second, "
            "http2.max_resets_per_second)");
        return 0;
    }
    for (size_t i = 0; i < req->headers.size; i++)
        size += req->headers.entries[i].name->len + req->headers.entries[i].value.len + sizeof(": \r\n") - 1;
    if (size <= self->max_header_size)
        return -1; /* next handler */
    talas_http_send_error(req, 431, "request_header_too_large",
                          "the request line and headers exceed %zu bytes (http.max_header_size)",
                          self->max_header_size);
    return 0;
}

void talas_limits_register(h2o_pathconf_t *pathconf, const struct talas_config *conf)
{
    struct limits_handler *self = (void *)h2o_create_handler(pathconf, sizeof(*self));

    self->super.on_req = on_req;
    self->max_header_size = (size_t)conf->http_max_header_size;
}
