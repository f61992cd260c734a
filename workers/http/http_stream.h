/*
 * http_stream.h - GET|HEAD /stream/{id}: a track's original file.
 */
#ifndef TALAS_HTTP_STREAM_H
#define TALAS_HTTP_STREAM_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/*
 * Answers the request with the bytes of track ID (LEN bytes, not validated
 * yet): Content-Type, ETag, Last-Modified, conditional requests (304/412),
 * and Range exactly as nginx answers it (206, multipart/byteranges, 416).
 * Always answers (JSON errors for unknown ids or vanished files); returns 0.
 */
int talas_stream_original(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

/* The same for a request its route has authorized itself (the Subsonic
 * API's /rest/stream, /rest/download): no token is checked, and the
 * answer is marked private. ID is a valid track id (NUL-terminated). */
int talas_stream_original_authorized(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id);

#endif
