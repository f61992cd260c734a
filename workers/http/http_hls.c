/*
 * http_hls.c - the HLS routes of a track.
 *
 * Entry point: talas_hls_serve, for every path under /hls/:
 *
 *   /hls/{id}/master.m3u8          the ladder: one rung per profile with hls
 *   /hls/{id}/{q}/playlist.m3u8    VOD media playlist of rung q
 *   /hls/{id}/{q}/init.mp4         its initialization segment
 *   /hls/{id}/{q}/{n}.m4s          media segment n
 *   /hls/queue/...                 a queue as one stream: http_hls_queue.c
 *
 * The token is checked first (scope "hls"), before the catalog is read or
 * anything is opened or encoded, for playlists and segments alike; the
 * playlists carry it on every URL they list, so players need nothing but
 * the master playlist's URL; a ?normalize= target (http_normalize.c) rides
 * along the same way. Every object waits for the worker's verdict
 * on the source (talas_transcode_measure, memoised): a track that cannot
 * be transcoded gets a 422 for its ladder too, not a playlist of segments
 * that all fail. Segment n is chunk n of the rung's AAC transcode, from
 * the cache or encoded for the request (http_hls_reply.c, which answers
 * every object). Segments and init segments never change for
 * a given file (a changed file is another cache entry), so without tokens
 * they are public and immutable for a year.
 *
 * Logs: tracks no rung can transcode (warning).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/token.h"
#include "store/catalog.h"
#include "media/hls.h"
#include "http/http_hls.h"
#include "http/http_hls_reply.h"
#include "http/http_hls_queue.h"
#include "http/http_response.h"
#include "http/http_authorize.h"
#include "http/http_shares.h"
#include "http/http_normalize.h"
#include "http/http_source.h"
#include "core/log.h"
#include "media/transcode_jobs.h"
#include "media/transcode_limit.h"
#include "worker/worker_ctx.h"

#define MAX_RUNGS 16

/* One request, in its pool. */
struct hls_request {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    enum talas_hls_object object;
    struct talas_hls_reply reply; /* the answers: segment, source, waiter */
    struct talas_chunk_key key;   /* the track and its file; no variant yet */
    char *path;
    struct talas_profile profile;
    struct talas_token_claims claims;
    const char *query; /* "?token=...&normalize=..." or "" */
    int normalize_dlu; /* ?normalize=, tenths of LUFS; 0: none */
    struct talas_measure_waiter measure;
};

/* ---------------------------------------------------------------- paths */

/* Splits "ID/master.m3u8" or "ID/Q/FILE". Returns 0, or -1 for a path that
 * names nothing here. */
static int parse_path(const char *p, size_t len, struct hls_request *rq, h2o_iovec_t *id_r, h2o_iovec_t *q_r)
{
    const char *slash = memchr(p, '/', len);

    if (slash == NULL)
        return -1;
    *id_r = h2o_iovec_init(p, (size_t)(slash - p));
    return talas_hls_object_parse(slash + 1, len - (size_t)(slash + 1 - p), &rq->object, q_r,
                                  &rq->reply.segment);
}

/* The frame table of a fully cached transcode, copied out of the map. */
struct frames_scan {
    uint32_t *frames; /* per chunk */
    uint32_t **sizes; /* per chunk, per frame */
};

static void copy_frames(void *arg, uint32_t index, uint32_t count, const struct talas_chunk *chunk)
{
    struct frames_scan *scan = arg;

    if (index == 0) {
        scan->frames = xcalloc(count, sizeof(*scan->frames));
        scan->sizes = xcalloc(count + 1, sizeof(*scan->sizes)); /* NULL-terminated */
    }
    scan->frames[index] = (uint32_t)chunk->frame_count;
    scan->sizes[index] = xcalloc(chunk->frame_count + 1, sizeof(uint32_t));
    for (size_t i = 0; i < chunk->frame_count; i++)
        scan->sizes[index][i] = talas_chunk_frame_size(chunk, i);
}

static uint32_t copied_frame_size(void *arg, uint32_t c, uint32_t i)
{
    return ((struct frames_scan *)arg)->sizes[c][i];
}

/* The bandwidths of rung P measured on its segments when every one of them
 * is in the cache; returns -1 otherwise (the estimates stand). */
