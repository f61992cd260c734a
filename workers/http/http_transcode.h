/*
 * http_transcode.h - transcoded streams and previews:
 *
 *   GET|HEAD /stream/{id}?profile=NAME      (or ?format=mp3|aac&bitrate=K)
 *   GET|HEAD /stream/{id}?profile=NAME&t=S  starting S seconds in
 *   GET|HEAD /preview/{id}                  preview.duration of MP3 from preview.start
 */
#ifndef TALAS_HTTP_TRANSCODE_H
#define TALAS_HTTP_TRANSCODE_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* 1 when a /stream request asks for a transcode (profile, format or t in
 * its query), else 0 (the original file). */
int talas_transcode_requested(h2o_req_t *req);

/* Answers a transcode (PREVIEW 0) or a preview (PREVIEW 1) of track ID (LEN
 * bytes, not validated yet). Always answers; returns 0. */
int talas_transcode_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len,
                          int preview);

/* A transcode of track ID (valid, NUL-terminated) with profile CP, from T
 * seconds in, for a request its route has authorized itself (the Subsonic
 * API's /rest/stream): no token is checked, and the answer is marked
 * private. ESTIMATE (Subsonic's estimateContentLength): a stream whose
 * length is not known yet (AAC not cached) announces an estimate, and its
 * body is cut by whole frames or padded with silent ones to that length
 * exactly. Always answers; returns 0. */
struct talas_config_profile;
int talas_transcode_serve_authorized(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id,
                                     const struct talas_config_profile *cp, double t, int estimate);

#endif
