/*
 * metrics.c - the node's figures: the shared segment of per-worker slots,
 * their sum, and the Prometheus text exposition (format 0.0.4).
 *
 * Entry points (metrics.h): talas_metrics_create (the master, once),
 * talas_metrics_claim / _release (the master, per worker; a release also
 * empties the dead worker's census table, core/census.c), talas_metrics_map
 * and talas_metrics_reset_gauges (a worker at start), talas_metrics_sum and
 * talas_metrics_format (a scrape, GET /metrics), and the pure helpers
 * talas_metrics_bucket, talas_metrics_status_class,
 * talas_metrics_escape_label.
 *
 * The series written are the rows of the family table below: one HELP and
 * one TYPE line per family, then its samples, every label combination
 * written from the start (a series that appears late makes rate() blind to
 * its first increase).
 *
 * Logs nothing: errors come back to the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/census.h"
#include "core/metrics.h"

_Static_assert(sizeof(struct talas_metrics_gauges) % sizeof(uint64_t) == 0, "gauges are uint64_t only");
_Static_assert(sizeof(struct talas_metrics_counters) % sizeof(uint64_t) == 0, "counters are uint64_t only");
_Static_assert(sizeof(struct talas_metrics_header) == 64, "slots start on a cache line");
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t), "atomics are plain words");

const uint64_t talas_metrics_bucket_us[TALAS_METRICS_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};
/* the same bounds as the le label writes them */
static const char *const bucket_le[TALAS_METRICS_BUCKETS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
};

/* ------------------------------------------------------------ the table */

/* FAMILY_UP: 1 when the gauge at sum_offset (connections held) is not 0
 * and the one at offset (those not ready) is 0, else 0. */
enum family_type { FAMILY_COUNTER, FAMILY_GAUGE, FAMILY_HISTOGRAM, FAMILY_INFO, FAMILY_UP };

/* A label and the values it takes; a family's samples are indexed in the
 * order of its dimensions (row-major), like the C arrays they read. */
struct dimension {
    const char *label;
    const char *const *values;
    unsigned count;
};

static const char *const route_values[TALAS_ROUTE_COUNT] = {
    "stream", "transcode", "preview", "hls", "peaks", "api", "ws", "other",
};
static const char *const status_values[TALAS_STATUS_COUNT] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const struct dimension route_dim = {"route", route_values, TALAS_ROUTE_COUNT};
static const struct dimension status_dim = {"status", status_values, TALAS_STATUS_COUNT};

struct family {
    const char *name;
    enum family_type type;
    const char *help;                /* one line, no backslash */
    size_t offset;                   /* of the first value in struct talas_metrics_slot */
    const struct dimension *dims[2]; /* NULL when fewer */
    uint64_t scale;                  /* 1: counts; 1000000: microseconds written as seconds */
    size_t sum_offset;               /* histograms: the per-label sums, in microseconds */
};

#define S(field) offsetof(struct talas_metrics_slot, field)
#define US 1000000

