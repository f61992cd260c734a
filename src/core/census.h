/*
 * census.h - what each identity (a user, or a client address) holds across
 * every worker of the node: the count of its WebSocket connections, so
 * that ws.max_connections_per_user and _per_address are the node's limits,
 * not each worker's.
 *
 * The census lives in the node's shared segment (core/metrics.h), after the
 * metrics slots: one table per slot, written only by the worker that owns
 * the slot (single writer, no lock), read by every worker when it decides
 * an upgrade. A table maps a key, a 64-bit hash of the identity under the
 * segment's random seed, to the count this worker holds. The node's count
 * is the sum over the slots in use: a dead worker's slot is released by
 * the master (which zeroes its table, without a lock and without waiting on
 * anyone), so what it held stops counting at once.
 *
 * Reads are not atomic across tables: two workers deciding the same
 * identity's upgrade at the same instant may both see room for one, so the
 * node may exceed a limit by at most one connection per worker, for as
 * long as both are open. A worker whose table is full (more than
 * TALAS_CENSUS_ENTRIES identities with connections on it) counts what does
 * not fit locally only (talas_census_add returns -1; ws_limits.c then
 * falls back to its own count).
 */
#ifndef TALAS_CENSUS_H
#define TALAS_CENSUS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TALAS_CENSUS_ENTRIES 4096 /* per worker; a power of two */

struct talas_census_entry {
    _Atomic uint64_t key; /* 0: empty */
    _Atomic uint64_t count;
};

/* One worker's table. SEQ is odd while its owner rewrites it (a
 * compaction): readers then retry, a bounded number of times. */
struct talas_census_table {
    _Atomic uint64_t seq;
    uint64_t used; /* keys set, the owner's own bookkeeping */
    struct talas_census_entry e[TALAS_CENSUS_ENTRIES];
};

struct talas_census_header {
    uint64_t seed; /* random, set by the master: keys cannot be chosen to collide */
    uint64_t pad[7];
};

struct talas_metrics_header;

/* The bytes the census takes in the segment, for TALAS_METRICS_SLOTS. */
size_t talas_census_size(void);

/* Lays out an empty census in MEM (zeroed) with SEED. */
void talas_census_init(void *mem, uint64_t seed);

/* The key of an identity: KIND ('u' a user, 'a' an address) and NAME,
 * never 0. */
uint64_t talas_census_key(const struct talas_metrics_header *hdr, char kind, const char *name);

/* The table of slot I (zeroing it is its owner's, or the master's once the
 * owner is dead). */
struct talas_census_table *talas_census_table(const struct talas_metrics_header *hdr, unsigned i);

/* Empties table T (its owner at start; the master when its owner died). */
void talas_census_clear(struct talas_census_table *t);

/* The owner of table T adds DELTA (+1 or -1) to KEY's count. Returns 0, or
 * -1 when a new key finds no room (nothing counted). */
int talas_census_add(struct talas_census_table *t, uint64_t key, int delta);

/* KEY's count over every slot in use. */
uint64_t talas_census_total(const struct talas_metrics_header *hdr, uint64_t key);

#endif
