/*
 * transcode_jobs.c - supplying transcode chunks to a worker's responses
 * (see transcode_jobs.h).
 *
 * Entry points: talas_transcode_jobs_init, talas_chunk_get,
 * talas_chunk_cancel, talas_chunk_prefetch, talas_transcode_measure (and
 * _cancel), the counters, and talas_transcode_jobs_stop.
 *
 * A "supply" is one chunk this worker is getting for its waiters: a JOB (it
 * holds the cache claim and encodes on a pool thread) or a WATCH (another
 * process holds the claim; a 10 ms timer looks for the chunk in the cache).
 * Supplies live in one list on the loop thread; the pool thread touches
 * only its own job's encode fields, and the loop reads them after the
 * pool's completion callback. Every waiter gets the same outcome: a
 * reference to the job's buffer, or to one view of the map once a watched
 * chunk is stored (chunk.c reads the cache). Counters are kept on the loop
 * and flushed to the cache's stats once a second; the node's figures
 * (/metrics: hits, misses, encodes running, audio encoded and the encoder's
 * CPU time) are counted at once in the worker's metrics slot, from the
 * loop and from the pool threads alike.
 *
 * Logs: failed encodes and cache writes (error), incomplete sources (warn).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>

#include <libavutil/log.h>

#include "core/log.h"
#include "media/queue_timeline.h"
#include "media/transcode_jobs.h"
#include "core/util.h"
#include "worker/worker_pool.h"

#define WATCH_INTERVAL_MS 10
#define FLUSH_INTERVAL_MS 1000
#define MEASURE_SLOTS 256

enum supply_kind { SUPPLY_JOB, SUPPLY_WATCH };

struct talas_supply {
    h2o_linklist_t link; /* in supplies, while it can take waiters */
    enum supply_kind kind;
    struct talas_transcode_source src;
    uint32_t index;
    h2o_linklist_t waiters;
    int cache;           /* JOB: put the chunk in the cache (we hold the claim) */
    volatile int cancel; /* JOB: set on the loop, read by the encoder */
    /* JOB: written by the pool thread, read on the loop after done */
    int result;
    struct talas_chunk *chunk;
    char *error;
    uint64_t encode_ms;
};

struct measure_slot {
    char track[17];
    struct talas_cache_source identity;
    struct talas_source_info info;
    int state;  /* 0 empty, 1 measuring, 2 known, 3 failed: the loop's */
    int result; /* the measuring thread's: 2 or 3, applied by the loop */
    int changed; /* the thread's: the file is no longer IDENTITY (not kept) */
    uint64_t used;
    /* while measuring */
    char *path;
    char *error;
    h2o_linklist_t waits; /* struct talas_measure_waiter */
};

static struct {
    h2o_loop_t *loop;
    struct talas_pool *pool;
    struct talas_storage *st;
    struct talas_cache_limits limits;
    h2o_linklist_t supplies;
    size_t watches;
    h2o_timeout_t watch_timeout, flush_timeout;
    h2o_timeout_entry_t watch_entry, flush_entry;
    struct talas_cache_stats delta;
    struct talas_metrics_slot *metrics; /* relaxed atomics: the pool threads count too */
    uint64_t segment_delta[2]; /* HLS segments: from the cache, encoded */
    struct measure_slot measures[MEASURE_SLOTS];
    uint64_t measure_clock;
} s;

static struct talas_supply *find_supply(const struct talas_chunk_key *key, uint32_t index)
{
    for (h2o_linklist_t *n = s.supplies.next; n != &s.supplies; n = n->next) {
        struct talas_supply *sup = H2O_STRUCT_FROM_MEMBER(struct talas_supply, link, n);
        if (sup->index == index && strcmp(sup->src.key.track, key->track) == 0 &&
            strcmp(sup->src.key.variant, key->variant) == 0)
            return sup;
    }
    return NULL;
}

/* Calls every waiter once (read-ahead ones have no callback), then
 * forgets them. Each gets its own reference to CHUNK. */
static void notify(struct talas_supply *sup, enum talas_chunk_status status, struct talas_chunk *chunk)
{
    while (!h2o_linklist_is_empty(&sup->waiters)) {
        struct talas_chunk_waiter *w =
            H2O_STRUCT_FROM_MEMBER(struct talas_chunk_waiter, link, sup->waiters.next);
        h2o_linklist_unlink(&w->link);
        w->supply = NULL;
        if (w->cb != NULL)
            w->cb(w, status, chunk != NULL ? talas_chunk_ref(chunk) : NULL);
    }
}

