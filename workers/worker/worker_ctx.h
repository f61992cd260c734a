/*
 * worker_ctx.h - what a worker's handlers share, passed to them rather
 * than looked up.
 *
 * worker.c builds one struct talas_worker_ctx after fork, before the loop
 * runs, and hands a pointer to it to every module at init and to every
 * route through the router's h2o handler. A handler never calls back into
 * worker.c: everything it may touch of the worker is here, so a test can
 * build a context of its own (a temporary LMDB store, a config from a
 * string) and drive a handler without a running worker.
 *
 * Ownership: worker.c owns the context and everything it points to, for
 * the life of the process; handlers only borrow. Nothing here but the
 * metrics slot is thread-safe: it is used on the worker's event loop only (the encoder
 * threads get copies of what they need, worker_pool.h).
 */
#ifndef TALAS_WORKER_CTX_H
#define TALAS_WORKER_CTX_H

#include <h2o.h>

#include "core/config.h"
#include "core/census.h"
#include "core/metrics.h"
#include "core/token.h"
#include "store/storage.h"

struct talas_pool;
struct talas_pg;
struct talas_cluster_bus;

/* The counters that media handlers feed: a response that streams a track
 * counts as one listener of it until the request ends (LiveStats). The
 * realtime hub implements it; media code knows only this interface. A
 * NULL stream_started counts nothing (tests, a worker without a hub). */
struct talas_stream_counters {
    void (*stream_started)(void *data, h2o_req_t *req, const char *track_id);
    void *data;
};

struct talas_worker_ctx {
    const struct talas_config *conf; /* this generation's configuration, read-only */
    struct talas_storage *storage;   /* the worker's LMDB environment */
    struct talas_token *token;       /* token verifier and URL signer */
    struct talas_pool *pool;         /* the encoder threads (worker_pool.h) */
    h2o_loop_t *loop;                /* the worker's event loop */
    struct talas_stream_counters counters;
    struct talas_pg *records;        /* cluster.postgres: the record store (cluster/pg.h); NULL: LMDB only */
    struct talas_cluster_bus *cluster; /* cluster mode's realtime plane (cluster/cluster_bus.h); NULL outside it */
    int slot;            /* 0 .. workers-1 */
    unsigned generation; /* bumped by each reload */
    /* The node's figures (core/metrics.h): this worker counts into
     * *metrics (never NULL; relaxed atomics, so the encoder threads may
     * too), and /metrics sums metrics_node, every worker's slots (NULL
     * when the master's segment could not be mapped). */
    struct talas_metrics_slot *metrics;
    const struct talas_metrics_header *metrics_node;
    /* This worker's table of the node's census (core/census.h), where it
     * counts what each identity holds here; NULL without a slot. */
    struct talas_census_table *census;
};

/* Counts a listener of track_id for as long as req lives. */
static inline void talas_worker_ctx_count_stream(const struct talas_worker_ctx *ctx, h2o_req_t *req,
                                                 const char *track_id)
{
    if (ctx->counters.stream_started != NULL)
        ctx->counters.stream_started(ctx->counters.data, req, track_id);
}

/* Where a module counts: the worker's slot, or a sink for a context that
 * has none (a unit test's). */
static inline struct talas_metrics_slot *talas_worker_ctx_metrics(const struct talas_worker_ctx *ctx)
{
    static struct talas_metrics_slot sink;

    return ctx != NULL && ctx->metrics != NULL ? ctx->metrics : &sink;
}

#endif
