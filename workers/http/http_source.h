/*
 * http_source.h - a track's source file and the preconditions of a
 * representation, for the media routes (/stream, /preview, /hls, peaks).
 */
#ifndef TALAS_HTTP_SOURCE_H
#define TALAS_HTTP_SOURCE_H

#include <stdint.h>

#include <h2o.h>

#include "store/cache.h"
#include "worker/worker_ctx.h"

/* The path (and Content-Type of the original) of playable track ID, copied
 * into the request pool. Returns 0, MDB_NOTFOUND (unknown, or recorded as
 * not playable), or another value when the catalog could not be read
 * (logged). */
int talas_stream_lookup(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, char **path_r,
                        h2o_iovec_t *mime_r);

/* RFC 9110 section 13.2.2 preconditions for a representation with ETAG and
 * MTIME: 0 to go on, or 304 / 412 to answer with. */
int talas_http_preconditions(h2o_req_t *req, const char *etag, size_t etag_len, int64_t mtime);

/* Answers STATUS from talas_http_preconditions: a 304 with the headers
 * already set (validators), or a 412 with a JSON error. */
void talas_http_send_precondition(h2o_req_t *req, int status);

/* The file of playable track ID as it is now, for the transcoding routes:
 * its path (request pool) and identity (size and modification time: a
 * changed file is another transcode). Answers 404 (unknown track, file
 * gone) or 500 itself and returns -1 when there is none; else 0. */
int talas_stream_source(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, char **path_r,
                        struct talas_cache_source *identity_r);

#endif
