/*
 * http_hls_reply.c - the objects of one HLS rendition, for the routes of a
 * track (http_hls.c) and of a queue (http_hls_queue.c).
 *
 * Entry points: talas_hls_object_parse, talas_hls_find_rung,
 * talas_hls_reply_body, talas_hls_reply_master, talas_hls_reply_init,
 * talas_hls_reply_playlist, talas_hls_reply_segment.
 *
 * A segment is chunk N of the rendition, as talas_chunk_get delivers it
 * (transcode_jobs.h): from the cache, or encoded alone by one process of
 * the server while any others wait for it, never the segments before it.
 * Each segment asks for the next one to be made while the player plays
 * this one.
 *
 * Logs: chunks that are not what their layout says (error).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "http/http_authorize.h"
#include "http/http_hls_reply.h"
#include "http/http_response.h"
#include "http/http_source.h"
#include "media/transcode_limit.h"

/* ---------------------------------------------------------------- paths */

int talas_hls_object_parse(const char *p, size_t len, enum talas_hls_object *object_r, h2o_iovec_t *q_r,
                           uint32_t *segment_r)
{
    const char *slash, *file;
    size_t file_len;

    if (len == 11 && memcmp(p, "master.m3u8", 11) == 0) {
        *object_r = TALAS_HLS_MASTER;
        return 0;
    }
    if ((slash = memchr(p, '/', len)) == NULL || slash == p || slash - p > 31)
        return -1;
    *q_r = h2o_iovec_init(p, (size_t)(slash - p));
    file = slash + 1;
    file_len = len - (size_t)(file - p);
    if (file_len == 13 && memcmp(file, "playlist.m3u8", 13) == 0) {
        *object_r = TALAS_HLS_PLAYLIST;
        return 0;
    }
    if (file_len == 8 && memcmp(file, "init.mp4", 8) == 0) {
        *object_r = TALAS_HLS_INIT;
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
        *object_r = TALAS_HLS_SEGMENT;
        *segment_r = (uint32_t)n;
        return 0;
    }
    return -1;
}

const struct talas_config_profile *talas_hls_find_rung(const struct talas_config *conf, h2o_iovec_t q)
{
    for (size_t i = 0; i < conf->transcode_profile_count; i++) {
        const struct talas_config_profile *cp = &conf->transcode_profiles[i];
        if (cp->hls && strlen(cp->name) == q.len && memcmp(cp->name, q.base, q.len) == 0)
            return cp;
    }
    return NULL;
}

/* ------------------------------------------------------------ responses */