static int measured_bandwidth(struct hls_request *rq, const struct talas_profile *p, unsigned *peak_r,
                              unsigned *average_r)
{
    struct talas_source_info any = {.samples = p->sample_rate, .sample_rate = p->sample_rate, .channels = 2};
    struct talas_chunk_key key = rq->key;
    struct frames_scan scan = {NULL, NULL};
    struct talas_layout grid;
    char *error = NULL;
    int64_t n;

    /* the variant's name depends on the profile's grid, not on the source */
    if (talas_layout_compute(p, &any, NULL, &grid, &error) != 0) {
        free(error);
        return -1;
    }
    talas_transcode_variant(p, &grid, key.variant);
    n = talas_chunk_scan(&key, 100000, copy_frames, &scan);
    if (n > 0)
        talas_hls_measured_bandwidth((uint32_t)n, scan.frames, copied_frame_size, &scan, p->sample_rate,
                                     grid.encoder_delay, peak_r, average_r);
    /* a scan that stopped half way filled the chunks before */
    for (uint32_t c = 0; scan.sizes != NULL && scan.sizes[c] != NULL; c++)
        free(scan.sizes[c]);
    free(scan.sizes);
    free(scan.frames);
    return n > 0 ? 0 : -1;
}

/* The rungs, in the order players should try them, with the bandwidths
 * measured on their segments where every one is cached. */
static size_t ladder(struct hls_request *rq, struct talas_profile *profiles, struct talas_hls_rung *rungs)
{
    const struct talas_config *conf = rq->ctx->conf;
    size_t n = 0;

    for (size_t i = 0; i < conf->transcode_profile_count && n < MAX_RUNGS; i++) {
        const struct talas_config_profile *cp = &conf->transcode_profiles[i];
        if (!cp->hls)
            continue;
        talas_transcode_profile(conf, cp, &profiles[n]);
        profiles[n].normalize_dlu = rq->profile.normalize_dlu; /* the variant measured */
        rungs[n].name = cp->name;
        rungs[n].profile = &profiles[n];
        if (measured_bandwidth(rq, &profiles[n], &rungs[n].bandwidth, &rungs[n].avg_bandwidth) != 0)
            talas_hls_bandwidth(&profiles[n], &rungs[n].bandwidth, &rungs[n].avg_bandwidth);
        n++;
    }
    talas_hls_ladder_order(rungs, n);
    return n;
}

/* Counted before the segment is sent: whoever reads the link's analytics
 * after the segment arrived sees it. */
static void count_share(struct talas_hls_reply *r, uint64_t start, uint64_t length)
{
    struct hls_request *rq = H2O_STRUCT_FROM_MEMBER(struct hls_request, reply, r);

    (void)start;
    if (rq->profile.sample_rate != 0)
        talas_shares_count(rq->ctx, &rq->claims, 0, length * 1000 / rq->profile.sample_rate);
}

static void start_measured(struct hls_request *rq, const struct talas_source_info *info)
{
    struct talas_transcode_source *src;
    char *error = NULL;

    /* the ladder and the init segments do not depend on the source, but a
     * track that no rung can play has none of them */
    switch (rq->object) {
    case TALAS_HLS_MASTER: {
        struct talas_profile profiles[MAX_RUNGS];
        struct talas_hls_rung rungs[MAX_RUNGS];

        /* the bandwidths become measured ones once the segments are cached */
        talas_hls_reply_master(&rq->reply, rungs, ladder(rq, profiles, rungs), rq->query);
        return;
    }
    case TALAS_HLS_INIT:
        talas_hls_reply_init(&rq->reply);
        return;
    default:
        break;
    }
    src = h2o_mem_alloc_pool(&rq->req->pool, sizeof(*src));
    memset(src, 0, sizeof(*src));
    if (talas_layout_compute(&rq->profile, info, NULL, &src->layout, &error) != 0) {
        log_warn("hls of %s (%s): %s", rq->key.track, rq->path, error);
        free(error);
        talas_http_send_error(rq->req, 422, "undecodable", "this track cannot be transcoded");
        return;
    }
    src->key = rq->key;
    snprintf(src->path, sizeof(src->path), "%s", rq->path);
    src->profile = rq->profile;
    talas_transcode_variant(&rq->profile, &src->layout, src->key.variant);
    rq->reply.src = src;
    if (rq->object == TALAS_HLS_PLAYLIST)
        talas_hls_reply_playlist(&rq->reply, rq->query);
    else
        talas_hls_reply_segment(&rq->reply);
}

static void on_measured(struct talas_measure_waiter *w, int status, const struct talas_source_info *info)
{
    struct hls_request *rq = w->data;

    if (status != 0) {
        talas_http_send_error(rq->req, 422, "undecodable", "this track cannot be decoded");
        return;
    }
    start_measured(rq, info);
}

