/*
 * http_playlists.h - GET /api/playlists/{id} (http_playlists.c): a
 * playlist's owner, editors and tracks, in order.
 */
#ifndef TALAS_HTTP_PLAYLISTS_H
#define TALAS_HTTP_PLAYLISTS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers the request for the playlist ID (LEN bytes, from the path). */
int talas_playlists_get(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

#endif
