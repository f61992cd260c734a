/*
 * http_api.h - the JSON API: health and the track catalog.
 *
 * Each handler answers the request (never returns -1) and returns 0.
 */
#ifndef TALAS_HTTP_API_H
#define TALAS_HTTP_API_H

#include <h2o.h>

/* GET /api/health: liveness, worker pid, last scan. */
int talas_api_health(h2o_req_t *req);
/* GET /api/tracks?limit=&offset=&q= */
int talas_api_tracks(h2o_req_t *req);
/* GET /api/tracks/{id} (ID is LEN bytes, not validated yet). */
int talas_api_track(h2o_req_t *req, const char *id, size_t len);

#endif
