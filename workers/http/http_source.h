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
 * into the request pool. ID (TALAS_TRACK_ID_LEN + 1 bytes) may be a former
 * id (an alias, store/catalog.h): it is then replaced by the track's id
 * now, so that caches and waveforms are kept under one id; call it after
 * the token check, which holds the id of the URL. Returns 0, MDB_NOTFOUND (unknown, or recorded as
 * not playable), or another value when the catalog could not be read
 * (logged). */
int talas_stream_lookup(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                        h2o_iovec_t *mime_r);

/* RFC 9110 section 13.2.2 preconditions for a representation with ETAG and
 * MTIME: 0 to go on, or 304 / 412 to answer with. */
int talas_http_preconditions(h2o_req_t *req, const char *etag, size_t etag_len, int64_t mtime);

/* Answers STATUS from talas_http_preconditions: a 304 with the headers
 * already set (validators), or a 412 with a JSON error. */
void talas_http_send_precondition(h2o_req_t *req, int status);

/* The file of playable track ID as it is now, for the routes that decode
 * it (HLS, peaks; ID as for talas_stream_lookup): opened and checked as
 * the transcoder will open it (talas_track_open: no symbolic link on its
 * path since the scan, a regular file), then closed; its path (request
 * pool) and identity (size and modification time: a changed file is
 * another transcode). Answers the error itself and returns -1 when it cannot be
 * served (404 unknown track, 500 unreadable catalog, or as
 * talas_stream_refuse); else 0. */
int talas_stream_source(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                        struct talas_cache_source *identity_r);
/* The same from the file cache (talas_stream_open_cached): an identity up
 * to a second old, for a route that remembers nothing made from the file
 * unless the file still has that identity once made (transcodes and
 * previews: transcode_jobs.c). */
int talas_stream_source_cached(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                               struct talas_cache_source *identity_r);

/* Track ID's file at PATH (its catalog path) from h2o's file cache, where a
 * descriptor serves the requests of up to a second: opened without waiting
 * and checked as talas_track_open checks (no symbolic link on its path
 * since the scan, a regular file), the check remembered for that
 * descriptor. NULL once talas_stream_refuse has answered; else the
 * caller's reference (h2o_filecache_close_file). */
h2o_filecache_ref_t *talas_stream_open_cached(h2o_req_t *req, const char *id, const char *path);

/* The one answer of every media route, /stream/{id} included, for a
 * track whose file at PATH failed to open or its check with errno ERR:
 * ELOOP (a symbolic link on its path since the scan, wherever it leads)
 * is a 403 outside_library, anything else (gone, not a regular file) a
 * 404 file_missing. Logs a warning naming track ID and PATH. */
void talas_stream_refuse(h2o_req_t *req, const char *id, const char *path, int err);

#endif
