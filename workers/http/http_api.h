/*
 * http_api.h - the JSON API: health, the track catalog, the transcode
 * ladder, signed URLs.
 *
 * Each handler answers the request (never returns -1) and returns 0.
 */
#ifndef TALAS_HTTP_API_H
#define TALAS_HTTP_API_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* GET /api/stats: the transcode cache's figures, summed over all workers. */
int talas_api_stats(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* GET /api/health: liveness, worker pid, last scan. */
int talas_api_health(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* GET /api/profiles: {"profiles":[...]}, the configured transcode ladder
 * (transcode.profiles) in its configured order, each rung as
 * talas_http_profile_json writes it. Open like /api/health: the ladder is
 * no secret, and the web player builds its quality menu from it. */
int talas_api_profiles(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* GET /api/tracks?limit=&offset=&q=; with the backend key and
 * auth.required, each track also has a signed "stream_url". */
int talas_api_tracks(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* GET /api/tracks/{id} (ID is LEN bytes, not validated yet). */
int talas_api_track(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);

/* POST /api/stream-url with "Authorization: Bearer BACKEND_KEY" and
 * {"track_id", "user_id"?, "kind"?, "ttl_seconds"?}: {"url_signed", "expires_at"}. */
int talas_api_stream_url(const struct talas_worker_ctx *ctx, h2o_req_t *req);

#endif
