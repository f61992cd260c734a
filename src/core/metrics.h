/*
 * metrics.h - the node's figures for GET /metrics: one shared memory
 * segment, one slot per worker process, summed by whichever worker answers
 * the scrape (workers/http/http_metrics.c).
 *
 * The master creates the segment once, before its first worker, as a memfd
 * (talas_metrics_create) and keeps it for as long as it lives, reloads
 * included. It hands each worker it starts the fd and a free slot
 * (talas_metrics_claim; --metrics-fd, --metrics-slot) and takes the slot
 * back when it reaps the worker (talas_metrics_release). The worker maps
 * the segment MAP_SHARED (talas_metrics_map, which checks the magic, the
 * version, the slot size and the file size) and counts into its slot with
 * relaxed atomic adds, from its loop and from its encoder threads. Nobody
 * waits on anybody: the master writes only a slot's ownership, a worker
 * only its own slot's figures, and a scrape reads every slot.
 *
 * Counters are never reset while the master lives: a slot's counters stay
 * when its worker dies and keep adding up in the sum, so a respawn (which
 * may get another slot) never makes a counter go backwards. Gauges belong
 * to the live owner of the slot: they are zeroed when a slot changes hands
 * and summed over owned slots only.
 *
 * Adding a series: a field (or an array of fields) in struct
 * talas_metrics_counters or talas_metrics_gauges below, and one
 * row in the family table of metrics.c {name, type, help, field offset,
 * label dimensions, scale}. Then count it in the worker with
 * talas_metrics_add/_sub. Changing the slot's layout means bumping
 * TALAS_METRICS_VERSION (a worker of another build refuses the segment).
 *
 * The sum and the text exposition (talas_metrics_sum, talas_metrics_format)
 * are pure and unit-tested (tests/unit/test_metrics.c).
 */
#ifndef TALAS_METRICS_H
#define TALAS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define TALAS_METRICS_MAGIC UINT32_C(0x4d4c4154) /* "TALM" in memory order */
#define TALAS_METRICS_VERSION 3
/* Worker processes that can count at once: two generations of the largest
 * worker count during a reload, and room for workers still finishing their
 * responses after earlier reloads. A worker started when all are taken
 * counts into memory of its own (logged), which no scrape sees. */
#define TALAS_METRICS_SLOTS 1024

/* The route label of talas_http_*. */
enum talas_metrics_route {
    TALAS_ROUTE_STREAM,
    TALAS_ROUTE_TRANSCODE,
    TALAS_ROUTE_PREVIEW,
    TALAS_ROUTE_HLS,
    TALAS_ROUTE_PEAKS,
    TALAS_ROUTE_API,
    TALAS_ROUTE_WS,
    TALAS_ROUTE_OTHER,
    TALAS_ROUTE_COUNT
};

/* The status label: the class of the status code (1xx: a WebSocket's 101). */
enum talas_metrics_status {
    TALAS_STATUS_1XX,
    TALAS_STATUS_2XX,
    TALAS_STATUS_3XX,
    TALAS_STATUS_4XX,
    TALAS_STATUS_5XX,
    TALAS_STATUS_COUNT
};

/* talas_http_first_byte_seconds: the upper bounds of the finite buckets,
 * in microseconds (+Inf is the total). */
#define TALAS_METRICS_BUCKETS 11
extern const uint64_t talas_metrics_bucket_us[TALAS_METRICS_BUCKETS];

/* The gauges of a slot: its live owner's, zeroed when the slot changes
 * hands, summed over the slots in use. Plain _Atomic uint64_t fields only. */
/* A cluster engine's connections (redis_loop.c, pg.c): how many this
 * worker holds, and how many of them are not ready. */
struct talas_metrics_engine_gauges {
    _Atomic uint64_t conns;
    _Atomic uint64_t down;
};

struct talas_metrics_gauges {
    _Atomic uint64_t encodes_running;
    _Atomic uint64_t ws_connections;
    struct talas_metrics_engine_gauges redis, postgres;
};

/* A cluster engine's traffic: commands (queries) sent, those answered with
 * an error or never answered, connections made again after a loss or a
 * failed attempt, and the round trips of the answered ones (a histogram on
 * talas_metrics_bucket_us, and its sum in microseconds). */
struct talas_metrics_engine {
    _Atomic uint64_t commands;
    _Atomic uint64_t errors;
    _Atomic uint64_t reconnects;
    _Atomic uint64_t round_trip[TALAS_METRICS_BUCKETS + 1];
    _Atomic uint64_t round_trip_us;
};

/* The counters of a slot: never reset while the master lives, summed over
 * every slot ever used. Plain _Atomic uint64_t fields only; times are
 * microseconds (shown as seconds). */
