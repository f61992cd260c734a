/*
 * http_hls_queue.h - continuous HLS of a queue (a playlist's or an
 * artist's tracks as one stream, no gap): /hls/queue/..., see
 * http_hls_queue.c.
 */
#ifndef TALAS_HTTP_HLS_QUEUE_H
#define TALAS_HTTP_HLS_QUEUE_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Tracks a queue plays at most (built in): a longer playlist, or an
 * artist with more tracks, is a 413. */
#define TALAS_HLS_QUEUE_MAX 2000

/* Answers the request for /hls/queue/{kind}/{id}/... (read from the raw
 * path, so that an artist's name may hold any percent-encoded byte but
 * NUL and '/'): always answers, with a JSON error for anything it cannot
 * serve. Returns 0. */
int talas_hls_queue_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req);

#endif
