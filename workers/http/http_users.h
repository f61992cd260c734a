/*
 * http_users.h - a user's settings over HTTP (http_users.c):
 *
 *   GET, HEAD /api/users/{id}/settings   {"user_id","share_listening","updated_at_ms"}
 *   PUT       /api/users/{id}/settings   {"share_listening": true|false} -> the same
 *   GET, HEAD /api/users/{id}/likes      {"user_id","likes":[{"track_id","liked_at_ms"}],"total"}:
 *                                        the songs the user starred (Subsonic star), by track id
 *
 * Allowed with the backend key for any user, or with the user's own token
 * (a JWT whose sub is {id} and that names no track), whatever
 * auth.required says: the settings are the user's consent.
 */
#ifndef TALAS_HTTP_USERS_H
#define TALAS_HTTP_USERS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers REQ for the user id ID (LEN bytes, as routed: not yet checked). */
int talas_users_settings_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

/* Answers REQ's likes of the user id ID (LEN bytes, as routed), with the
 * same credentials as the settings; later on the loop in cluster mode. */
int talas_users_likes_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

#endif
