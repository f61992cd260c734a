/*
 * http_shares.h - private links: the /api/shares API, the share page
 * /s/{id} and its unlock, and the check the media routes make of a share
 * token.
 *
 * What these functions allocate lives in the request's pool.
 */
#ifndef TALAS_HTTP_SHARES_H
#define TALAS_HTTP_SHARES_H

#include <h2o.h>

#include "core/token.h"
#include "worker/worker_ctx.h"

/* POST, GET /api/shares */
int talas_shares_api(const struct talas_worker_ctx *ctx, h2o_req_t *req);
/* GET, DELETE /api/shares/{id} (ID: LEN bytes) */
int talas_shares_api_one(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len);
/* GET /s/{id}, POST /s/{id}/unlock (REST: what follows "/s/") */
int talas_shares_page(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *rest, size_t len);

/* What a share token asks for on a media route. */
enum talas_share_use {
    TALAS_SHARE_USE_STREAM,   /* a transcode, an HLS object, a preview, peaks */
    TALAS_SHARE_USE_DOWNLOAD, /* the original file */
    TALAS_SHARE_USE_COMMENT,  /* reading or writing comments */
};

/*
 * The check of a share token (CLAIMS->share set) for USE of TRACK: the
 * share exists (else 404 share_not_found: revoked or unknown), has not
 * expired (410 share_expired), covers TRACK (403 forbidden) and grants
 * USE (403 stream_not_granted, download_not_granted,
 * comment_not_granted); in cluster mode 501 shares_unavailable. Returns 0,
 * or -1 when it answered (and logged).
 */
int talas_shares_check(const struct talas_worker_ctx *ctx, h2o_req_t *req,
                       const struct talas_token_claims *claims, const char *track, enum talas_share_use use);

/* Counts a play (PLAYS) and LISTENING_MS of listening for the share of
 * CLAIMS, when it is a share token; nothing otherwise. */
void talas_shares_count(const struct talas_worker_ctx *ctx, const struct talas_token_claims *claims,
                        uint64_t plays, uint64_t listening_ms);

/* 1 when REQ asks for its resource from the start (no Range, or a Range
 * from byte 0): a play, for the shares' analytics. */
int talas_shares_from_start(h2o_req_t *req);

#endif
