/*
 * http_peaks.h - GET /api/tracks/{id}/peaks?points=N: a track's waveform.
 *
 * The peaks are computed once per source file (media/peaks_jobs.h: the
 * whole track decoded on the worker's pool threads, never on the loop; one
 * computation per worker and track, which every concurrent request waits
 * for), stored in LMDB (src/store/peaks.h) for every worker and restart,
 * and reduced to N points per request.
 */
#ifndef TALAS_HTTP_PEAKS_H
#define TALAS_HTTP_PEAKS_H

#include <stddef.h>

#include <h2o.h>

#include "worker/worker_ctx.h"

#define TALAS_PEAKS_POINTS_DEFAULT 800

/* Answers the request for the peaks of track ID (LEN bytes, the path
 * between "/api/tracks/" and "/peaks"). Returns 0 (h2o's "handled"). */
int talas_peaks_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

#endif
