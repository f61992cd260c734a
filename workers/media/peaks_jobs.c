/*
 * peaks_jobs.c - single-flight waveform decodes on the worker's pool (see
 * peaks_jobs.h).
 *
 * Entry points: talas_peaks_jobs_init, talas_peaks_jobs_get,
 * talas_peaks_jobs_cancel, talas_peaks_jobs_stop.
 *
 * Jobs live in one list on the loop thread; the pool thread touches only
 * its own job's result fields, which the loop reads after the pool's
 * completion callback.
 *
 * Logs: sources that do not decode (warn), unreadable stored records
 * (warn), failed stores and read transactions (error).
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "media/peaks_decode.h"
#include "media/peaks_jobs.h"
#include "worker/worker_pool.h"

/* Decodes queued or running in this worker at once; more are BUSY. */
#define JOBS_MAX 8
/* Sources remembered as undecodable. */
#define FAILED_SLOTS 64

struct peaks_job {
    h2o_linklist_t link; /* in s.jobs */
    char track[17];
    char *path;
    struct talas_cache_source identity;
    h2o_linklist_t waiters;
    volatile int cancel;
    /* written by the pool thread, read on the loop once it is done */
    int result; /* 0 peaks in rec, -1 undecodable, 1 cancelled */
    struct talas_buf rec;
    char *error;
};

struct failed_source {
    char track[17];
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

/* Runs on a pool thread. */
static void job_work(void *arg)
{
    struct peaks_job *job = arg;
    uint64_t counters[2] = {0, 0};
    int rc;

    job->result = talas_peaks_decode_source(job->path, &job->identity, &job->cancel, &job->rec, &job->error);
    if (job->result == 0 && (rc = talas_peaks_put(s.st, job->track, job->rec.data, job->rec.len)) != 0)
        log_error("storing the peaks of %s failed: %s", job->track, mdb_strerror(rc));
    if (job->result != 1) {
        counters[job->result == 0 ? 0 : 1] = 1;
        if ((rc = talas_storage_counters_add(s.st, TALAS_PEAKS_COUNTERS, counters, 2)) != 0)
            log_warn("%s: adding to the peaks counters failed: %s", __func__, mdb_strerror(rc));
    }
}

/* Runs on the loop once job_work returned (or the pool went away). */
static void job_done(void *arg, int cancelled)
{
    struct peaks_job *job = arg;
    enum talas_peaks_status status;
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
    status = job->result == 0    ? TALAS_PEAKS_OK
             : job->result == -1 ? TALAS_PEAKS_UNDECODABLE
                                 : TALAS_PEAKS_STOPPING;
    while (!h2o_linklist_is_empty(&job->waiters)) {
        struct talas_peaks_waiter *w =
            H2O_STRUCT_FROM_MEMBER(struct talas_peaks_waiter, link, job->waiters.next);
        h2o_linklist_unlink(&w->link);
        w->cb(w, status, status == TALAS_PEAKS_OK ? &p : NULL);
    }
    talas_buf_free(&job->rec);
    free(job->error);
    free(job->path);
    free(job);
}

/* Makes W wait for the job of (TRACK, IDENTITY) at PATH, starting it. */
static void wait_for_job(const char *track, const char *path, const struct talas_cache_source *identity,
                         struct talas_peaks_waiter *w)
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
            w->cb(w, TALAS_PEAKS_BUSY, NULL);
            return;
        }
        job = xcalloc(1, sizeof(*job));
        snprintf(job->track, sizeof(job->track), "%s", track);
        job->path = xstrdup(path);
        job->identity = *identity;
        h2o_linklist_init_anchor(&job->waiters);
        h2o_linklist_insert(&s.jobs, &job->link);
        s.job_count++;
        talas_pool_submit(s.pool, job_work, job_done, job, 0);
    }
    h2o_linklist_insert(&job->waiters, &w->link);
}

void talas_peaks_jobs_get(const char *track, const char *path, const struct talas_cache_source *identity,
                          struct talas_peaks_waiter *w)
{
    struct talas_peaks p;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(s.st, &txn)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        w->cb(w, TALAS_PEAKS_ERROR, NULL);
        return;
    }
    rc = talas_peaks_get(s.st, txn, track, identity, &p);
    if (rc == 0)
        w->cb(w, TALAS_PEAKS_OK, &p); /* the map stays valid during the call */
    mdb_txn_abort(txn);
    if (rc == 0)
        return;
    if (rc != MDB_NOTFOUND)
        log_warn("%s: the stored peaks of %s are unreadable (%d): computing them again", __func__, track, rc);
    if (known_failed(track, identity)) {
        w->cb(w, TALAS_PEAKS_UNDECODABLE, NULL);
        return;
    }
    wait_for_job(track, path, identity, w);
}

void talas_peaks_jobs_cancel(struct talas_peaks_waiter *w)
{
    /* the job goes on: the next request for these peaks finds them stored */
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

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
