/*
 * http_response.h - helpers every handler uses to answer: JSON bodies, JSON
 * errors, reason phrases, request headers and query-string parameters.
 *
 * Everything a helper allocates lives in the request's pool (h2o_mem_pool_t)
 * and is released with the request.
 */
#ifndef TALAS_HTTP_RESPONSE_H
#define TALAS_HTTP_RESPONSE_H

#include <h2o.h>

#include "core/json_read.h"
#include "core/util.h"

/* The standard reason phrase of STATUS ("Not Found"), or "Unknown". */
const char *talas_http_reason(int status);

/* Answers STATUS with BODY (copied) as TYPE, not to be cached; no body
 * for HEAD. */
void talas_http_send_body(h2o_req_t *req, int status, const char *type, const struct talas_buf *body);
/* Sends STATUS with BODY (copied; the caller keeps ownership of BODY) as
 * application/json; charset=utf-8, with a Content-Length. HEAD gets the
 * headers only. */
void talas_http_send_json(h2o_req_t *req, int status, const struct talas_buf *body);
/* Ends the JSON document in BODY with a newline, sends it as
 * talas_http_send_json does, and frees BODY. */
void talas_http_send_json_doc(h2o_req_t *req, int status, struct talas_buf *body);

/* Sends {"error":{"code":CODE,"message":MESSAGE}} with STATUS. */
void talas_http_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Reads REQ's body, a JSON object of at most MAX bytes, giving each member
 * to FN(ARG); with TALAS_HTTP_BODY_NESTED a member may be an object or an
 * array one level down (talas_json_read_object_nested). Returns 0 when the
 * body was read, and then FN's refusal of a member, if any, is the
 * caller's to answer; -1 when the body was refused, the answer sent: 413
 * body_too_large, 400 invalid_utf8 or nul_character (a string that is not
 * valid UTF-8, or holds U+0000), 400 invalid_json (anything else).
 */
#define TALAS_HTTP_BODY_NESTED 0x1
int talas_http_read_json_body(h2o_req_t *req, size_t max, int flags, talas_json_member_fn *fn, void *arg);

/*
 * Answers a write that a user quota refused (store/quota.h): STATUS (429
 * for counts and rates, 507 for the user-data budget) with
 * {"error":{"code":"quota_exceeded","limit":LIMIT,"max":MAX,"message":…}},
 * the limit named by its configuration key.
 */
struct talas_quota_refusal;
void talas_http_send_refusal(h2o_req_t *req, int status, const struct talas_quota_refusal *r);

/* 1 when the request method is exactly METHOD. */
int talas_http_method_is(h2o_req_t *req, const char *method);
/* Answers 405 with an Allow header when the method is not GET or HEAD;
 * returns 1 when it did. */
int talas_http_reject_unless_get(h2o_req_t *req);

/*
 * Looks up query parameter NAME. Returns 1 and its percent-decoded value
 * ("+" read as a space) in *value_r (NUL-terminated, in the request pool),
 * 0 when absent, -1 when its encoding is malformed or it decodes to a
 * NUL byte (%00).
 */
int talas_http_query_param(h2o_req_t *req, const char *name, h2o_iovec_t *value_r);

/* Finds request header NAME (a lower-case h2o token); NULL when absent. */
const h2o_iovec_t *talas_http_header(h2o_req_t *req, const h2o_token_t *token);

/* The client's address as text ("192.0.2.1", "::1") into BUF; "-" when
 * unknown. Returns BUF. */
char *talas_http_client_ip(h2o_req_t *req, char buf[64]);

/* V in decimal (BASE 10) or lower-case hex (16) at P, at most 20 bytes and
 * no NUL; returns the end. The validators and Content-Range of every media
 * response are written so, not by snprintf: its format parsing was a
 * visible share of a 64 KiB range's CPU. */
char *talas_http_put_u64(char *p, uint64_t v, unsigned base);

/* Adds Content-Range for bytes [START, END) of a TOTAL-byte representation
 * ("bytes START-END-1/TOTAL"), or the unsatisfied form a 416 carries (an
 * asterisk for the range) when END is 0. */
/* Writes the opening of a media entity tag at P: a quote, then MTIME and
 * SIZE in hex ("mtime-size", nginx's form); returns the end. */
char *talas_http_put_etag_start(char *p, int64_t mtime, uint64_t size);

void talas_http_content_range(h2o_req_t *req, uint64_t start, uint64_t end, uint64_t total);

#endif