static const struct family families[] = {
    {"talas_build_info", FAMILY_INFO, "The version of Talas serving; always 1.", 0, {NULL, NULL}, 1, 0},
    {"talas_workers",
     FAMILY_GAUGE,
     "Worker processes counting into these figures.",
     S(in_use),
     {NULL, NULL},
     1,
     0},
    {"talas_http_requests_total",
     FAMILY_COUNTER,
     "HTTP requests answered, by route and status class.",
     S(count.http_requests),
     {&route_dim, &status_dim},
     1,
     0},
    {"talas_http_first_byte_seconds",
     FAMILY_HISTOGRAM,
     "Time from the start of a request to the start of its response's headers.",
     S(count.http_first_byte),
     {&route_dim, NULL},
     US,
     S(count.http_first_byte_us)},
    {"talas_cache_hits_total",
     FAMILY_COUNTER,
     "Transcode cache chunk look-ups that found the chunk.",
     S(count.cache_hits),
     {NULL, NULL},
     1,
     0},
    {"talas_cache_misses_total",
     FAMILY_COUNTER,
     "Transcode cache chunk look-ups that had to wait for an encode.",
     S(count.cache_misses),
     {NULL, NULL},
     1,
     0},
    {"talas_encodes_running",
     FAMILY_GAUGE,
     "Chunk encodes running on the encoder threads.",
     S(gauge.encodes_running),
     {NULL, NULL},
     1,
     0},
    {"talas_encoded_seconds_total",
     FAMILY_COUNTER,
     "Seconds of audio encoded.",
     S(count.encoded_us),
     {NULL, NULL},
     US,
     0},
    {"talas_encode_cpu_seconds_total",
     FAMILY_COUNTER,
     "CPU seconds the encoder threads spent encoding (speed: encoded seconds over these).",
     S(count.encode_cpu_us),
     {NULL, NULL},
     US,
     0},
    {"talas_ws_connections",
     FAMILY_GAUGE,
     "Open WebSocket connections on /api/ws.",
     S(gauge.ws_connections),
     {NULL, NULL},
     1,
     0},
    {"talas_ws_events_in_total",
     FAMILY_COUNTER,
     "WebSocket commands received.",
     S(count.ws_events_in),
     {NULL, NULL},
     1,
     0},
    {"talas_ws_events_out_total",
     FAMILY_COUNTER,
     "WebSocket events and answers delivered.",
     S(count.ws_events_out),
     {NULL, NULL},
     1,
     0},
    {"talas_redis_up",
     FAMILY_UP,
     "1 when every Redis connection of every worker is ready; 0 when one is not, or outside cluster mode.",
     S(gauge.redis.down),
     {NULL, NULL},
     1,
     S(gauge.redis.conns)},
    {"talas_redis_commands_total",
     FAMILY_COUNTER,
     "Commands sent to Redis.",
     S(count.redis.commands),
     {NULL, NULL},
     1,
     0},
    {"talas_redis_errors_total",
     FAMILY_COUNTER,
     "Redis commands that failed: refused while not connected, answered with an error, or left unanswered.",
     S(count.redis.errors),
     {NULL, NULL},
     1,
     0},
    {"talas_redis_reconnects_total",
     FAMILY_COUNTER,
     "Connection attempts to Redis after a failure or a loss.",
     S(count.redis.reconnects),
     {NULL, NULL},
     1,
     0},
    {"talas_redis_round_trip_seconds",
     FAMILY_HISTOGRAM,
     "Time from sending a command to Redis to its answer.",
     S(count.redis.round_trip),
     {NULL, NULL},
     US,
     S(count.redis.round_trip_us)},
    {"talas_postgres_up",
     FAMILY_UP,
     "1 when every PostgreSQL connection of every worker is ready; 0 when one is not, or outside cluster mode.",
     S(gauge.postgres.down),
     {NULL, NULL},
     1,
     S(gauge.postgres.conns)},
    {"talas_postgres_commands_total",
     FAMILY_COUNTER,
     "Queries sent to PostgreSQL.",
     S(count.postgres.commands),
     {NULL, NULL},
     1,
     0},
    {"talas_postgres_errors_total",
     FAMILY_COUNTER,
     "PostgreSQL queries that failed: refused while not connected, answered with an error, or left unanswered.",
     S(count.postgres.errors),
     {NULL, NULL},
     1,
     0},
    {"talas_postgres_reconnects_total",
     FAMILY_COUNTER,
     "Connection attempts to PostgreSQL after a failure or a loss.",
     S(count.postgres.reconnects),
     {NULL, NULL},
     1,
     0},
    {"talas_postgres_round_trip_seconds",
     FAMILY_HISTOGRAM,
     "Time from sending a query to PostgreSQL to its answer.",
     S(count.postgres.round_trip),
     {NULL, NULL},
     US,
     S(count.postgres.round_trip_us)},
    {"talas_listen_sessions_dropped_total",
     FAMILY_COUNTER,
     "Listening session writes that PostgreSQL could not take (cluster mode): dropped, never retried.",
     S(count.listen_sessions_dropped),
     {NULL, NULL},
     1,
     0},
};

