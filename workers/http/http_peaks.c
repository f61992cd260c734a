/*
 * http_peaks.c - the route GET /api/tracks/{id}/peaks (see http_peaks.h).
 *
 * Entry point: talas_peaks_serve.
 *
 * A request is checked in the order of the media routes: its token first
 * (nothing is read for a refused request), then points=, the catalog, the
 * file (its size and mtime are the identity of the peaks, and the ETag).
 * Then it asks peaks_jobs.h for the peaks of that identity (stored ones at
 * once, else when this worker's decode of the source is done) and reduces
 * them to the points asked for.
 *
 * Logs nothing itself (peaks_jobs.c logs decodes and stores).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/catalog.h"
#include "http/http_peaks.h"
#include "http/http_response.h"
#include "http/http_authorize.h"
#include "http/http_source.h"
#include "media/peaks_jobs.h"
#include "core/util.h"
#include "worker/worker_ctx.h"

/* One request for peaks; in the request's pool. */
struct peaks_request {
    h2o_req_t *req;
    char track[TALAS_TRACK_ID_LEN + 1];
    uint32_t points;
    h2o_iovec_t etag;
    struct talas_token_claims claims;
    struct talas_peaks_waiter waiter;
};

/* ------------------------------------------------------------- answers */

/* A level as JSON: at most 4 decimals, no trailing zeros. */
static void put_level(struct talas_buf *out, float v)
{
    char num[16];
    int n = snprintf(num, sizeof(num), "%.4f", (double)v);

    while (n > 0 && num[n - 1] == '0')
        n--;
    if (n > 0 && num[n - 1] == '.')
        n--;
    num[n] = '\0';
    talas_buf_puts(out, strcmp(num, "-0") == 0 ? "0" : num);
}

static void put_levels(struct talas_buf *out, const float *v, uint32_t n)
{
    talas_buf_puts(out, "[");
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            talas_buf_puts(out, ",");
        put_level(out, v[i]);
    }
    talas_buf_puts(out, "]");
}

static void add_validators(h2o_req_t *req, h2o_iovec_t etag, const struct talas_token_claims *claims)
{
    h2o_iovec_t cc = talas_http_media_cache_control(req, claims);

    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, etag.base, etag.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc.base, cc.len);
}

static void send_peaks(struct peaks_request *w, const struct talas_peaks *p)
{
    struct talas_buf body = {0};
    float *mn = xmalloc(sizeof(float) * w->points), *mx = xmalloc(sizeof(float) * w->points);

    talas_peaks_downsample(p, w->points, mn, mx);
    /* the id has the form of a track id: nothing to escape */
    talas_buf_printf(
        &body, "{\"track_id\":\"%s\",\"duration_ms\":%" PRIu64 ",\"points\":%" PRIu32 ",\"min\":", w->track,
        p->duration_ms, w->points);
    put_levels(&body, mn, w->points);
    talas_buf_puts(&body, ",\"max\":");
    put_levels(&body, mx, w->points);
    talas_buf_puts(&body, "}\n");
    add_validators(w->req, w->etag, &w->claims);
    talas_http_send_json(w->req, 200, &body);
    talas_buf_free(&body);
    free(mn);
    free(mx);
}

static void on_peaks(struct talas_peaks_waiter *pw, enum talas_peaks_status status,
                     const struct talas_peaks *p)
{
    struct peaks_request *w = pw->data;

    switch (status) {
    case TALAS_PEAKS_OK:
        send_peaks(w, p); /* the body is a copy: the map may go */
        return;
    case TALAS_PEAKS_UNDECODABLE:
        talas_http_send_error(w->req, 422, "undecodable", "this track cannot be decoded");
        return;
    case TALAS_PEAKS_BUSY:
        h2o_add_header(&w->req->pool, &w->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        talas_http_send_error(w->req, 503, "busy", "too many waveforms are being computed; retry shortly");
        return;
    case TALAS_PEAKS_STOPPING:
        talas_http_send_error(w->req, 503, "unavailable", "the server is stopping");
        return;
    case TALAS_PEAKS_ERROR:
    default:
        talas_http_send_error(w->req, 500, "storage_error", "the storage could not be read");
        return;
    }
}

static void request_dispose(void *p)
{
    struct peaks_request *w = p;

    /* the client went away first: the job goes on, for the next request */
    talas_peaks_jobs_cancel(&w->waiter);
}

/* ------------------------------------------------------------- request */

/* points=: TALAS_PEAKS_POINTS_DEFAULT when absent; answers 400 and
 * returns -1 unless it is an integer from 1 to TALAS_PEAKS_POINTS_MAX. */
static int points_param(h2o_req_t *req, uint32_t *points_r)
{
    h2o_iovec_t v;
    int found = talas_http_query_param(req, "points", &v);
    unsigned long n = 0;

    *points_r = TALAS_PEAKS_POINTS_DEFAULT;
    if (found == 0)
        return 0;
    if (found == 1 && v.len > 0 && v.len <= 4) {
        size_t i;
        for (i = 0; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++)
            n = n * 10 + (unsigned long)(v.base[i] - '0');
        if (i == v.len && n >= 1 && n <= TALAS_PEAKS_POINTS_MAX) {
            *points_r = (uint32_t)n;
            return 0;
        }
    }
    talas_http_send_error(req, 400, "invalid_parameter", "points: must be an integer from 1 to %d",
                          TALAS_PEAKS_POINTS_MAX);
    return -1;
}

int talas_peaks_serve(const struct talas_worker_ctx *ctx, h2o_req_t *req, const char *id, size_t len)
{
    struct talas_cache_source identity;
    struct peaks_request *w;
    char *path, etag[64];
    int status;

    w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), request_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    if (talas_http_track_request(req, id, len, w->track) != 0)
        return 0;
    /* the token first: nothing is read or decoded for a refused request */
    if (talas_http_authorize(ctx, req, w->track, TALAS_TOKEN_STREAM, &w->claims) != 0)
        return 0;
    if (points_param(req, &w->points) != 0)
        return 0;
    /* the file as it is now: a changed file has other peaks */
    if (talas_stream_source(ctx, req, w->track, &path, &identity) != 0)
        return 0;
    w->etag = h2o_strdup(&req->pool, etag,
                         (size_t)snprintf(etag, sizeof(etag), "\"pk-%" PRIx64 "-%" PRIx64 "-%" PRIu32 "\"",
                                          (uint64_t)identity.mtime_ns, identity.size, w->points));
    if ((status = talas_http_preconditions(req, w->etag.base, w->etag.len, identity.mtime_ns / 1000000000)) !=
        0) {
        add_validators(req, w->etag, &w->claims);
        talas_http_send_precondition(req, status);
        return 0;
    }
    w->waiter.cb = on_peaks;
    w->waiter.data = w;
    talas_peaks_jobs_get(w->track, path, &identity, &w->waiter); /* on_peaks answers */
    return 0;
}
