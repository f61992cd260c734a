/*
 * cover_jobs.c - single-flight cover art reads and resizes on the worker's
 * pool (see cover_jobs.h).
 *
 * Entry points: talas_cover_jobs_init, talas_cover_jobs_get,
 * talas_cover_jobs_cancel, talas_cover_jobs_stop.
 *
 * Jobs live in one list on the loop thread; the pool thread touches only
 * its own job's result fields, which the loop reads after the pool's
 * completion callback.
 *
 * Logs: pictures that do not decode (warn), failed stores (error).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "media/cover_image.h"
#include "media/cover_jobs.h"
#include "store/covers.h"
#include "worker/worker_pool.h"

/* Jobs queued or running in this worker at once; more are BUSY. */
#define JOBS_MAX 16

struct cover_job {
    h2o_linklist_t link; /* in s.jobs */
    char *id, *path, *file;
    int embedded;
    uint32_t size;
    h2o_linklist_t waiters;
    volatile int cancel;
    /* written by the pool thread, read on the loop once it is done */
    enum talas_cover_status status;
    struct talas_buf out;
    const char *type;
    char *error;
};

static struct {
    struct talas_pool *pool;
    struct talas_storage *st;
    h2o_linklist_t jobs;
    size_t job_count;
} s;

/* The stored resize of JOB from IDENTITY into JOB->out: 0, or -1. */
static int from_store(struct cover_job *job, const struct talas_cache_source *identity)
{
    const void *data;
    size_t len;
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_read_begin(s.st, &txn)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        return -1;
    }
    rc = talas_covers_get(s.st, txn, job->id, job->size, identity, &data, &len);
    if (rc == 0)
        talas_buf_append(&job->out, data, len);
    else if (rc != MDB_NOTFOUND)
        log_warn("%s: the stored cover %s at %u is unreadable (%d): resizing it again", __func__, job->id,
                 job->size, rc);
    mdb_txn_abort(txn);
    return rc == 0 ? 0 : -1;
}

/* Runs on a pool thread. */
static void job_work(void *arg)
{
    struct cover_job *job = arg;
    struct talas_cache_source identity;
    struct talas_buf source = {0};
    uint64_t counters[2] = {0, 0};
    int rc;

    if (job->cancel) {
        job->status = TALAS_COVER_STOPPING;
        return;
    }
    if (talas_cover_image_read(job->path, job->embedded, job->file, &source, &identity, &job->error) != 0) {
        job->status = errno == ENOENT ? TALAS_COVER_MISSING : TALAS_COVER_UNDECODABLE;
        goto done;
    }
    if (job->size == 0) {
        job->type = talas_cover_image_type(source.data, source.len);
        job->out = source;
        source = (struct talas_buf){0};
        job->status = TALAS_COVER_OK;
        goto done;
    }
    job->type = "image/jpeg";
    if (from_store(job, &identity) == 0) {
        job->status = TALAS_COVER_OK;
        goto done;
    }
    if (talas_cover_image_resize(source.data, source.len, job->size, &job->out, &job->error) != 0) {
        job->status = TALAS_COVER_UNDECODABLE;
        counters[1] = 1;
    } else {
        job->status = TALAS_COVER_OK;
        counters[0] = 1;
        if ((rc = talas_covers_put(s.st, job->id, job->size, &identity, job->out.data, job->out.len)) != 0)
            log_error("storing the cover %s at %u failed: %s", job->id, job->size, mdb_strerror(rc));
    }
    if ((rc = talas_storage_counters_add(s.st, TALAS_COVERS_COUNTERS, counters, 2)) != 0)
        log_warn("%s: adding to the cover counters failed: %s", __func__, mdb_strerror(rc));
done:
    talas_buf_free(&source);
}

/* Runs on the loop once job_work returned (or the pool went away). */
static void job_done(void *arg, int cancelled)
{
    struct cover_job *job = arg;

    h2o_linklist_unlink(&job->link);
    s.job_count--;
    if (cancelled)
        job->status = TALAS_COVER_STOPPING;
    if (job->status == TALAS_COVER_UNDECODABLE)
        log_warn("cover %s: %s", job->id, job->error != NULL ? job->error : "the picture does not decode");
    while (!h2o_linklist_is_empty(&job->waiters)) {
        struct talas_cover_waiter *w =
            H2O_STRUCT_FROM_MEMBER(struct talas_cover_waiter, link, job->waiters.next);
        h2o_linklist_unlink(&w->link);
        if (job->status == TALAS_COVER_OK)
            w->cb(w, job->status, job->out.data, job->out.len, job->type);
        else
            w->cb(w, job->status, NULL, 0, NULL);
    }
    talas_buf_free(&job->out);
    free(job->error);
    free(job->id);
    free(job->path);
    free(job->file);
    free(job);
}

void talas_cover_jobs_get(const struct talas_cover_source *src, uint32_t size, struct talas_cover_waiter *w)
{
    struct cover_job *job = NULL;

    for (h2o_linklist_t *n = s.jobs.next; n != &s.jobs; n = n->next) {
        struct cover_job *j = H2O_STRUCT_FROM_MEMBER(struct cover_job, link, n);
        if (j->size == size && strcmp(j->id, src->id) == 0) {
            job = j;
            break;
        }
    }
    if (job == NULL) {
        if (s.job_count >= JOBS_MAX) {
            w->cb(w, TALAS_COVER_BUSY, NULL, 0, NULL);
            return;
        }
        job = xcalloc(1, sizeof(*job));
        job->id = xstrdup(src->id);
        job->path = xstrdup(src->path);
        job->file = xstrdup(src->file != NULL ? src->file : "");
        job->embedded = src->embedded;
        job->size = size;
        h2o_linklist_init_anchor(&job->waiters);
        h2o_linklist_insert(&s.jobs, &job->link);
        s.job_count++;
        talas_pool_submit(s.pool, job_work, job_done, job, 0);
    }
    h2o_linklist_insert(&job->waiters, &w->link);
}

void talas_cover_jobs_cancel(struct talas_cover_waiter *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

void talas_cover_jobs_init(const struct talas_worker_ctx *ctx)
{
    memset(&s, 0, sizeof(s));
    s.pool = ctx->pool;
    s.st = ctx->storage;
    h2o_linklist_init_anchor(&s.jobs);
}

void talas_cover_jobs_stop(void)
{
    for (h2o_linklist_t *n = s.jobs.next; n != NULL && n != &s.jobs; n = n->next)
        H2O_STRUCT_FROM_MEMBER(struct cover_job, link, n)->cancel = 1;
}
