/*
 * http_normalize.h - ?normalize=LUFS on the transcoding routes
 * (/stream/{id}?profile=, /preview/{id}, /hls/{id}/...): the parameter
 * read, and the gain from the track's measured loudness.
 */
#ifndef TALAS_HTTP_NORMALIZE_H
#define TALAS_HTTP_NORMALIZE_H

#include <h2o.h>

#include "media/transcoder.h"
#include "store/cache.h"
#include "worker/worker_ctx.h"

/* Reads ?normalize=: a number of LUFS from TALAS_NORMALIZE_TARGET_MIN to
 * _MAX with at most one decimal ("-14", "-23", "-16.5"). Returns 0 with
 * *dlu_r the target in tenths of LUFS (0 when absent), or -1 after
 * answering 400 invalid_parameter. */
int talas_http_normalize_param(h2o_req_t *req, int *dlu_r);

/* Sets P's normalization to the target DLU (0: none, returns 0 at once)
 * from the catalog's integrated loudness of TRACK, as measured for the
 * file IDENTITY (the one the response serves). Returns 0, or -1 after
 * answering 409 loudness_unknown (not measured, nothing to measure:
 * silence, or measured for another version of the file) or 500. A read
 * transaction of microseconds: fine on the loop. */
int talas_http_normalize_apply(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *track,
                               const struct talas_cache_source *identity, int dlu, struct talas_profile *p);

/* "normalize=-14.0" for the target DLU, in the request's pool, for the
 * URLs a playlist lists; "" for 0. */
const char *talas_http_normalize_query(h2o_req_t *req, int dlu);

#endif
