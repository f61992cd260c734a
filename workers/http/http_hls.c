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
 * that all fail. Segment n is chunk n of the rung's AAC
 * transcode, as talas_chunk_get delivers it (transcode_jobs.h): from the
 * cache, or encoded alone by one process of the server while any others
 * wait for it, never the segments before it. Each segment asks for the next one to be made while
 * the player plays this one. Segments and init segments never change for
 * a given file (a changed file is another cache entry), so without tokens
 * they are public and immutable for a year.
 *
 * Logs: chunks that are not what their layout says (error).
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
#define SEGMENT_CACHE_CONTROL "public, max-age=31536000, immutable"
#define PLAYLIST_CACHE_CONTROL "public, max-age=60"

enum hls_object { HLS_MASTER, HLS_PLAYLIST, HLS_INIT, HLS_SEGMENT };

/* One request, in its pool. */
struct hls_request {
    const struct talas_worker_ctx *ctx;
    h2o_req_t *req;
    enum hls_object object;
    uint32_t segment;
    struct talas_chunk_key key; /* the track and its file; no variant yet */
    char *path;
    struct talas_profile profile;
    struct talas_token_claims claims;
    const char *query; /* "?token=...&normalize=..." or "" */
    int normalize_dlu; /* ?normalize=, tenths of LUFS; 0: none */
    struct talas_measure_waiter measure;
    struct talas_transcode_source *src;
    struct talas_chunk_waiter waiter;
    int encoding; /* the segment is not cached: it is encoded for this request */
};

/* ---------------------------------------------------------------- paths */

/* Splits "ID/master.m3u8" or "ID/Q/FILE". Returns 0, or -1 for a path that
 * names nothing here. */
static int parse_path(const char *p, size_t len, struct hls_request *rq, h2o_iovec_t *id_r, h2o_iovec_t *q_r)
{
    const char *slash = memchr(p, '/', len), *rest, *file;
    size_t rest_len, file_len;

    if (slash == NULL)
        return -1;
    *id_r = h2o_iovec_init(p, (size_t)(slash - p));
    rest = slash + 1;
    rest_len = len - (size_t)(rest - p);
    if (rest_len == 11 && memcmp(rest, "master.m3u8", 11) == 0) {
        rq->object = HLS_MASTER;
        return 0;
    }
    if ((slash = memchr(rest, '/', rest_len)) == NULL || slash == rest || slash - rest > 31)
        return -1;
    *q_r = h2o_iovec_init(rest, (size_t)(slash - rest));
    file = slash + 1;
    file_len = rest_len - (size_t)(file - rest);
    if (file_len == 13 && memcmp(file, "playlist.m3u8", 13) == 0) {
        rq->object = HLS_PLAYLIST;
        return 0;
    }
    if (file_len == 8 && memcmp(file, "init.mp4", 8) == 0) {
        rq->object = HLS_INIT;
        return 0;
    }
    if (file_len > 4 && file_len <= 4 + 10 && memcmp(file + file_len - 4, ".m4s", 4) == 0) {
        uint64_t n = 0;
        for (size_t i = 0; i < file_len - 4; i++) {
            if (file[i] < '0' || file[i] > '9' || (i == 0 && file[i] == '0' && file_len > 5))
                return -1;
            n = n * 10 + (uint64_t)(file[i] - '0');
        }
        if (n >= UINT32_MAX)
            return -1;
        rq->object = HLS_SEGMENT;
        rq->segment = (uint32_t)n;
        return 0;
    }
    return -1;
}

static const struct talas_config_profile *find_rung(const struct talas_worker_ctx *ctx, h2o_iovec_t q)
{
    const struct talas_config *conf = ctx->conf;

    for (size_t i = 0; i < conf->transcode_profile_count; i++) {
        const struct talas_config_profile *cp = &conf->transcode_profiles[i];
        if (cp->hls && strlen(cp->name) == q.len && memcmp(cp->name, q.base, q.len) == 0)
            return cp;
    }
    return NULL;
}

/* ------------------------------------------------------------ responses */

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *v)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v, strlen(v));
}

static void add_cache_control(struct hls_request *rq, const char *public_value)
{
    h2o_iovec_t cc;

    if (rq->claims.exp == 0) {
        add_header(rq->req, H2O_TOKEN_CACHE_CONTROL, public_value);
        return;
    }
    cc = talas_http_media_cache_control(rq->req, &rq->claims);
    h2o_add_header(&rq->req->pool, &rq->req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc.base, cc.len);
}

