/*
 * peaks_jobs.h - where a worker's waveforms come from.
 *
 * A request for the peaks of (track, file identity) makes one call,
 * talas_peaks_jobs_get. Stored peaks (store/peaks.h) are answered at once,
 * from the map. Else the request waits for a job: one per (track,
 * identity) in this worker, which decodes the whole source on a pool
 * thread (peaks_decode.h), stores the record in one short write
 * transaction, and counts the decode in the META counters
 * TALAS_PEAKS_COUNTERS. Every waiter is answered from the job's record, so
 * a store that failed (map full) still answers. A source that does not
 * decode is remembered (per worker, by identity) and answered without
 * decoding it again.
 *
 * Everything here runs on the worker's loop thread except the decode and
 * the store, which run on a pool thread.
 */
#ifndef TALAS_PEAKS_JOBS_H
#define TALAS_PEAKS_JOBS_H

#include <h2o.h>

#include "store/peaks.h"
#include "worker/worker_ctx.h"

/* How a request for peaks ends. */
enum talas_peaks_status {
    TALAS_PEAKS_OK = 0,      /* the peaks */
    TALAS_PEAKS_UNDECODABLE, /* the source does not decode (logged once) */
    TALAS_PEAKS_BUSY,        /* too many decodes in this worker: retry shortly */
    TALAS_PEAKS_STOPPING,    /* the worker is stopping: the decode was interrupted */
    TALAS_PEAKS_ERROR,       /* the storage could not be read (logged) */
};

struct talas_peaks_waiter;
/* Called on the loop thread, once per talas_peaks_jobs_get: STATUS, and
 * with TALAS_PEAKS_OK the peaks P, valid during the call only. */
typedef void (*talas_peaks_fn)(struct talas_peaks_waiter *w, enum talas_peaks_status status,
                               const struct talas_peaks *p);

/* Owned by the caller (e.g. in a request's pool), zeroed once; set CB and
 * DATA before talas_peaks_jobs_get. */
struct talas_peaks_waiter {
    h2o_linklist_t link; /* linked while waiting for a job */
    talas_peaks_fn cb;
    void *data; /* the caller's */
};

/* Starts the per-worker machinery from CTX: its pool runs the decodes, its
 * storage keeps the peaks (both outlive talas_peaks_jobs_stop). */
void talas_peaks_jobs_init(const struct talas_worker_ctx *ctx);

/*
 * Gets the peaks of TRACK, whose file at PATH has identity IDENTITY, for
 * W (not waiting already). W->cb is called exactly once, unless
 * talas_peaks_jobs_cancel comes first: before the call returns when the
 * answer is known (stored, known undecodable, busy), else later from the
 * loop once the job is done.
 */
void talas_peaks_jobs_get(const char *track, const char *path, const struct talas_cache_source *identity,
                          struct talas_peaks_waiter *w);

/* Detaches W (the request went away); its job goes on, for the next
 * request. Harmless when W is not waiting. */
void talas_peaks_jobs_cancel(struct talas_peaks_waiter *w);

/* Interrupts the decodes in progress (the worker is stopping). */
void talas_peaks_jobs_stop(void);

#endif
