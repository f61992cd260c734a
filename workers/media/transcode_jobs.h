/*
 * transcode_jobs.h - where a worker's transcode chunks come from.
 *
 * A response that needs chunk N of (track, variant) makes one call,
 * talas_chunk_get, and gets a reference to the chunk (chunk.h) or an
 * outcome, whichever way it was made. If the LMDB cache has it, the answer
 * is immediate: a view into the map. Otherwise exactly one process in the
 * whole server encodes it (a claim in the cache decides which): when it is
 * this worker, an encode job runs on the worker's pool threads and every
 * local waiter gets the encoder's buffer as soon as it exists; when it is
 * another worker, this one polls the cache every WATCH_INTERVAL_MS until
 * the chunk appears (or the claim goes stale, and it encodes the chunk
 * itself), then hands out the map's view. A job that loses its last waiter
 * is cancelled: the encoder stops within one frame.
 *
 * Everything here runs on the worker's loop thread except the encode and
 * the cache write, which run on a pool thread.
 */
#ifndef TALAS_TRANSCODE_JOBS_H
#define TALAS_TRANSCODE_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

#include "core/config.h"
#include "media/chunk.h"
#include "media/transcoder.h"
#include "worker/worker_ctx.h"

/* What an encode needs, copied into each job. */
struct talas_transcode_source {
    struct talas_chunk_key key; /* track, variant, and the file the layout was computed from */
    char path[4096];
    struct talas_profile profile;
    struct talas_layout layout;
    /* A queue's continuous stream (media/queue_timeline.h) instead of the
     * file at PATH: the caller's reference; each encode of it takes its
     * own. NULL for a track. */
    struct talas_queue *queue;
};

/* How a chunk request ends. */
enum talas_chunk_status {
    TALAS_CHUNK_OK = 0,  /* the chunk: the callback owns one reference */
    TALAS_CHUNK_MISSING, /* not cached, and TALAS_CHUNK_CACHED_ONLY said not to encode it */
    TALAS_CHUNK_RETRY,   /* not now: the worker is stopping, or the cache could not be read */
    TALAS_CHUNK_ERROR,   /* the chunk cannot be made (logged) */
};

/* talas_chunk_get's FLAGS */
#define TALAS_CHUNK_URGENT 1u      /* a listener waits now: its encode goes before read-ahead */
#define TALAS_CHUNK_CACHED_ONLY 2u /* never encode: TALAS_CHUNK_MISSING when not cached */
#define TALAS_CHUNK_COUNT                                                                                    \
    4u /* count the look-up as the response's cache hit or miss (and                                         \
          mark a hit's entry as used) */

struct talas_chunk_waiter;
/* Called on the loop thread, once per talas_chunk_get: STATUS, and with
 * TALAS_CHUNK_OK a reference to CHUNK that the callee releases. */
typedef void (*talas_chunk_fn)(struct talas_chunk_waiter *w, enum talas_chunk_status status,
                               struct talas_chunk *chunk);

/* Owned by the caller (e.g. inside a response's generator), zeroed once;
 * set CB and DATA before talas_chunk_get. */
struct talas_chunk_waiter {
    h2o_linklist_t link;
    struct talas_supply *supply; /* set while waiting for an encode */
    talas_chunk_fn cb;
    void *data; /* the caller's */
};

/* Starts the per-worker machinery from CTX: its loop and pool run the
 * encodes, its storage holds the cache, its configuration gives
 * cache.max_size (all outlive talas_transcode_jobs_stop). */
void talas_transcode_jobs_init(const struct talas_worker_ctx *ctx);

/*
 * Gets chunk INDEX of SRC for W (not waiting already), whatever it takes:
 * from the cache, joining an encode of this worker, encoding it here on
 * the pool (the cache's claim says this process makes it), or waiting for
 * the process that makes it. W->cb is called exactly once, unless
 * talas_chunk_cancel comes first: before talas_chunk_get returns when the
 * answer is known at once (the chunk is cached, MISSING, an error), else
 * later from the loop.
 */
void talas_chunk_get(const struct talas_transcode_source *src, uint32_t index, unsigned flags,
                     struct talas_chunk_waiter *w);

/* Counts a chunk of SRC that the caller found in the cache itself
 * (talas_chunk_cached) as its response's cache hit, as TALAS_CHUNK_COUNT
 * does, and marks the entry as used. */
void talas_chunk_count_hit(const struct talas_transcode_source *src);

/* Detaches W (the response went away): its callback will not be called,
 * and an encode nobody waits for any more is cancelled (the encoder stops
 * within a frame). Harmless when W is not waiting. */
void talas_chunk_cancel(struct talas_chunk_waiter *w);

/*
 * Makes sure chunk INDEX of SRC gets encoded and cached, with nobody
 * waiting for its bytes (read-ahead). Does nothing when it is cached,
 * beyond the last chunk, or being made by another process. With W (not
 * waiting already; its callback is never called) the encode is cancelled
 * by talas_chunk_cancel(W) like a waiter's; without, it runs to the end.
 */
void talas_chunk_prefetch(const struct talas_transcode_source *src, uint32_t index,
                          struct talas_chunk_waiter *w);

/*
 * The exact measure of a source and whether it can be transcoded at all
 * (talas_source_check, off the loop), memoised per worker for that file
 * (track, size and mtime): a source refused once is refused again without
 * being opened, and never reaches an encoder. W->cb is called once, unless
 * talas_transcode_measure_cancel comes first: with 0 and the measure (valid
 * during the call), or -1 and NULL when the source cannot be transcoded
 * (logged once, counted as a failed transcode); before
 * talas_transcode_measure returns when the answer is known.
 */
struct talas_measure_waiter;
typedef void (*talas_measure_fn)(struct talas_measure_waiter *w, int status,
                                 const struct talas_source_info *info);
struct talas_measure_waiter {
    h2o_linklist_t link; /* linked while a measurement runs */
    talas_measure_fn cb;
    void *data; /* the caller's */
};
void talas_transcode_measure(const struct talas_chunk_key *key, const char *path,
                             struct talas_measure_waiter *w);
/* Detaches W (the request went away). Harmless when W is not waiting. */
void talas_transcode_measure_cancel(struct talas_measure_waiter *w);

/* Counters kept by this worker since its last flush (flushed to the cache's
 * stats about once a second); hits and misses are counted by
 * talas_chunk_get (TALAS_CHUNK_COUNT). */
/* An HLS segment served from the cache (CACHED) or encoded for its
 * request; summed over workers in the META counters TALAS_HLS_COUNTERS:
 * {from the cache, encoded}. */
#define TALAS_HLS_COUNTERS "hls.segments"
void talas_transcode_count_segment(int cached);

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
/* Appends P's normalization target to the variant name VARIANT_R (".n140"
 * for -14.0 LUFS; nothing without one): two targets never share a chunk,
 * and none shares with the plain profile. */
void talas_transcode_variant_normalized(const struct talas_profile *p,
                                        char variant_r[TALAS_CACHE_VARIANT_MAX + 1]);

/* Stops: cancels what runs, releases this worker's claims. */
void talas_transcode_jobs_stop(void);

#endif