/* Answers BODY (copied) with an ETag of the file, the variant and WHAT. */
static void send_body(struct hls_request *rq, const char *type, const char *cache_control, const char *what,
                      const struct talas_buf *body)
{
    h2o_req_t *req = rq->req;
    char etag[128];
    int n, status;
    static h2o_generator_t generator = {NULL, NULL};
    h2o_iovec_t vec;

    n = snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%s\"",
                 (uint64_t)(rq->key.identity.mtime_ns / 1000000000), rq->key.identity.size, what);
    if (n < 0 || (size_t)n >= sizeof(etag))
        n = 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                   h2o_strdup(&req->pool, etag, (size_t)n).base, (size_t)n);
    add_cache_control(rq, cache_control);
    if ((status = talas_http_preconditions(req, etag, (size_t)n, rq->key.identity.mtime_ns / 1000000000)) !=
        0) {
        talas_http_send_precondition(req, status);
        return;
    }
    add_header(req, H2O_TOKEN_CONTENT_TYPE, type);
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body->len;
    vec = h2o_strdup(&req->pool, body->data != NULL ? body->data : "", body->len);
    h2o_start_response(req, &generator);
    h2o_send(req, &vec, talas_http_method_is(req, "HEAD") ? 0 : 1, H2O_SEND_STATE_FINAL);
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

/* The rungs, in the order players should try them: the first listed is
 * where a player without a bandwidth estimate starts (RFC 8216bis 4.3.4.2),
 * so the middle rung comes first, then the others from the highest down. */
static size_t ladder(struct hls_request *rq, struct talas_profile *profiles, struct talas_hls_rung *rungs)
{
    const struct talas_config *conf = rq->ctx->conf;
    struct talas_hls_rung sorted[MAX_RUNGS];
    size_t n = 0, start;

    for (size_t i = 0; i < conf->transcode_profile_count && n < MAX_RUNGS; i++) {
        const struct talas_config_profile *cp = &conf->transcode_profiles[i];
        if (!cp->hls)
            continue;
        talas_transcode_profile(conf, cp, &profiles[n]);
        profiles[n].normalize_dlu = rq->profile.normalize_dlu; /* the variant measured */
        sorted[n].name = cp->name;
        sorted[n].profile = &profiles[n];
        if (measured_bandwidth(rq, &profiles[n], &sorted[n].bandwidth, &sorted[n].avg_bandwidth) != 0)
            talas_hls_bandwidth(&profiles[n], &sorted[n].bandwidth, &sorted[n].avg_bandwidth);
        n++;
    }
    /* highest bitrate first */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sorted[j].profile->bitrate > sorted[j - 1].profile->bitrate; j--) {
            struct talas_hls_rung t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    start = n / 2;
    if (n > 0)
        rungs[0] = sorted[start];
    for (size_t i = 0, k = 1; i < n; i++)
        if (i != start)
            rungs[k++] = sorted[i];
    return n;
}

