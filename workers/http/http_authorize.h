/*
 * http_authorize.h - who may ask for a track: the preamble of every
 * /{route}/{id} handler and the token check of the media routes; who
 * calls an API open to the backend and to a user for himself.
 *
 * What these functions allocate lives in the request's pool.
 */
#ifndef TALAS_HTTP_AUTHORIZE_H
#define TALAS_HTTP_AUTHORIZE_H

#include <h2o.h>

#include "core/token.h"
#include "worker/worker_ctx.h"

/*
 * The preamble of every /{route}/{id} handler: answers 405 unless the method
 * is GET or HEAD, 404 unless ID (LEN bytes) has the form of a track id, and
 * returns -1 when it answered; else copies the id, NUL-terminated, to ID_R
 * (TALAS_TRACK_ID_LEN + 1 bytes) and returns 0.
 */
int talas_http_track_request(h2o_req_t *req, const char *id, size_t len, char *id_r);

/*
 * The access check of every media route (/stream, /preview, /hls playlists
 * and segments), to call before anything is opened, looked up or encoded.
 * When CTX->conf->auth.required is false it returns 0 and sets claims_r->exp to 0 (no
 * token checked; a token sent anyway is ignored). Otherwise it verifies the
 * request's token (talas_http_token) for TRACK and KIND and the client's
 * address: 0 and the claims when it passes; else it has answered 401
 * (missing or invalid token, with WWW-Authenticate: Bearer) or 403 (a valid
 * token for another track, scope or address), logged one line with the
 * reason and the client address (never the token), and returns -1.
 * CLAIMS_R must not be NULL. A share token (claims_r->share set, minted
 * by POST /s/{id}/unlock) is checked against its link on every request,
 * with or without auth.required (talas_shares_check: 404, 410 or 403 with
 * the link's JSON error); KIND with TALAS_TOKEN_ORIGINAL asks for the
 * link's download permission rather than its stream one.
 */
/*
 * Answers STATUS with the JSON error CODE and REASON for a request refused
 * for who is asking (no or wrong credentials: 401, with the Bearer
 * challenge; not allowed: 403), and logs it (warn: the method, the
 * normalised path, never the token, the address, the reason).
 */
void talas_http_refuse(h2o_req_t *req, int status, const char *code, const char *reason);

/*
 * The caller of an API that the backend or a user may call for himself
 * (shares, user settings): returns 1 for the backend key in
 * Authorization; 0 for a valid token, its claims in *CLAIMS_R (zeroed
 * first); -1 once it answered (talas_http_refuse): 401 "unauthorized"
 * with REQUIRED when there is no token, 401 "invalid_token" or 403
 * "forbidden" for one that does not verify.
 */
int talas_http_backend_or_token(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *required,
                                struct talas_token_claims *claims_r);

int talas_http_authorize(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *track,
                         enum talas_token_kind kind, struct talas_token_claims *claims_r);

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

#endif
