/*
 * http_stream.h - GET|HEAD /stream/{id}: a track's original file.
 */
#ifndef TALAS_HTTP_STREAM_H
#define TALAS_HTTP_STREAM_H

#include <h2o.h>

#include "store/cache.h"

/*
 * Answers the request with the bytes of track ID (LEN bytes, not validated
 * yet): Content-Type, ETag, Last-Modified, conditional requests (304/412),
 * and Range exactly as nginx answers it (206, multipart/byteranges, 416).
 * Always answers (JSON errors for unknown ids or vanished files); returns 0.
 */
int talas_stream_original(h2o_req_t *req, const char *id, size_t len);

/* The path (and Content-Type of the original) of playable track ID, copied
 * into the request pool. Returns 0, MDB_NOTFOUND (unknown, or recorded as
 * not playable), or another value when the catalog could not be read
 * (logged). */
int talas_stream_lookup(h2o_req_t *req, const char *id, char **path_r, h2o_iovec_t *mime_r);

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
int talas_stream_source(h2o_req_t *req, const char *id, char **path_r, struct talas_cache_source *identity_r);

#endif
