/*
 * cover_jobs.h - where a worker's cover art comes from.
 *
 * A request for the picture of cover ID (a track id) at SIZE pixels (0:
 * the source's bytes as they are) makes one call, talas_cover_jobs_get,
 * and waits for a job: one per (id, size) in this worker, shared by every
 * request that asks meanwhile. The job runs on a pool thread: it reads the
 * picture (cover_image.h), answers SIZE 0 with it, else looks for the
 * resized JPEG in the covers database (store/covers.h) and, when it is not
 * there, decodes, resizes and stores it, counting the resize in the META
 * counters TALAS_COVERS_COUNTERS.
 *
 * Everything here runs on the worker's loop thread except the job itself.
 */
#ifndef TALAS_COVER_JOBS_H
#define TALAS_COVER_JOBS_H

#include <h2o.h>

#include "worker/worker_ctx.h"

/* How a request for a picture ends. */
enum talas_cover_status {
    TALAS_COVER_OK = 0,      /* the picture */
    TALAS_COVER_MISSING,     /* the source is gone or has no picture */
    TALAS_COVER_UNDECODABLE, /* the picture does not decode (logged) */
    TALAS_COVER_BUSY,        /* too many jobs in this worker: retry shortly */
    TALAS_COVER_STOPPING,    /* the worker is stopping */
};

struct talas_cover_waiter;
/* Called on the loop thread, once per talas_cover_jobs_get: STATUS, and
 * with TALAS_COVER_OK the picture DATA (LEN bytes) of Content-Type TYPE,
 * valid during the call only. */
typedef void (*talas_cover_fn)(struct talas_cover_waiter *w, enum talas_cover_status status, const void *data,
                               size_t len, const char *type);

/* Owned by the caller (e.g. in a request's pool), zeroed once; set CB and
 * DATA before talas_cover_jobs_get. */
struct talas_cover_waiter {
    h2o_linklist_t link; /* linked while waiting for a job */
    talas_cover_fn cb;
    void *data; /* the caller's */
};

/* A track's picture: where the scanner found it (store/catalog.h). */
struct talas_cover_source {
    const char *id;   /* the cover id: the track's id */
    const char *path; /* the track's file */
    int embedded;     /* 1: its attached picture; 0: FILE beside it */
    const char *file;
};

/* Starts the per-worker machinery from CTX (its pool and storage). */
void talas_cover_jobs_init(const struct talas_worker_ctx *ctx);

/* Gets the picture of SRC at SIZE (0..TALAS_COVER_SIZE_MAX) for W (not
 * waiting already); SRC's strings are copied. W->cb is called exactly
 * once, unless talas_cover_jobs_cancel comes first: at once when busy,
 * else later from the loop. */
void talas_cover_jobs_get(const struct talas_cover_source *src, uint32_t size, struct talas_cover_waiter *w);

/* Detaches W (the request went away); its job goes on. Harmless when W is
 * not waiting. */
void talas_cover_jobs_cancel(struct talas_cover_waiter *w);

/* Marks the jobs in progress cancelled (the worker is stopping). */
void talas_cover_jobs_stop(void);

#endif
