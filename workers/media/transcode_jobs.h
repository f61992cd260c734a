/*
 * transcode_jobs.h - where a worker's transcode chunks come from.
 *
 * A response that needs chunk N of (track, variant) asks for it here. If
 * the LMDB cache has it, the answer is immediate. Otherwise exactly one
 * process in the whole server encodes it (a claim in the cache decides
 * which): when it is this worker, an encode job runs on the worker's pool
 * threads and every local waiter gets the bytes as soon as they exist;
 * when it is another worker, this one polls the cache every
 * WATCH_INTERVAL_MS until the chunk appears (or the claim goes stale, and
 * it encodes the chunk itself). A job that loses its last waiter is
 * cancelled: the encoder stops within one frame.
 *
 * Everything here runs on the worker's loop thread except the encode and
 * the cache write, which run on a pool thread.
 */
#ifndef TALAS_TRANSCODE_JOBS_H
#define TALAS_TRANSCODE_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "store/cache.h"
#include "core/config.h"
#include "store/storage.h"
#include "media/transcoder.h"
#include "worker/worker_ctx.h"
#include "worker/worker_pool.h"

/* An encoded chunk in memory, shared by the waiters of its encode. */
struct talas_chunk_buf {
    size_t refs;
    char *data;
    size_t len;
    uint32_t *frame_sizes;
    size_t frame_count;
};
void talas_chunk_buf_retain(struct talas_chunk_buf *buf);
void talas_chunk_buf_release(struct talas_chunk_buf *buf);

/* What an encode needs, copied into each job. */
struct talas_transcode_source {
    char track[17];
    char variant[TALAS_CACHE_VARIANT_MAX + 1];
    char path[4096];
    struct talas_cache_source identity; /* the file the layout was computed from */
    struct talas_profile profile;
    struct talas_layout layout;
};

struct talas_chunk_waiter;
/*
 * Called on the loop thread once: STATUS 0 with BUF the chunk's bytes (the
 * waiter owns a reference: release it), or STATUS 0 with BUF NULL when the
 * chunk is in the cache (read it there), or -1 when it could not be made.
 */
typedef void (*talas_chunk_ready_fn)(struct talas_chunk_waiter *w, int status, struct talas_chunk_buf *buf);

/* Owned by the caller (e.g. inside a response's generator); zero it. */
struct talas_chunk_waiter {
    h2o_linklist_t link;
    struct talas_supply *supply; /* set while waiting */
    talas_chunk_ready_fn cb;
    void *data; /* the caller's */
};

/* Starts the per-worker machinery on CTX's loop: its pool runs the
 * encodes, its storage holds the cache, its configuration gives
 * cache.max_size. */
void talas_transcode_jobs_init(const struct talas_worker_ctx *ctx);

/*
 * Asks for chunk INDEX of SRC on behalf of W (its cb set, not waiting
 * already). Returns 1 when the chunk is in the cache already (W is not
 * called), 0 when W will be called once. URGENT: a listener waits for it
 * now (read-ahead asks without).
 */
int talas_transcode_want(const struct talas_transcode_source *src, uint32_t index, int urgent,
                         struct talas_chunk_waiter *w);

/* Makes sure chunk INDEX of SRC gets encoded and cached, with nobody
 * waiting for it (the segment a player will ask for next). Does nothing
 * when the chunk is cached or being made anywhere. */
void talas_transcode_prefetch(const struct talas_transcode_source *src, uint32_t index);

/* Detaches W (the response went away): an encode nobody waits for any
 * more is cancelled. Harmless when W is not waiting. */
void talas_transcode_unwant(struct talas_chunk_waiter *w);

/*
 * The exact measure of a source (talas_source_measure, off the loop),
 * memoised per worker: returns 1 with *info_r filled when known, 0 when a
 * measurement runs (CB(ARG, 0, info) follows on the loop, or CB(ARG, -1,
 * NULL) when the source cannot be decoded: logged), -1 when it is known
 * not to decode.
 */
typedef void (*talas_measure_fn)(void *arg, int status, const struct talas_source_info *info);
int talas_transcode_measure(const char *track, const char *path, const struct talas_cache_source *identity,
                            struct talas_source_info *info_r, talas_measure_fn cb, void *arg);

/* Counters kept by this worker since its last flush (flushed to the cache's
 * stats about once a second). */
void talas_transcode_count_hit(void);
void talas_transcode_count_miss(void);
/* An HLS segment served from the cache (CACHED) or encoded for its
 * request; summed over workers in the META counters TALAS_HLS_COUNTERS:
 * {from the cache, encoded}. */
#define TALAS_HLS_COUNTERS "hls.segments"
void talas_transcode_count_segment(int cached);
/* A transcode refused before it began (the source does not decode). */
void talas_transcode_count_failed(void);

/* The transcoder's profile for configured profile CP: AAC chunks are
 * hls.segment_duration long, so that HLS segments and progressive AAC are
 * the same chunks. */
void talas_transcode_profile(const struct talas_config *conf, const struct talas_config_profile *cp,
                             struct talas_profile *p_r);

/* The cache variant of a whole-track transcode with profile P and layout L:
 * the settings and the grid are in the name, so a profile changed in the
 * configuration is another variant, never a stale one. Progressive AAC and
 * HLS segments of one profile share it. */
void talas_transcode_variant(const struct talas_profile *p, const struct talas_layout *l,
                             char variant_r[TALAS_CACHE_VARIANT_MAX + 1]);

/* Stops: cancels what runs, releases this worker's claims. */
void talas_transcode_jobs_stop(void);

#endif
