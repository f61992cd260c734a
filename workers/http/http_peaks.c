/*
 * http_peaks.c - a track's waveform over HTTP (see http_peaks.h).
 *
 * Entry points: talas_peaks_jobs_init, talas_peaks_serve,
 * talas_peaks_jobs_stop.
 *
 * A request is checked in the order of the media routes: its token first
 * (nothing is read for a refused request), then points=, the catalog, the
 * file (its size and mtime are the identity of the peaks, and the ETag).
 * Stored peaks of that identity are answered at once, from the map. Else
 * the request waits for a job: one per (track, identity) in this worker,
 * which measures and decodes the whole source on a pool thread, stores the
 * record in one short write transaction, and counts the decode in the META
 * counters "peaks" (GET /api/stats shows them). Every waiter is answered
 * from the job's record, so a store that failed (map full) still answers.
 * A source that does not decode is remembered (per worker, by identity) and
 * answered 422 without decoding it again.
 *
 * Logs: sources that do not decode (warn), failed stores (error).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/catalog.h"
#include "http/http_peaks.h"
#include "http/http_response.h"
#include "http/http_stream.h"
#include "core/log.h"
#include "store/peaks.h"
#include "media/transcoder.h"
#include "core/util.h"
#include "worker/worker_ctx.h"
#include "worker/worker_pool.h"

/* Decodes queued or running in this worker at once; more get a 503. */
#define JOBS_MAX 8
/* Sources remembered as undecodable. */
#define FAILED_SLOTS 64

struct peaks_job {
    h2o_linklist_t link; /* in s.jobs */
    char track[TALAS_TRACK_ID_LEN + 1];
    char *path;
    struct talas_cache_source identity;
    h2o_linklist_t waiters;
    volatile int cancel;
    /* written by the pool thread, read on the loop once it is done */
    int result; /* 0 peaks in rec, -1 undecodable, 1 cancelled */
    struct talas_buf rec;
    char *error;
};

/* One request waiting for a job; in the request's pool. */
struct peaks_waiter {
    h2o_linklist_t link; /* in job->waiters while waiting */
    h2o_req_t *req;
    uint32_t points;
    h2o_iovec_t etag;
    struct talas_token_claims claims;
};

struct failed_source {
    char track[TALAS_TRACK_ID_LEN + 1];
    struct talas_cache_source identity;
};

static struct {
    struct talas_pool *pool;
    struct talas_storage *st;
    h2o_linklist_t jobs;
    size_t job_count;
    struct failed_source failed[FAILED_SLOTS];
    size_t failed_next;
} s;

