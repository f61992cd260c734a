/*
 * subsonic_call.c - answering a Subsonic call handed to a module of the
 * API (subsonic_call.h): a document, an error, an empty ok.
 *
 * Entry points: talas_subsonic_send_doc, talas_subsonic_send_verror (also
 * http_subsonic.c's), talas_subsonic_call_error, talas_subsonic_call_empty.
 * Logs nothing.
 */
#include <stdio.h>

#include "http/http_response.h"
#include "subsonic/subsonic_call.h"

void talas_subsonic_send_doc(h2o_req_t *req, struct talas_subsonic_writer *w)
{
    talas_http_send_body(req, 200, talas_subsonic_content_type(w->format), &w->out);
    talas_buf_free(&w->out);
}

void talas_subsonic_send_verror(h2o_req_t *req, enum talas_subsonic_format format, const char *callback, int code,
                                const char *fmt, va_list ap)
{
    struct talas_subsonic_writer w;
    char message[512];

    vsnprintf(message, sizeof(message), fmt, ap);
    talas_subsonic_write_error(&w, format, callback, code, message);
    talas_subsonic_send_doc(req, &w);
}

void talas_subsonic_call_error(struct talas_subsonic_call *c, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    talas_subsonic_send_verror(c->req, c->format, c->callback, code, fmt, ap);
    va_end(ap);
}

void talas_subsonic_call_empty(struct talas_subsonic_call *c)
{
    struct talas_subsonic_writer w;

    talas_subsonic_writer_begin(&w, c->format, c->callback, 1);
    talas_subsonic_writer_end(&w);
    talas_subsonic_send_doc(c->req, &w);
}
