/*
 * http_playlists.h - /api/playlists (http_playlists.c): GET
 * /api/playlists/{id}, a playlist's details, owner, editors and tracks in
 * order; DELETE /api/playlists/{id}; GET /api/playlists?user=U, the
 * playlists U may list.
 */
#ifndef TALAS_HTTP_PLAYLISTS_H
#define TALAS_HTTP_PLAYLISTS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers GET /api/playlists?user=U. */
int talas_playlists_list(const struct talas_worker_ctx *ctx, h2o_req_t *req);

/* Answers GET or DELETE of the playlist ID (LEN bytes, from the path). */
int talas_playlists_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

#endif