static int same_source(const char *track, const struct talas_cache_source *a, const char *track2,
                       const struct talas_cache_source *b)
{
    return strcmp(track, track2) == 0 && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static int known_failed(const char *track, const struct talas_cache_source *identity)
{
    for (size_t i = 0; i < FAILED_SLOTS; i++)
        if (s.failed[i].track[0] != '\0' &&
            same_source(track, identity, s.failed[i].track, &s.failed[i].identity))
            return 1;
    return 0;
}

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

static void send_peaks(struct peaks_waiter *w, const char *track, const struct talas_peaks *p)
{
    struct talas_buf body = {0};
    float *mn = xmalloc(sizeof(float) * w->points), *mx = xmalloc(sizeof(float) * w->points);

    talas_peaks_downsample(p, w->points, mn, mx);
    /* the id has the form of a track id: nothing to escape */
    talas_buf_printf(
        &body, "{\"track_id\":\"%s\",\"duration_ms\":%" PRIu64 ",\"points\":%" PRIu32 ",\"min\":", track,
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

/* ---------------------------------------------------------------- jobs */

/* Runs on a pool thread. */
static void job_work(void *arg)
{
    struct peaks_job *job = arg;
    struct talas_source_info info;
    uint64_t counters[2] = {0, 0};
    float *mn = NULL, *mx = NULL;
    uint32_t buckets;
    int rc;

    if (job->cancel) {
        job->result = 1;
        return;
    }
    if (talas_source_measure(job->path, &info, &job->error) != 0 || info.samples == 0 ||
        info.sample_rate == 0) {
        if (job->error == NULL)
            job->error = xstrdup("no audio samples");
        job->result = -1;
        goto count;
    }
    buckets = info.samples < TALAS_PEAKS_BUCKETS ? (uint32_t)info.samples : TALAS_PEAKS_BUCKETS;
    mn = xmalloc(sizeof(float) * buckets);
    mx = xmalloc(sizeof(float) * buckets);
    if (talas_source_peaks(job->path, info.samples, buckets, &job->cancel, mn, mx, &job->error) != 0) {
        job->result = job->cancel ? 1 : -1;
        goto count;
    }
    talas_peaks_encode(&job->identity, info.samples * 1000 / info.sample_rate, buckets, mn, mx, &job->rec);
    job->result = 0;
    if ((rc = talas_peaks_put(s.st, job->track, job->rec.data, job->rec.len)) != 0)
        log_error("storing the peaks of %s failed: %s", job->track, mdb_strerror(rc));
count:
    if (job->result != 1) {
        counters[job->result == 0 ? 0 : 1] = 1;
        if ((rc = talas_storage_counters_add(s.st, TALAS_PEAKS_COUNTERS, counters, 2)) != 0)
            log_warn("%s: adding to the peaks counters failed: %s", __func__, mdb_strerror(rc));
    }
    free(mn);
    free(mx);
}

/* Runs on the loop once job_work returned (or the pool went away). */
static void job_done(void *arg, int cancelled)
{
    struct peaks_job *job = arg;
    struct talas_peaks p;

    h2o_linklist_unlink(&job->link);
    s.job_count--;
    if (cancelled)
        job->result = 1;
    if (job->result == -1) {
        struct failed_source *f = &s.failed[s.failed_next++ % FAILED_SLOTS];
        log_warn("peaks of %s: %s", job->track,
                 job->error != NULL ? job->error : "the source does not decode");
        memcpy(f->track, job->track, sizeof(f->track));
        f->identity = job->identity;
    }
    if (job->result == 0 && talas_peaks_decode(job->rec.data, job->rec.len, &p) != 0)
        job->result = -1; /* cannot happen: the record was just encoded */
    while (!h2o_linklist_is_empty(&job->waiters)) {
        struct peaks_waiter *w = H2O_STRUCT_FROM_MEMBER(struct peaks_waiter, link, job->waiters.next);
        h2o_linklist_unlink(&w->link);
        if (job->result == 0)
            send_peaks(w, job->track, &p);
        else if (job->result == -1)
            talas_http_send_error(w->req, 422, "undecodable", "this track cannot be decoded");
        else
            talas_http_send_error(w->req, 503, "unavailable", "the server is stopping");
    }
    talas_buf_free(&job->rec);
    free(job->error);
    free(job->path);
    free(job);
}

static void waiter_dispose(void *p)
{
    struct peaks_waiter *w = p;

    /* the client went away first: the job goes on, for the next request */
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* Makes W wait for the peaks of (TRACK, IDENTITY) at PATH. */
static void wait_for_job(struct peaks_waiter *w, const char *track, const char *path,
                         const struct talas_cache_source *identity)
{
    struct peaks_job *job = NULL;

    for (h2o_linklist_t *n = s.jobs.next; n != &s.jobs; n = n->next) {
        struct peaks_job *j = H2O_STRUCT_FROM_MEMBER(struct peaks_job, link, n);
        if (same_source(j->track, &j->identity, track, identity)) {
            job = j;
            break;
        }
    }
    if (job == NULL) {
        if (s.job_count >= JOBS_MAX) {
            h2o_add_header(&w->req->pool, &w->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
            talas_http_send_error(w->req, 503, "busy",
                                  "too many waveforms are being computed; retry shortly");
            return;
        }
        job = xcalloc(1, sizeof(*job));
        memcpy(job->track, track, sizeof(job->track));
        job->path = xstrdup(path);
        job->identity = *identity;
        h2o_linklist_init_anchor(&job->waiters);
        h2o_linklist_insert(&s.jobs, &job->link);
        s.job_count++;
        talas_pool_submit(s.pool, job_work, job_done, job, 0);
    }
    h2o_linklist_insert(&job->waiters, &w->link);
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
    struct talas_storage *st = ctx->storage;
    struct talas_cache_source identity;
    struct peaks_waiter *w;
    struct talas_peaks p;
    char id_buf[TALAS_TRACK_ID_LEN + 1], *path, etag[64];
    MDB_txn *txn;
    int rc, status;

    if (talas_http_track_request(req, id, len, id_buf) != 0)
        return 0;
    w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), waiter_dispose);
    memset(w, 0, sizeof(*w));
    w->req = req;
    /* the token first: nothing is read or decoded for a refused request */
    if (talas_http_authorize(req, id_buf, TALAS_TOKEN_STREAM, &w->claims) != 0)
        return 0;
    if (points_param(req, &w->points) != 0)
        return 0;
    /* the file as it is now: a changed file has other peaks */
    if (talas_stream_source(req, id_buf, &path, &identity) != 0)
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

    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        talas_http_send_error(req, 500, "storage_error", "the storage could not be read");
        return 0;
    }
    rc = talas_peaks_get(st, txn, id_buf, &identity, &p);
    if (rc == 0)
        send_peaks(w, id_buf, &p); /* the body is a copy: the map may go */
    mdb_txn_abort(txn);
    if (rc == 0)
        return 0;
    if (rc != MDB_NOTFOUND)
        log_warn("%s: the stored peaks of %s are unreadable (%d): computing them again", __func__, id_buf,
                 rc);
    if (known_failed(id_buf, &identity)) {
        talas_http_send_error(req, 422, "undecodable", "this track cannot be decoded");
        return 0;
    }
    wait_for_job(w, id_buf, path, &identity);
    return 0;
}

/* ----------------------------------------------------------- lifecycle */

void talas_peaks_jobs_init(const struct talas_worker_ctx *ctx)
{
    memset(&s, 0, sizeof(s));
    s.pool = ctx->pool;
    s.st = ctx->storage;
    h2o_linklist_init_anchor(&s.jobs);
}

void talas_peaks_jobs_stop(void)
{
    for (h2o_linklist_t *n = s.jobs.next; n != NULL && n != &s.jobs; n = n->next)
        H2O_STRUCT_FROM_MEMBER(struct peaks_job, link, n)->cancel = 1;
}
