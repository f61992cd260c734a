/*
 * http_response.h - helpers every handler uses to answer: JSON bodies, JSON
 * errors, reason phrases and query-string parameters.
 *
 * Everything a helper allocates lives in the request's pool (h2o_mem_pool_t)
 * and is released with the request.
 */
#ifndef TALAS_HTTP_RESPONSE_H
#define TALAS_HTTP_RESPONSE_H

#include <h2o.h>

#include "core/token.h"
#include "core/util.h"

/* The standard reason phrase of STATUS ("Not Found"), or "Unknown". */
const char *talas_http_reason(int status);

/* Sends STATUS with BODY (copied; the caller keeps ownership of BODY) as
 * application/json; charset=utf-8, with a Content-Length. HEAD gets the
 * headers only. */
void talas_http_send_json(h2o_req_t *req, int status, const struct talas_buf *body);

/* Sends {"error":{"code":CODE,"message":MESSAGE}} with STATUS. */
void talas_http_send_error(h2o_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

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

/*
 * The preamble of every /{route}/{id} handler: answers 405 unless the method
 * is GET or HEAD, 404 unless ID (LEN bytes) has the form of a track id, and
 * returns -1 when it answered; else copies the id, NUL-terminated, to ID_R
 * (TALAS_TRACK_ID_LEN + 1 bytes) and returns 0.
 */
int talas_http_track_request(h2o_req_t *req, const char *id, size_t len, char *id_r);

/* Finds request header NAME (a lower-case h2o token); NULL when absent. */
const h2o_iovec_t *talas_http_header(h2o_req_t *req, const h2o_token_t *token);

/*
 * The access check of every media route (/stream, /preview, /hls playlists
 * and segments), to call before anything is opened, looked up or encoded.
 * When auth.required is false it returns 0 and sets claims_r->exp to 0 (no
 * token checked; a token sent anyway is ignored). Otherwise it verifies the
 * request's token (talas_http_token) for TRACK and KIND and the client's
 * address: 0 and the claims when it passes; else it has answered 401
 * (missing or invalid token, with WWW-Authenticate: Bearer) or 403 (a valid
 * token for another track, scope or address), logged one line with the
 * reason and the client address (never the token), and returns -1.
 * CLAIMS_R must not be NULL.
 */
int talas_http_authorize(h2o_req_t *req, const char *track, enum talas_token_kind kind,
                         struct talas_token_claims *claims_r);

/*
 * The request's token: ?token= in the query or "Authorization: Bearer".
 * Returns 1 with it in *token_r (in the request pool), 0 when there is none,
 * -1 when the request is ambiguous (the two places disagree, or ?token=
 * appears twice) or malformed, with the reason in *reason_r. HLS playlists
 * append "?token=" and this value to every URL they list, so that players
 * that cannot send headers work unchanged.
 */
int talas_http_token(h2o_req_t *req, h2o_iovec_t *token_r, const char **reason_r);

/* The Cache-Control value of a successful media answer: "public, ..." when
 * CLAIMS->exp is 0 (no token checked), else "private, ..." so that no
 * shared cache hands one user's response to another. In the request pool. */
h2o_iovec_t talas_http_media_cache_control(h2o_req_t *req, const struct talas_token_claims *claims);

/* The client's address as text ("192.0.2.1", "::1") into BUF; "-" when
 * unknown. Returns BUF. */
char *talas_http_client_ip(h2o_req_t *req, char buf[64]);

#endif
