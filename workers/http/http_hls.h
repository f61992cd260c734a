/*
 * http_hls.h - the HLS routes of a track (master playlist, media playlists,
 * init and media segments), see http_hls.c.
 */
#ifndef TALAS_HTTP_HLS_H
#define TALAS_HTTP_HLS_H

#include <stddef.h>

#include <h2o.h>

#include "worker/worker_ctx.h"

/* Answers the request for /hls/PATH (PATH, LEN: what follows "/hls/"):
 * always answers, with a JSON error for anything it cannot serve. Returns
 * 0. */
int talas_hls_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *path, size_t len);

#endif