void talas_hls_reply_body(struct talas_hls_reply *r, const char *type, const char *cache_control,
                          const char *what, const struct talas_buf *body)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    h2o_iovec_t vec, cc;
    char etag[160];
    int n, status;

    n = snprintf(etag, sizeof(etag), "\"%s-%s\"", r->etag_prefix, what);
    if (n < 0 || (size_t)n >= sizeof(etag))
        n = 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                   h2o_strdup(&req->pool, etag, (size_t)n).base, (size_t)n);
    if (r->claims->exp == 0)
        cc = h2o_iovec_init(cache_control, strlen(cache_control));
    else
        cc = talas_http_media_cache_control(req, r->claims);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc.base, cc.len);
    if ((status = talas_http_preconditions(req, etag, (size_t)n, r->last_modified)) != 0) {
        talas_http_send_precondition(req, status);
        return;
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = body->len;
    vec = h2o_strdup(&req->pool, body->data != NULL ? body->data : "", body->len);
    h2o_start_response(req, &generator);
    h2o_send(req, &vec, talas_http_method_is(req, "HEAD") ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void talas_hls_reply_master(struct talas_hls_reply *r, const struct talas_hls_rung *rungs, size_t n,
                            const char *query)
{
    struct talas_buf body = {0};
    uint32_t hash = 2166136261u;
    char what[32];

    if (n == 0) {
        talas_http_send_error(r->req, 404, "no_hls", "no profile is an HLS rung (transcode.profiles: hls)");
        return;
    }
    talas_hls_master(&body, rungs, n, query);
    for (size_t i = 0; i < body.len; i++)
        hash = (hash ^ (uint8_t)body.data[i]) * 16777619u;
    snprintf(what, sizeof(what), "master-%08" PRIx32, hash);
    talas_hls_reply_body(r, "application/vnd.apple.mpegurl", TALAS_HLS_PLAYLIST_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

void talas_hls_reply_init(struct talas_hls_reply *r)
{
    struct talas_buf body = {0};
    char what[64];

    if (talas_hls_init_segment(&body, r->profile) != 0) {
        talas_http_send_error(r->req, 500, "unsupported_profile", "profile %s cannot be packaged as fMP4",
                              r->profile->name);
        talas_buf_free(&body);
        return;
    }
    snprintf(what, sizeof(what), "init.%s.%u.%u", r->profile->name, r->profile->bitrate / 1000,
             r->profile->sample_rate);
    talas_hls_reply_body(r, "audio/mp4", TALAS_HLS_SEGMENT_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

void talas_hls_reply_playlist(struct talas_hls_reply *r, const char *query)
{
    struct talas_buf body = {0};

    talas_hls_media_playlist(&body, &r->src->layout, query);
    talas_hls_reply_body(r, "application/vnd.apple.mpegurl", TALAS_HLS_PLAYLIST_CACHE_CONTROL,
                         r->src->key.variant, &body);
    talas_buf_free(&body);
}

/* -------------------------------------------------------------- segments */

static void send_segment(struct talas_hls_reply *r, const uint8_t *adts, size_t len)
{
    struct talas_buf body = {0};
    const char *error;
    char what[64];

    if (talas_hls_media_segment(&body, &r->src->layout, r->segment, adts, len, &error) != 0) {
        log_error("hls %s/%s segment %" PRIu32 ": %s", r->src->key.track, r->src->key.variant, r->segment,
                  error);
        talas_http_send_error(r->req, 500, "bad_segment", "this segment could not be made");
        talas_buf_free(&body);
        return;
    }
    if (r->before_segment != NULL) {
        uint64_t start, length;

        talas_hls_segment_span(&r->src->layout, r->segment, &start, &length);
        r->before_segment(r, start, length);
    }
    snprintf(what, sizeof(what), "%s-%" PRIu32, r->src->key.variant, r->segment);
    talas_hls_reply_body(r, "audio/mp4", TALAS_HLS_SEGMENT_CACHE_CONTROL, what, &body);
    talas_buf_free(&body);
}

static void prefetch_after(struct talas_hls_reply *r)
{
    const struct talas_layout *l = &r->src->layout;
    uint32_t next = r->segment + 1;

    /* the next segment, and one more while they are short ones */
    talas_chunk_prefetch(r->src, next, NULL);
    if (next < l->chunks && talas_layout_chunk_frame_count(l, next) < l->chunk_frames)
        talas_chunk_prefetch(r->src, next + 1, NULL);
}

static void on_chunk(struct talas_chunk_waiter *w, enum talas_chunk_status status, struct talas_chunk *chunk)
{
    struct talas_hls_reply *r = w->data;

    switch (status) {
    case TALAS_CHUNK_OK:
        talas_transcode_count_segment(!r->encoding);
        send_segment(r, (const uint8_t *)chunk->data, chunk->len); /* the body is a copy */
        talas_chunk_release(chunk);
        if (!r->encoding)
            prefetch_after(r);
        return;
    case TALAS_CHUNK_MISSING:
        /* transcode.max_concurrent*: encoding this segment needs a slot */
        if (talas_transcode_slot_take(r->req) != 0)
            return;
        r->encoding = 1;
        /* this segment's encode first: the prefetches queue behind it */
        talas_chunk_get(r->src, r->segment, TALAS_CHUNK_URGENT | TALAS_CHUNK_COUNT, &r->waiter);
        prefetch_after(r);
        return;
    case TALAS_CHUNK_RETRY:
    case TALAS_CHUNK_ERROR:
    default:
        if (r->encoding)
            talas_transcode_count_segment(0);
        talas_http_send_error(r->req, 503, "encode_failed", "this segment could not be encoded; try again");
        return;
    }
}

void talas_hls_reply_segment(struct talas_hls_reply *r)
{
    if (r->segment >= r->src->layout.chunks) {
        talas_http_send_error(r->req, 404, "not_found", "no segment %" PRIu32 " (there are %" PRIu32 ")",
                              r->segment, r->src->layout.chunks);
        return;
    }
    r->waiter.cb = on_chunk;
    r->waiter.data = r;
    /* the cache first: a cached segment takes no transcode slot */
    talas_chunk_get(r->src, r->segment, TALAS_CHUNK_CACHED_ONLY | TALAS_CHUNK_COUNT, &r->waiter);
}