static void request_dispose(void *p)
{
    struct hls_request *rq = p;

    talas_transcode_measure_cancel(&rq->measure);
    talas_chunk_cancel(&rq->reply.waiter);
}

/* "?token=T" when the request was authorised by a token, and
 * "normalize=N" when it asked for one, for the URLs a playlist lists. */
static const char *playlist_query(const struct talas_worker_ctx *ctx, h2o_req_t *req, int normalize_dlu)
{
    h2o_iovec_t token = {NULL, 0};
    const char *reason, *norm = talas_http_normalize_query(req, normalize_dlu);
    size_t len;
    char *q;

    if (!ctx->conf->auth_required || talas_http_token(req, &token, &reason) != 1)
        token.len = 0;
    if (token.len == 0 && *norm == '\0')
        return "";
    len = 1 + (token.len > 0 ? 6 + token.len : 0) + (token.len > 0 && *norm ? 1 : 0) + strlen(norm);
    q = h2o_mem_alloc_pool(&req->pool, len + 1);
    snprintf(q, len + 1, "?%s%.*s%s%s", token.len > 0 ? "token=" : "", (int)token.len,
             token.len > 0 ? token.base : "", token.len > 0 && *norm ? "&" : "", norm);
    return q;
}

int talas_hls_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *path, size_t len)
{
    struct hls_request *rq;
    h2o_iovec_t id = {NULL, 0}, q = {NULL, 0};
    const struct talas_config_profile *cp = NULL;
    char *file;

    /* a queue's continuous stream ("queue" is no track id) */
    if (len >= 6 && memcmp(path, "queue/", 6) == 0)
        return talas_hls_queue_serve(ctx, req);
    rq = h2o_mem_alloc_shared(&req->pool, sizeof(*rq), request_dispose);
    memset(rq, 0, sizeof(*rq));
    rq->ctx = ctx;
    rq->req = req;
    if (parse_path(path, len, rq, &id, &q) != 0) {
        if (talas_http_reject_unless_get(req) == 0)
            talas_http_send_error(req, 404, "not_found", "no such HLS resource");
        return 0;
    }
    if (talas_http_track_request(req, id.base, id.len, rq->key.track) != 0)
        return 0;
    /* the token first: nothing is read, opened or encoded for a refused request */
    if (talas_http_authorize(ctx, req, rq->key.track, TALAS_TOKEN_HLS, &rq->claims) != 0)
        return 0;
    if (rq->object != TALAS_HLS_MASTER) {
        if ((cp = talas_hls_find_rung(ctx->conf, q)) == NULL) {
            talas_http_send_error(req, 404, "unknown_quality", "no HLS rung named \"%.*s\"", (int)q.len,
                                  q.base);
            return 0;
        }
        talas_transcode_profile(ctx->conf, cp, &rq->profile);
    }
    if (talas_http_normalize_param(req, &rq->normalize_dlu) != 0)
        return 0;
    /* a share's analytics: the master playlist starts a play (each
     * segment served adds its length: send_segment) */
    talas_shares_count(ctx, &rq->claims, rq->object == TALAS_HLS_MASTER, 0);
    if (talas_stream_source(ctx, req, rq->key.track, &file, &rq->key.identity) != 0)
        return 0;
    /* the master playlist too: a track it cannot normalize gets no ladder */
    if (talas_http_normalize_apply(ctx, req, rq->key.track, &rq->key.identity, rq->normalize_dlu,
                                   &rq->profile) != 0)
        return 0;
    rq->path = file;
    rq->query = playlist_query(ctx, req, rq->normalize_dlu);
    /* the answers: ETags name the file, its variant and the object */
    rq->reply.req = req;
    rq->reply.claims = &rq->claims;
    rq->reply.last_modified = rq->key.identity.mtime_ns / 1000000000;
    rq->reply.etag_prefix = h2o_mem_alloc_pool(&req->pool, 2 * 16 + 2);
    snprintf((char *)rq->reply.etag_prefix, 2 * 16 + 2, "%" PRIx64 "-%" PRIx64,
             (uint64_t)rq->reply.last_modified, rq->key.identity.size);
    rq->reply.profile = &rq->profile;
    if (rq->claims.share[0] != '\0')
        rq->reply.before_segment = count_share;
    /* every object, playlists included, waits for the verdict on the source
     * (memoised per worker): an undecodable track is a 422 everywhere */
    rq->measure.cb = on_measured;
    rq->measure.data = rq;
    talas_transcode_measure(&rq->key, rq->path, &rq->measure); /* on_measured goes on */
    return 0;
}