struct talas_metrics_counters {
    _Atomic uint64_t http_requests[TALAS_ROUTE_COUNT][TALAS_STATUS_COUNT];
    /* per bucket, not cumulative: the last one holds what is above the
     * last bound; the count is the sum of all */
    _Atomic uint64_t http_first_byte[TALAS_ROUTE_COUNT][TALAS_METRICS_BUCKETS + 1];
    _Atomic uint64_t http_first_byte_us[TALAS_ROUTE_COUNT];
    _Atomic uint64_t cache_hits;
    _Atomic uint64_t cache_misses;
    _Atomic uint64_t encoded_us;    /* audio encoded */
    _Atomic uint64_t encode_cpu_us; /* encoder threads' CPU time */
    _Atomic uint64_t ws_events_in;
    _Atomic uint64_t ws_events_out;
    struct talas_metrics_engine redis, postgres;
    _Atomic uint64_t listen_sessions_dropped; /* cluster: not written to PostgreSQL */
};

/* One worker process's figures, updated with relaxed atomics. */
struct talas_metrics_slot {
    /* written by the master only */
    _Atomic uint64_t in_use; /* 1 while a worker owns the slot (talas_workers) */
    _Atomic uint64_t pid;    /* the owner's pid, for whoever reads a core dump */
    struct talas_metrics_gauges gauge;
    struct talas_metrics_counters count;
};

/* The segment: this header, then TALAS_METRICS_SLOTS slots, then the
 * census (core/census.h). */
struct talas_metrics_header {
    uint32_t magic;
    uint32_t version;
    uint32_t slot_size;          /* sizeof(struct talas_metrics_slot) */
    uint32_t slot_count;         /* TALAS_METRICS_SLOTS */
    _Atomic uint32_t high_water; /* slots ever claimed: a sum reads no further */
    uint32_t pad[11];            /* slots start on a cache line */
};

/* The bucket of a first byte (or a round trip) after US microseconds
 * (TALAS_METRICS_BUCKETS: the +Inf one). */
unsigned talas_metrics_bucket(uint64_t us);

static inline void talas_metrics_add(_Atomic uint64_t *field, uint64_t n)
{
    atomic_fetch_add_explicit(field, n, memory_order_relaxed);
}

static inline void talas_metrics_sub(_Atomic uint64_t *field, uint64_t n)
{
    atomic_fetch_sub_explicit(field, n, memory_order_relaxed);
}

/* Counts one answered round trip of US microseconds into E. */
static inline void talas_metrics_round_trip(struct talas_metrics_engine *e, uint64_t us)
{
    talas_metrics_add(&e->round_trip[talas_metrics_bucket(us)], 1);
    talas_metrics_add(&e->round_trip_us, us);
}

/* The segment's size in bytes. */
size_t talas_metrics_size(void);

/* The master: a memfd holding an initialised segment (close-on-exec; the
 * caller owns it and the mapping). Returns 0, or -1 with a malloc'd
 * message in *error_r. */
int talas_metrics_create(int *fd_r, struct talas_metrics_header **hdr_r, char **error_r);

/* A worker: maps the segment of FD shared and checks it is one of this
 * build. Returns 0, or -1 with a malloc'd message in *error_r. */
int talas_metrics_map(int fd, struct talas_metrics_header **hdr_r, char **error_r);

/* Lays out an empty segment in MEM (talas_metrics_size() bytes, zeroed). */
void talas_metrics_init(void *mem);

/* Slot I (< slot_count) of the segment. */
struct talas_metrics_slot *talas_metrics_slot(struct talas_metrics_header *hdr, unsigned i);

/* The master: a free slot for worker PID, its gauges zeroed; its index, or
 * -1 when all are taken. */
int talas_metrics_claim(struct talas_metrics_header *hdr, uint64_t pid);
/* The master: slot I is free again (its worker was reaped); its gauges are
 * zeroed, its counters stay. */
void talas_metrics_release(struct talas_metrics_header *hdr, int i);
/* Zeroes the gauges of SLOT (a worker taking it, in case the master could
 * not). */
void talas_metrics_reset_gauges(struct talas_metrics_slot *slot);

/* The node's figures into *OUT: counters summed over every slot ever
 * used, gauges over the slots in use. */
void talas_metrics_sum(const struct talas_metrics_header *hdr, struct talas_metrics_slot *out);

/* Appends to OUT the text exposition (Prometheus 0.0.4) of SUM, with
 * talas_build_info{version=VERSION}. */
void talas_metrics_format(const struct talas_metrics_slot *sum, const char *version, struct talas_buf *out);

/* Appends S to OUT escaped as a label value (backslash, double quote and
 * newline). */
void talas_metrics_escape_label(struct talas_buf *out, const char *s);


/* The status label of a status code; -1 for none (0: no response). */
int talas_metrics_status_class(int status);

#endif
