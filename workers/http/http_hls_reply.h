/*
 * http_hls_reply.h - the objects of one HLS rendition, as the routes of a
 * track (http_hls.c) and of a queue (http_hls_queue.c) both answer them:
 * their names in a path, the rung a quality names, and the answers
 * (validators, caching, the master playlist, init and media segments
 * from the cache or encoded for the request), see http_hls_reply.c.
 */
#ifndef TALAS_HTTP_HLS_REPLY_H
#define TALAS_HTTP_HLS_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "core/config.h"
#include "core/token.h"
#include "media/hls.h"
#include "media/transcode_jobs.h"

#define TALAS_HLS_SEGMENT_CACHE_CONTROL "public, max-age=31536000, immutable"
#define TALAS_HLS_PLAYLIST_CACHE_CONTROL "public, max-age=60"

enum talas_hls_object { TALAS_HLS_MASTER, TALAS_HLS_PLAYLIST, TALAS_HLS_INIT, TALAS_HLS_SEGMENT };

/*
 * Names the object of "master.m3u8", "Q/playlist.m3u8", "Q/init.mp4" or
 * "Q/N.m4s" (P, LEN: what follows the rendition's id): *OBJECT_R, the
 * quality Q in *Q_R (not for the master playlist) and N in *SEGMENT_R.
 * Returns 0, or -1 for a path that names nothing.
 */
int talas_hls_object_parse(const char *p, size_t len, enum talas_hls_object *object_r, h2o_iovec_t *q_r,
                           uint32_t *segment_r);

/* The HLS rung of CONF named Q, or NULL. */
const struct talas_config_profile *talas_hls_find_rung(const struct talas_config *conf, h2o_iovec_t q);

/*
 * What the answers of one request need; the route's request embeds it and
 * fills it in. ETag: "PREFIX-WHAT", PREFIX naming the source (its file, or
 * the queue); LAST_MODIFIED in seconds (0: none). Objects are public with
 * the given Cache-Control when CLAIMS->exp is 0, else private until the
 * token expires. SRC (the rendition, its layout and cache key) and
 * SEGMENT are set before talas_hls_reply_segment; BEFORE_SEGMENT, when
 * set, is called with the segment's span just before it is sent.
 */
struct talas_hls_reply {
    h2o_req_t *req;
    const struct talas_token_claims *claims;
    const char *etag_prefix;
    int64_t last_modified;
    const struct talas_profile *profile;
    struct talas_transcode_source *src;
    uint32_t segment;
    void (*before_segment)(struct talas_hls_reply *r, uint64_t start, uint64_t length);
    /* talas_hls_reply_segment's */
    struct talas_chunk_waiter waiter;
    int encoding; /* the segment is not cached: it is encoded for this request */
};

/* Answers BODY (copied) as TYPE, with the validators and caching above,
 * or a 304 / 412 the request's preconditions call for. */
void talas_hls_reply_body(struct talas_hls_reply *r, const char *type, const char *cache_control,
                          const char *what, const struct talas_buf *body);

/* The master playlist of RUNGS (N of them, in the order players should try
 * them: talas_hls_ladder_order) whose URLs carry QUERY; a 404 when N is 0.
 * Its ETag names its body (the token in the URLs, the bandwidths). */
void talas_hls_reply_master(struct talas_hls_reply *r, const struct talas_hls_rung *rungs, size_t n,
                            const char *query);

/* The initialization segment of R->profile. */
void talas_hls_reply_init(struct talas_hls_reply *r);

/* The VOD media playlist of R->src, its URLs carrying QUERY. */
void talas_hls_reply_playlist(struct talas_hls_reply *r, const char *query);

/*
 * Media segment R->segment of R->src: from the cache if it is there (no
 * transcode slot taken), else encoded for this request once a slot is
 * free (transcode.max_concurrent*), the next segments asked for behind it.
 * Always answers. The route's dispose cancels R->waiter.
 */
void talas_hls_reply_segment(struct talas_hls_reply *r);

#endif