/* ---------------------------------------------------------- the segment */

/* The header, the slots, then the census (core/census.h). */
static size_t slots_end(void)
{
    return sizeof(struct talas_metrics_header) + (size_t)TALAS_METRICS_SLOTS * sizeof(struct talas_metrics_slot);
}

size_t talas_metrics_size(void)
{
    return slots_end() + talas_census_size();
}

void talas_metrics_init(void *mem)
{
    struct talas_metrics_header *hdr = mem;
    uint64_t seed;

    hdr->magic = TALAS_METRICS_MAGIC;
    hdr->version = TALAS_METRICS_VERSION;
    hdr->slot_size = (uint32_t)sizeof(struct talas_metrics_slot);
    hdr->slot_count = TALAS_METRICS_SLOTS;
    atomic_store_explicit(&hdr->high_water, 0, memory_order_relaxed);
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)getpid() * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)time(NULL);
    talas_census_init((char *)mem + slots_end(), seed);
}

int talas_metrics_create(int *fd_r, struct talas_metrics_header **hdr_r, char **error_r)
{
    size_t size = talas_metrics_size();
    void *mem;
    int fd;

    if ((fd = memfd_create("talas-metrics", MFD_CLOEXEC)) == -1) {
        *error_r = xasprintf("memfd_create() failed: %s", strerror(errno));
        return -1;
    }
    /* sparse: a page is only backed once a worker counts in it */
    if (ftruncate(fd, (off_t)size) == -1) {
        *error_r = xasprintf("ftruncate() of the metrics memfd failed: %s", strerror(errno));
        goto fail;
    }
    if ((mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        *error_r = xasprintf("mmap() of the metrics memfd failed: %s", strerror(errno));
        goto fail;
    }
    talas_metrics_init(mem);
    *fd_r = fd;
    *hdr_r = mem;
    return 0;
fail:
    close(fd);
    return -1;
}

int talas_metrics_map(int fd, struct talas_metrics_header **hdr_r, char **error_r)
{
    const struct talas_metrics_header *hdr;
    struct stat st;
    void *mem;

    if (fstat(fd, &st) == -1) {
        *error_r = xasprintf("fstat() of the metrics memfd failed: %s", strerror(errno));
        return -1;
    }
    if (st.st_size != (off_t)talas_metrics_size()) {
        *error_r = xasprintf("the metrics memfd holds %lld bytes, not the %zu of this build",
                             (long long)st.st_size, talas_metrics_size());
        return -1;
    }
    if ((mem = mmap(NULL, talas_metrics_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        *error_r = xasprintf("mmap() of the metrics memfd failed: %s", strerror(errno));
        return -1;
    }
    hdr = mem;
    if (hdr->magic != TALAS_METRICS_MAGIC || hdr->version != TALAS_METRICS_VERSION ||
        hdr->slot_size != sizeof(struct talas_metrics_slot) || hdr->slot_count != TALAS_METRICS_SLOTS) {
        *error_r =
            xasprintf("the metrics memfd is not of this build (version %u, slots of %u bytes; "
                      "this build: version %u, %zu bytes)",
                      hdr->version, hdr->slot_size, TALAS_METRICS_VERSION, sizeof(struct talas_metrics_slot));
        munmap(mem, talas_metrics_size());
        return -1;
    }
    *hdr_r = mem;
    return 0;
}

struct talas_metrics_slot *talas_metrics_slot(struct talas_metrics_header *hdr, unsigned i)
{
    return (struct talas_metrics_slot *)(hdr + 1) + i;
}

static const struct talas_metrics_slot *slot_const(const struct talas_metrics_header *hdr, unsigned i)
{
    return (const struct talas_metrics_slot *)(hdr + 1) + i;
}

#define WORDS(type) (sizeof(type) / sizeof(uint64_t))

void talas_metrics_reset_gauges(struct talas_metrics_slot *slot)
{
    _Atomic uint64_t *g = (_Atomic uint64_t *)&slot->gauge;

    for (size_t i = 0; i < WORDS(struct talas_metrics_gauges); i++)
        atomic_store_explicit(&g[i], 0, memory_order_relaxed);
}

int talas_metrics_claim(struct talas_metrics_header *hdr, uint64_t pid)
{
    for (unsigned i = 0; i < hdr->slot_count; i++) {
        struct talas_metrics_slot *slot = talas_metrics_slot(hdr, i);
        if (atomic_load_explicit(&slot->in_use, memory_order_relaxed))
            continue;
        talas_metrics_reset_gauges(slot);
        atomic_store_explicit(&slot->pid, pid, memory_order_relaxed);
        atomic_store_explicit(&slot->in_use, 1, memory_order_relaxed);
        if (i + 1 > atomic_load_explicit(&hdr->high_water, memory_order_relaxed))
            atomic_store_explicit(&hdr->high_water, i + 1, memory_order_relaxed);
        return (int)i;
    }
    return -1;
}

void talas_metrics_release(struct talas_metrics_header *hdr, int i)
{
    struct talas_metrics_slot *slot;

    if (i < 0 || (unsigned)i >= hdr->slot_count)
        return;
    slot = talas_metrics_slot(hdr, (unsigned)i);
    /* its owner is dead: what it had open is closed */
    talas_metrics_reset_gauges(slot);
    if (talas_census_table(hdr, (unsigned)i)->used != 0)
        talas_census_clear(talas_census_table(hdr, (unsigned)i));
    atomic_store_explicit(&slot->pid, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->in_use, 0, memory_order_relaxed);
}

/* Adds the N words at FROM to those at TO. */
static void add_words(_Atomic uint64_t *to, const _Atomic uint64_t *from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&to[i],
                              atomic_load_explicit(&to[i], memory_order_relaxed) +
                                  atomic_load_explicit(&from[i], memory_order_relaxed),
                              memory_order_relaxed);
}

void talas_metrics_sum(const struct talas_metrics_header *hdr, struct talas_metrics_slot *out)
{
    unsigned n = atomic_load_explicit(&hdr->high_water, memory_order_relaxed);

    memset(out, 0, sizeof(*out));
    if (n > hdr->slot_count)
        n = hdr->slot_count;
    for (unsigned i = 0; i < n; i++) {
        const struct talas_metrics_slot *slot = slot_const(hdr, i);
        if (atomic_load_explicit(&slot->in_use, memory_order_relaxed)) {
            add_words(&out->in_use, &slot->in_use, 1);
            add_words((_Atomic uint64_t *)&out->gauge, (const _Atomic uint64_t *)&slot->gauge,
                      WORDS(struct talas_metrics_gauges));
        }
        add_words((_Atomic uint64_t *)&out->count, (const _Atomic uint64_t *)&slot->count,
                  WORDS(struct talas_metrics_counters));
    }
}

/* ------------------------------------------------------------ the text */

unsigned talas_metrics_bucket(uint64_t us)
{
    unsigned b = 0;

    while (b < TALAS_METRICS_BUCKETS && us > talas_metrics_bucket_us[b])
        b++;
    return b;
}

int talas_metrics_status_class(int status)
{
    if (status < 100 || status > 599)
        return -1;
    return status / 100 - 1;
}

void talas_metrics_escape_label(struct talas_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            talas_buf_puts(out, "\\\\");
        else if (*s == '"')
            talas_buf_puts(out, "\\\"");
        else if (*s == '\n')
            talas_buf_puts(out, "\\n");
        else
            talas_buf_append(out, s, 1);
    }
}

static uint64_t word(const struct talas_metrics_slot *sum, size_t offset, size_t i)
{
    const _Atomic uint64_t *w = (const _Atomic uint64_t *)((const char *)sum + offset);

    return atomic_load_explicit(&w[i], memory_order_relaxed);
}

static void put_value(struct talas_buf *out, uint64_t v, uint64_t scale)
{
    if (scale == 1)
        talas_buf_printf(out, " %" PRIu64 "\n", v);
    else
        talas_buf_printf(out, " %" PRIu64 ".%06" PRIu64 "\n", v / scale, v % scale);
}

/* Writes NAME{labels of sample INDEX of F[, le=LE]}. */
static void put_name(struct talas_buf *out, const struct family *f, const char *suffix, size_t index,
                     const char *le)
{
    size_t strides[2] = {1, 1};
    int first = 1;

    talas_buf_puts(out, f->name);
    talas_buf_puts(out, suffix);
    if (f->dims[0] == NULL && le == NULL)
        return;
    if (f->dims[1] != NULL)
        strides[0] = f->dims[1]->count;
    talas_buf_puts(out, "{");
    for (int d = 0; d < 2 && f->dims[d] != NULL; d++) {
        talas_buf_printf(out, "%s%s=\"", first ? "" : ",", f->dims[d]->label);
        talas_metrics_escape_label(out, f->dims[d]->values[(index / strides[d]) % f->dims[d]->count]);
        talas_buf_puts(out, "\"");
        first = 0;
    }
    if (le != NULL) {
        talas_buf_printf(out, "%sle=\"", first ? "" : ",");
        talas_metrics_escape_label(out, le);
        talas_buf_puts(out, "\"");
    }
    talas_buf_puts(out, "}");
}

static size_t samples_of(const struct family *f)
{
    size_t n = 1;

    for (int d = 0; d < 2 && f->dims[d] != NULL; d++)
        n *= f->dims[d]->count;
    return n;
}

static void put_histogram(struct talas_buf *out, const struct family *f, const struct talas_metrics_slot *sum)
{
    for (size_t i = 0; i < samples_of(f); i++) {
        uint64_t cumulative = 0;
        for (unsigned b = 0; b <= TALAS_METRICS_BUCKETS; b++) {
            cumulative += word(sum, f->offset, i * (TALAS_METRICS_BUCKETS + 1) + b);
            put_name(out, f, "_bucket", i, bucket_le[b]);
            put_value(out, cumulative, 1);
        }
        put_name(out, f, "_sum", i, NULL);
        put_value(out, word(sum, f->sum_offset, i), f->scale);
        /* the +Inf bucket, so that the two never disagree */
        put_name(out, f, "_count", i, NULL);
        put_value(out, cumulative, 1);
    }
}

void talas_metrics_format(const struct talas_metrics_slot *sum, const char *version, struct talas_buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram", "gauge", "gauge"};

    for (size_t k = 0; k < TALAS_ARRAY_SIZE(families); k++) {
        const struct family *f = &families[k];

        talas_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
        switch (f->type) {
        case FAMILY_INFO:
            talas_buf_printf(out, "%s{version=\"", f->name);
            talas_metrics_escape_label(out, version);
            talas_buf_puts(out, "\"} 1\n");
            break;
        case FAMILY_HISTOGRAM:
            put_histogram(out, f, sum);
            break;
        case FAMILY_UP:
            put_name(out, f, "", 0, NULL);
            put_value(out, word(sum, f->sum_offset, 0) > 0 && word(sum, f->offset, 0) == 0, 1);
            break;
        default:
            for (size_t i = 0; i < samples_of(f); i++) {
                put_name(out, f, "", i, NULL);
                put_value(out, word(sum, f->offset, i), f->scale);
            }
            break;
        }
    }
}
