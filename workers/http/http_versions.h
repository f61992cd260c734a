/*
 * http_versions.h - versions of a song over HTTP: GET /api/songs/{id},
 * PUT /api/tracks/{id}/version-of, and the song members of
 * GET /api/tracks/{id}.
 */
#ifndef TALAS_HTTP_VERSIONS_H
#define TALAS_HTTP_VERSIONS_H

#include <h2o.h>
#include <lmdb.h>

#include "core/json.h"
#include "worker/worker_ctx.h"

/* GET /api/songs/{id}; ID is LEN bytes from the path. Returns 0. */
int talas_versions_song_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);
/* PUT /api/tracks/{id}/version-of (the backend key only). Returns 0. */
int talas_versions_link_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);
/* Writes "song_id" (null when none), "version" (its label, null) and
 * "versions" (the ids of every version of its song in order, this one
 * included; [] when none) into the open object of track TRACK. */
void talas_versions_track_members(struct talas_storage *st, MDB_txn *txn, const char *track,
                                  struct talas_json *json);

#endif
