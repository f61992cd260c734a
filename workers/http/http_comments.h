/*
 * http_comments.h - timed comments over HTTP: GET and POST
 * /api/tracks/{id}/comments, PATCH and DELETE /api/comments/{id}.
 */
#ifndef TALAS_HTTP_COMMENTS_H
#define TALAS_HTTP_COMMENTS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* /api/tracks/{id}/comments: ID is the LEN bytes of the track id. */
int talas_comments_track_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);
/* /api/comments/{id}. */
int talas_comments_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

#endif