static void send_master(struct hls_request *rq)
{
    struct talas_profile profiles[MAX_RUNGS];
    struct talas_hls_rung rungs[MAX_RUNGS];
    struct talas_buf body = {0};
    size_t n = ladder(rq, profiles, rungs);
    uint32_t hash = 2166136261u;
    char what[32];

    if (n == 0) {
        talas_http_send_error(rq->req, 404, "no_hls", "no profile is an HLS rung (transcode.profiles: hls)");
        return;
    }
    talas_hls_master(&body, rungs, n, rq->query);
    /* the bandwidths become measured ones once the segments are cached */
    for (size_t i = 0; i < body.len; i++)
        hash = (hash ^ (uint8_t)body.data[i]) * 16777619u;
    snprintf(what, sizeof(what), "master-%08" PRIx32, hash);
    send_body(rq, "application/vnd.apple.mpegurl", PLAYLIST_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

static void send_init(struct hls_request *rq)
{
    struct talas_buf body = {0};
    char what[64];

    if (talas_hls_init_segment(&body, &rq->profile) != 0) {
        talas_http_send_error(rq->req, 500, "unsupported_profile", "profile %s cannot be packaged as fMP4",
                              rq->profile.name);
        talas_buf_free(&body);
        return;
    }
    snprintf(what, sizeof(what), "init.%s.%u.%u", rq->profile.name, rq->profile.bitrate / 1000,
             rq->profile.sample_rate);
    send_body(rq, "audio/mp4", SEGMENT_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

static void send_segment(struct hls_request *rq, const uint8_t *adts, size_t len)
{
    struct talas_buf body = {0};
    const char *error;
    char what[64];

    if (talas_hls_media_segment(&body, &rq->src->layout, rq->segment, adts, len, &error) != 0) {
        log_error("hls %s/%s segment %" PRIu32 ": %s", rq->key.track, rq->src->key.variant, rq->segment,
                  error);
        talas_http_send_error(rq->req, 500, "bad_segment", "this segment could not be made");
        talas_buf_free(&body);
        return;
    }
    /* counted before it is sent: whoever reads the link's analytics after
     * the segment arrived sees it */
    if (rq->claims.share[0] != '\0' && rq->profile.sample_rate != 0) {
        uint64_t start, length;
        talas_hls_segment_span(&rq->src->layout, rq->segment, &start, &length);
        talas_shares_count(rq->ctx, &rq->claims, 0, length * 1000 / rq->profile.sample_rate);
    }
    snprintf(what, sizeof(what), "%s-%" PRIu32, rq->src->key.variant, rq->segment);
    send_body(rq, "audio/mp4", SEGMENT_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

/* -------------------------------------------------------------- segments */

static void prefetch_after(struct hls_request *rq)
{
    const struct talas_layout *l = &rq->src->layout;
    uint32_t next = rq->segment + 1;

    /* the next segment, and one more while they are short ones */
    talas_chunk_prefetch(rq->src, next, NULL);
    if (next < l->chunks && talas_layout_chunk_frame_count(l, next) < l->chunk_frames)
        talas_chunk_prefetch(rq->src, next + 1, NULL);
}

static void on_chunk(struct talas_chunk_waiter *w, enum talas_chunk_status status, struct talas_chunk *chunk)
{
    struct hls_request *rq = w->data;

    switch (status) {
    case TALAS_CHUNK_OK:
        talas_transcode_count_segment(!rq->encoding);
        send_segment(rq, (const uint8_t *)chunk->data, chunk->len); /* the body is a copy */
        talas_chunk_release(chunk);
        if (!rq->encoding)
            prefetch_after(rq);
        return;
    case TALAS_CHUNK_MISSING:
        /* transcode.max_concurrent*: encoding this segment needs a slot */
        if (talas_transcode_slot_take(rq->req) != 0)
            return;
        rq->encoding = 1;
        /* this segment's encode first: the prefetches queue behind it */
        talas_chunk_get(rq->src, rq->segment, TALAS_CHUNK_URGENT | TALAS_CHUNK_COUNT, &rq->waiter);
        prefetch_after(rq);
        return;
    case TALAS_CHUNK_RETRY:
    case TALAS_CHUNK_ERROR:
    default:
        if (rq->encoding)
            talas_transcode_count_segment(0);
        talas_http_send_error(rq->req, 503, "encode_failed", "this segment could not be encoded; try again");
        return;
    }
}

static void start_segment(struct hls_request *rq)
{
    if (rq->segment >= rq->src->layout.chunks) {
        talas_http_send_error(rq->req, 404, "not_found", "no segment %" PRIu32 " (the track has %" PRIu32 ")",
                              rq->segment, rq->src->layout.chunks);
        return;
    }
    rq->waiter.cb = on_chunk;
    rq->waiter.data = rq;
    /* the cache first: a cached segment takes no transcode slot */
    talas_chunk_get(rq->src, rq->segment, TALAS_CHUNK_CACHED_ONLY | TALAS_CHUNK_COUNT, &rq->waiter);
}

/* ------------------------------------------------------------ requests */

static void start_measured(struct hls_request *rq, const struct talas_source_info *info)
{
    struct talas_transcode_source *src;
    char *error = NULL;

    /* the ladder and the init segments do not depend on the source, but a
     * track that no rung can play has none of them */
    switch (rq->object) {
    case HLS_MASTER:
        send_master(rq);
        return;
    case HLS_INIT:
        send_init(rq);
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
    rq->src = src;

    if (rq->object == HLS_PLAYLIST) {
        struct talas_buf body = {0};
        talas_hls_media_playlist(&body, &src->layout, rq->query);
        send_body(rq, "application/vnd.apple.mpegurl", PLAYLIST_CACHE_CONTROL, src->key.variant, &body);
        talas_buf_free(&body);
        return;
    }
    start_segment(rq);
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
    talas_chunk_cancel(&rq->waiter);
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
    if (rq->object != HLS_MASTER) {
        if ((cp = find_rung(ctx, q)) == NULL) {
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
    talas_shares_count(ctx, &rq->claims, rq->object == HLS_MASTER, 0);
    if (talas_stream_source(ctx, req, rq->key.track, &file, &rq->key.identity) != 0)
        return 0;
    /* the master playlist too: a track it cannot normalize gets no ladder */
    if (talas_http_normalize_apply(ctx, req, rq->key.track, &rq->key.identity, rq->normalize_dlu,
                                   &rq->profile) != 0)
        return 0;
    rq->path = file;
    rq->query = playlist_query(ctx, req, rq->normalize_dlu);
    /* every object, playlists included, waits for the verdict on the source
     * (memoised per worker): an undecodable track is a 422 everywhere */
    rq->measure.cb = on_measured;
    rq->measure.data = rq;
    talas_transcode_measure(&rq->key, rq->path, &rq->measure); /* on_measured goes on */
    return 0;
}