/* -------------------------------------------------------------- encodes */

static uint64_t thread_cpu_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Runs on a pool thread. */
/* Whether the file at PATH is no longer IDENTITY (size and modification
 * time), which a transcode may take from a descriptor up to a second old
 * (http_source.c): what was made may come from the new file, and is then
 * served but not remembered under the old one's identity. */
static int source_changed(const char *path, const struct talas_cache_source *identity)
{
    struct stat sb;

    if (stat(path, &sb) != 0)
        return 1;
    return (uint64_t)sb.st_size != identity->size ||
           (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != identity->mtime_ns;
}

static void job_work(void *arg)
{
    struct talas_supply *sup = arg;
    struct talas_buf out = {0};
    uint32_t *frame_sizes = NULL;
    uint64_t t0 = talas_now_ms(), cpu0;
    int rc;

    if (sup->cancel) {
        sup->result = TALAS_TRANSCODE_CANCELLED;
        goto release;
    }
    talas_metrics_add(&s.metrics->gauge.encodes_running, 1);
    cpu0 = thread_cpu_us();
    if (sup->src.queue != NULL)
        rc = talas_transcode_queue_chunk(sup->src.queue, &sup->src.profile, &sup->src.layout, sup->index,
                                         &sup->cancel, &out, &frame_sizes, &sup->error);
    else
        rc = talas_transcode_chunk(sup->src.path, &sup->src.profile, &sup->src.layout, sup->index,
                                   &sup->cancel, &out, &frame_sizes, &sup->error);
    talas_metrics_add(&s.metrics->count.encode_cpu_us, thread_cpu_us() - cpu0);
    talas_metrics_sub(&s.metrics->gauge.encodes_running, 1);
    sup->encode_ms = talas_now_ms() - t0;
    sup->result = rc;
    if ((rc == 0 || rc == TALAS_TRANSCODE_INCOMPLETE) && sup->src.profile.sample_rate > 0)
        talas_metrics_add(&s.metrics->count.encoded_us,
                          (uint64_t)talas_layout_chunk_frame_count(&sup->src.layout, sup->index) *
                              sup->src.layout.frame_samples * 1000000 / sup->src.profile.sample_rate);
    if (rc == 0 || rc == TALAS_TRANSCODE_INCOMPLETE) {
        sup->chunk = talas__chunk_encoded(out.data, out.len, frame_sizes,
                                          talas_layout_chunk_frame_count(&sup->src.layout, sup->index));
        out.data = NULL;
        frame_sizes = NULL;
    }
    /* an incomplete chunk (the source did not decode there) is served, never
     * cached: a later request tries the source again */
    if (rc == 0 && sup->cache && sup->src.queue == NULL && source_changed(sup->src.path, &sup->src.key.identity)) {
        log_info("chunk %" PRIu32 " of %s/%s: its file changed while it was asked: served, not cached",
                 sup->index, sup->src.key.track, sup->src.key.variant);
    } else if (rc == 0 && sup->cache) {
        struct talas_cache_put put = {
            .track = sup->src.key.track,
            .variant = sup->src.key.variant,
            .source = sup->src.key.identity,
            .chunks = sup->src.layout.chunks,
            .total_size = sup->src.layout.exact_size ? sup->src.layout.total_size : 0,
            .index = sup->index,
            .payload = sup->chunk->data,
            .len = sup->chunk->len,
            .frame_sizes = sup->chunk->frame_sizes,
            .frame_count = sup->chunk->frame_count,
        };
        char *error = NULL;
        if (talas_cache_chunk_put(s.st, &s.limits, &put, &error) != 0) {
            log_error("caching chunk %" PRIu32 " of %s/%s failed: %s", sup->index, sup->src.key.track,
                      sup->src.key.variant, error);
            free(error);
        }
    }
release:
    if (sup->cache)
        talas_cache_release(s.st, sup->src.key.track, sup->src.key.variant, sup->index);
    talas_buf_free(&out);
    free(frame_sizes);
}

/* Frees SUP (unlinked, without waiters) and its reference to a queue. */
static void supply_free(struct talas_supply *sup)
{
    talas_queue_unref(sup->src.queue);
    free(sup);
}

static void unlink_supply(struct talas_supply *sup)
{
    if (h2o_linklist_is_linked(&sup->link))
        h2o_linklist_unlink(&sup->link);
}

/* Runs on the loop once job_work returned (or the pool went away). */
static void job_done(void *arg, int cancelled)
{
    struct talas_supply *sup = arg;

    unlink_supply(sup);
    if (cancelled)
        sup->result = TALAS_TRANSCODE_CANCELLED;
    switch (sup->result) {
    case 0:
    case TALAS_TRANSCODE_INCOMPLETE:
        s.delta.transcodes_completed++;
        s.delta.bytes_encoded += sup->chunk->len;
        s.delta.encode_ms += sup->encode_ms;
        if (sup->result == TALAS_TRANSCODE_INCOMPLETE)
            log_warn("chunk %" PRIu32 " of %s/%s is incomplete, served uncached: %s", sup->index,
                     sup->src.key.track, sup->src.key.variant,
                     sup->error != NULL ? sup->error : "the source did not decode");
        notify(sup, TALAS_CHUNK_OK, sup->chunk);
        break;
    case TALAS_TRANSCODE_CANCELLED:
        s.delta.transcodes_cancelled++;
        notify(sup, TALAS_CHUNK_RETRY, NULL);
        break;
    default:
        s.delta.transcodes_failed++;
        log_error("encoding chunk %" PRIu32 " of %s/%s failed: %s", sup->index, sup->src.key.track,
                  sup->src.key.variant, sup->error != NULL ? sup->error : "unknown error");
        notify(sup, TALAS_CHUNK_ERROR, NULL);
        break;
    }
    talas_chunk_release(sup->chunk);
    free(sup->error);
    supply_free(sup);
}

static struct talas_supply *new_supply(enum supply_kind kind, const struct talas_transcode_source *src,
                                       uint32_t index)
{
    struct talas_supply *sup = xcalloc(1, sizeof(*sup));

    sup->kind = kind;
    sup->src = *src;
    if (src->queue != NULL)
        sup->src.queue = talas_queue_ref(src->queue);
    sup->index = index;
    h2o_linklist_init_anchor(&sup->waiters);
    h2o_linklist_insert(&s.supplies, &sup->link);
    return sup;
}

static void start_job(struct talas_supply *sup, int cache, int urgent)
{
    sup->kind = SUPPLY_JOB;
    sup->cache = cache;
    s.delta.transcodes_started++;
    talas_pool_submit(s.pool, job_work, job_done, sup, urgent);
}

/* -------------------------------------------------------------- watches */

static void on_watch_tick(h2o_timeout_entry_t *entry);

static void arm_watch(void)
{
    if (s.watches > 0 && !h2o_timeout_is_linked(&s.watch_entry))
        h2o_timeout_link(s.loop, &s.watch_timeout, &s.watch_entry);
}

static void on_watch_tick(h2o_timeout_entry_t *entry)
{
    h2o_linklist_t *n = s.supplies.next;

    while (n != &s.supplies) {
        struct talas_supply *sup = H2O_STRUCT_FROM_MEMBER(struct talas_supply, link, n);
        n = n->next;
        if (sup->kind != SUPPLY_WATCH)
            continue;
        /* the claim says it all: DONE once the chunk is stored, OWNED when
         * the process that held it died or gave it up */
        switch (talas_cache_claim(s.st, &s.limits, sup->src.key.track, sup->src.key.variant, sup->index,
                                  &sup->src.key.identity)) {
        case TALAS_CLAIM_DONE: {
            struct talas_chunk *chunk = NULL;
            unlink_supply(sup);
            s.watches--;
            /* one view of the map for all the waiters */
            if (talas_chunk_lookup(&sup->src.key, sup->index, &chunk) == 0)
                notify(sup, TALAS_CHUNK_OK, chunk);
            else
                notify(sup, TALAS_CHUNK_RETRY, NULL); /* evicted at once, or unreadable */
            talas_chunk_release(chunk);
            supply_free(sup);
            break;
        }
        case TALAS_CLAIM_OWNED:
            s.watches--;
            start_job(sup, 1, 1);
            break;
        case TALAS_CLAIM_BUSY:
            break;
        case TALAS_CLAIM_ERROR:
            s.watches--;
            start_job(sup, 0, 1);
            break;
        }
    }
    arm_watch();
}

/* ------------------------------------------------------------- requests */

/* The cache's look-up of a chunk for W: 0 when W got it, -1 when it is
 * not (usefully) there. */
void talas_chunk_count_hit(const struct talas_transcode_source *src)
{
    s.delta.hits++;
    talas_metrics_add(&s.metrics->count.cache_hits, 1);
    talas_chunk_touch(&src->key);
}

static int from_cache(const struct talas_transcode_source *src, uint32_t index, unsigned flags,
                      struct talas_chunk_waiter *w)
{
    struct talas_chunk *chunk;

    if (talas_chunk_lookup(&src->key, index, &chunk) != 0)
        return -1;
    if (flags & TALAS_CHUNK_COUNT)
        talas_chunk_count_hit(src);
    w->cb(w, TALAS_CHUNK_OK, chunk);
    return 0;
}

static void attach(struct talas_supply *sup, struct talas_chunk_waiter *w)
{
    w->supply = sup;
    h2o_linklist_insert(&sup->waiters, &w->link);
}

void talas_chunk_get(const struct talas_transcode_source *src, uint32_t index, unsigned flags,
                     struct talas_chunk_waiter *w)
{
    struct talas_supply *sup;
    int urgent = (flags & TALAS_CHUNK_URGENT) != 0;

    if (index >= src->layout.chunks) {
        w->cb(w, TALAS_CHUNK_ERROR, NULL);
        return;
    }
    /* the common case first: one read transaction, and the bytes go out
     * from the map */
    if (from_cache(src, index, flags, w) == 0)
        return;
    if (flags & TALAS_CHUNK_CACHED_ONLY) {
        w->cb(w, TALAS_CHUNK_MISSING, NULL);
        return;
    }
    if (flags & TALAS_CHUNK_COUNT) {
        s.delta.misses++;
        talas_metrics_add(&s.metrics->count.cache_misses, 1);
    }
    if ((sup = find_supply(&src->key, index)) != NULL) {
        attach(sup, w);
        return;
    }
    switch (talas_cache_claim(s.st, &s.limits, src->key.track, src->key.variant, index, &src->key.identity)) {
    case TALAS_CLAIM_DONE:
        /* stored between the look-up and the claim */
        if (from_cache(src, index, 0, w) != 0)
            w->cb(w, TALAS_CHUNK_RETRY, NULL);
        return;
    case TALAS_CLAIM_OWNED:
        sup = new_supply(SUPPLY_JOB, src, index);
        attach(sup, w);
        start_job(sup, 1, urgent);
        return;
    case TALAS_CLAIM_BUSY:
        sup = new_supply(SUPPLY_WATCH, src, index);
        attach(sup, w);
        s.watches++;
        arm_watch();
        return;
    case TALAS_CLAIM_ERROR:
    default:
        /* the cache cannot be used: encode for these listeners anyway */
        sup = new_supply(SUPPLY_JOB, src, index);
        attach(sup, w);
        start_job(sup, 0, urgent);
        return;
    }
}

void talas_chunk_prefetch(const struct talas_transcode_source *src, uint32_t index,
                          struct talas_chunk_waiter *w)
{
    struct talas_supply *sup;

    if (index >= src->layout.chunks || (w != NULL && w->supply != NULL))
        return;
    if ((sup = find_supply(&src->key, index)) != NULL) {
        /* being made here already: W's cancel counts like a listener's */
        if (w != NULL && sup->kind == SUPPLY_JOB) {
            w->cb = NULL;
            attach(sup, w);
        }
        return;
    }
    /* only when nobody makes it already; a prefetch never waits */
    if (talas_cache_claim(s.st, &s.limits, src->key.track, src->key.variant, index, &src->key.identity) !=
        TALAS_CLAIM_OWNED)
        return;
    sup = new_supply(SUPPLY_JOB, src, index);
    if (w != NULL) {
        w->cb = NULL;
        attach(sup, w);
    }
    start_job(sup, 1, 0);
}

void talas_chunk_cancel(struct talas_chunk_waiter *w)
{
    struct talas_supply *sup = w->supply;

    if (sup == NULL)
        return;
    h2o_linklist_unlink(&w->link);
    w->supply = NULL;
    if (!h2o_linklist_is_empty(&sup->waiters))
        return;
    if (sup->kind == SUPPLY_WATCH) {
        unlink_supply(sup);
        s.watches--;
        supply_free(sup);
        return;
    }
    /* nobody listens any more: stop the encoder (within a frame) and let a
     * new request start afresh rather than join a dying job */
    sup->cancel = 1;
    unlink_supply(sup);
}

/* ---------------------------------------------------------- measurement */

static struct measure_slot *measure_find(const char *track, const struct talas_cache_source *identity)
{
    for (size_t i = 0; i < MEASURE_SLOTS; i++) {
        struct measure_slot *m = &s.measures[i];
        if (m->state != 0 && strcmp(m->track, track) == 0 && m->identity.size == identity->size &&
            m->identity.mtime_ns == identity->mtime_ns)
            return m;
    }
    return NULL;
}

static void measure_work(void *arg)
{
    struct measure_slot *m = arg;

    /* the verdict of every route that decodes, before any of them answers */
    m->result = talas_source_check(m->path, &m->info, &m->error) == 0 ? 2 : 3;
    m->changed = source_changed(m->path, &m->identity);
}

/* Answers W: the measure of M, or a failure (a transcode refused before it
 * began). */
static void measure_answer(struct talas_measure_waiter *w, const struct measure_slot *m)
{
    if (m != NULL && m->state == 2) {
        w->cb(w, 0, &m->info);
        return;
    }
    s.delta.transcodes_failed++;
    w->cb(w, -1, NULL);
}

static void measure_done(void *arg, int cancelled)
{
    struct measure_slot *m = arg, once, *answered = m;
    h2o_linklist_t waits;

    m->state = cancelled ? 3 : m->result;
    if (m->state == 3)
        log_warn("measuring \"%s\" failed: %s", m->path, m->error != NULL ? m->error : "cancelled");
    if (m->changed && !cancelled) {
        /* its waiters have this measure; the next request measures again */
        log_info("\"%s\" changed while it was measured: measure used once, not kept", m->path);
        once = *m;
        m->state = 0;
        answered = &once;
    }
    free(m->path);
    free(m->error);
    m->path = NULL;
    m->error = NULL;
    /* the waiters of this measurement, apart: a callback may ask again */
    h2o_linklist_init_anchor(&waits);
    h2o_linklist_insert_list(&waits, &m->waits);
    while (!h2o_linklist_is_empty(&waits)) {
        struct talas_measure_waiter *w =
            H2O_STRUCT_FROM_MEMBER(struct talas_measure_waiter, link, waits.next);
        h2o_linklist_unlink(&w->link);
        measure_answer(w, answered);
    }
}

void talas_transcode_measure(const struct talas_chunk_key *key, const char *path,
                             struct talas_measure_waiter *w)
{
    struct measure_slot *m = measure_find(key->track, &key->identity);

    if (m != NULL && m->state == 2)
        m->used = ++s.measure_clock;
    if (m != NULL && m->state != 1) {
        measure_answer(w, m);
        return;
    }
    if (m == NULL) {
        /* the least recently used slot that is not being measured */
        for (size_t i = 0; i < MEASURE_SLOTS; i++) {
            struct measure_slot *c = &s.measures[i];
            if (c->state != 1 && (m == NULL || c->used < m->used))
                m = c;
        }
        if (m == NULL) {
            measure_answer(w, NULL); /* every slot is measuring: busy */
            return;
        }
        memset(m, 0, sizeof(*m));
        memcpy(m->track, key->track, sizeof(m->track) - 1);
        m->identity = key->identity;
        m->state = 1;
        m->used = ++s.measure_clock;
        m->path = xstrdup(path);
        h2o_linklist_init_anchor(&m->waits);
        talas_pool_submit(s.pool, measure_work, measure_done, m, 1);
    }
    h2o_linklist_insert(&m->waits, &w->link);
}

void talas_transcode_measure_cancel(struct talas_measure_waiter *w)
{
    if (h2o_linklist_is_linked(&w->link))
        h2o_linklist_unlink(&w->link);
}

/* ----------------------------------------------------------------- stats */

void talas_transcode_count_segment(int cached)
{
    s.segment_delta[cached ? 0 : 1]++;
}

static void flush_stats(void)
{
    static const struct talas_cache_stats zero;

    if (s.segment_delta[0] + s.segment_delta[1] > 0) {
        if (talas_storage_counters_add(s.st, TALAS_HLS_COUNTERS, s.segment_delta, 2) != 0)
            log_warn("%s: adding to the HLS segment counters failed", __func__);
        s.segment_delta[0] = s.segment_delta[1] = 0;
    }
    if (memcmp(&s.delta, &zero, sizeof(zero)) == 0)
        return;
    if (talas_cache_stats_add(s.st, &s.delta) != 0)
        log_warn("%s: adding to the cache's stats failed", __func__);
    memset(&s.delta, 0, sizeof(s.delta));
}

static void on_flush_tick(h2o_timeout_entry_t *entry)
{
    flush_stats();
    h2o_timeout_link(s.loop, &s.flush_timeout, &s.flush_entry);
}

/* libav's own messages: its errors go to the error log (from any thread:
 * talas_log writes each line with one write(2)), its chatter nowhere. */
static void av_log_to_error_log(void *avcl, int level, const char *fmt, va_list ap)
{
    /* a damaged file makes libav complain once per packet: at most
     * AV_LOG_BURST lines a second reach the log, from all threads */
    enum { AV_LOG_BURST = 5 };
    static uint64_t window;
    static unsigned in_window;
    uint64_t now = talas_now_ms() / 1000;
    char line[512];
    size_t n;

    if (level > AV_LOG_ERROR)
        return;
    if (__atomic_exchange_n(&window, now, __ATOMIC_RELAXED) != now)
        __atomic_store_n(&in_window, 0, __ATOMIC_RELAXED);
    if (__atomic_fetch_add(&in_window, 1, __ATOMIC_RELAXED) >= AV_LOG_BURST)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    log_warn("libav: %s", line);
}

/* ------------------------------------------------------------ lifecycle */

void talas_transcode_jobs_init(const struct talas_worker_ctx *ctx)
{
    memset(&s, 0, sizeof(s));
    av_log_set_callback(av_log_to_error_log);
    s.loop = ctx->loop;
    s.pool = ctx->pool;
    s.metrics = talas_worker_ctx_metrics(ctx);
    s.st = ctx->storage;
    s.limits.max_size = ctx->conf->cache_max_size;
    talas_chunk_init(ctx->storage);
    h2o_linklist_init_anchor(&s.supplies);
    h2o_timeout_init(s.loop, &s.watch_timeout, WATCH_INTERVAL_MS);
    h2o_timeout_init(s.loop, &s.flush_timeout, FLUSH_INTERVAL_MS);
    s.watch_entry.cb = on_watch_tick;
    s.flush_entry.cb = on_flush_tick;
    h2o_timeout_link(s.loop, &s.flush_timeout, &s.flush_entry);
    /* claims a previous worker with our pid could have left */
    talas_cache_release_pid(s.st, getpid(), NULL);
}

void talas_transcode_jobs_stop(void)
{
    for (h2o_linklist_t *n = s.supplies.next; n != &s.supplies; n = n->next) {
        struct talas_supply *sup = H2O_STRUCT_FROM_MEMBER(struct talas_supply, link, n);
        if (sup->kind == SUPPLY_JOB)
            sup->cancel = 1;
    }
    flush_stats();
}

void talas_transcode_variant(const struct talas_profile *p, const struct talas_layout *l,
                             char variant_r[TALAS_CACHE_VARIANT_MAX + 1])
{
    if (p->codec == TALAS_CODEC_MP3)
        snprintf(variant_r, TALAS_CACHE_VARIANT_MAX + 1, "m.%u.%u.%u", p->bitrate / 1000, p->sample_rate,
                 p->channels);
    else
        /* "p64": the pre-roll in frames, which changes the encoded bytes; chunks
         * cached with another pre-roll (3 before) are never mixed in */
        snprintf(variant_r, TALAS_CACHE_VARIANT_MAX + 1, "a.%u.%u.%u.%ur%u.p%u", p->bitrate / 1000,
                 p->sample_rate, p->channels, l->chunk_frames, l->ramp_chunks, l->preroll_frames);
    talas_transcode_variant_normalized(p, variant_r);
}

void talas_transcode_variant_normalized(const struct talas_profile *p,
                                        char variant_r[TALAS_CACHE_VARIANT_MAX + 1])
{
    size_t len = strlen(variant_r);

    /* ".n140": normalized to -14.0 LUFS. The gain is not in the name: it
     * follows from the track's loudness, measured once per version of its
     * file (size and mtime), which the cache's identity already holds. */
    if (p->normalize_dlu != 0)
        snprintf(variant_r + len, TALAS_CACHE_VARIANT_MAX + 1 - len, ".n%d", -p->normalize_dlu);
}

void talas_transcode_profile(const struct talas_config *conf, const struct talas_config_profile *cp,
                             struct talas_profile *p_r)
{
    talas_profile_from_config(cp, (unsigned)conf->hls_segment_duration_ms, p_r);
}
