/*
 * census.c - the node's count of what each identity holds across workers,
 * in the shared segment after the metrics slots (census.h).
 *
 * Entry points: talas_census_size, talas_census_init (the master, with
 * the segment), talas_census_key, talas_census_table, talas_census_clear,
 * talas_census_add (a table's owner), talas_census_total (any worker).
 *
 * A table is open addressing with linear probing. A key whose count falls
 * to 0 keeps its place (readers probing past it stay right) until the
 * owner compacts the table, which it does when a new key would fill it
 * past three quarters; a compaction is bracketed by the table's sequence
 * number, so readers that saw it move read again.
 *
 * Logs nothing.
 */
#include <string.h>

#include "core/census.h"
#include "core/metrics.h"

#define MASK (TALAS_CENSUS_ENTRIES - 1)
#define FULL (TALAS_CENSUS_ENTRIES / 4 * 3)
#define READ_TRIES 16

_Static_assert((TALAS_CENSUS_ENTRIES & MASK) == 0, "TALAS_CENSUS_ENTRIES is a power of two");
_Static_assert(sizeof(struct talas_census_header) == 64, "tables start on a cache line");

size_t talas_census_size(void)
{
    return sizeof(struct talas_census_header) +
           (size_t)TALAS_METRICS_SLOTS * sizeof(struct talas_census_table);
}

void talas_census_init(void *mem, uint64_t seed)
{
    struct talas_census_header *c = mem;

    c->seed = seed;
}

static const struct talas_census_header *header_of(const struct talas_metrics_header *hdr)
{
    const char *base = (const char *)(hdr + 1);

    return (const struct talas_census_header *)(base + (size_t)hdr->slot_count * hdr->slot_size);
}

/* FNV-1a from the seed over the kind and the name, then a 64-bit finaliser
 * (splitmix64's) so that neighbouring names land far apart. */
uint64_t talas_census_key(const struct talas_metrics_header *hdr, char kind, const char *name)
{
    uint64_t h = (UINT64_C(14695981039346656037) ^ header_of(hdr)->seed) * UINT64_C(1099511628211);

    h = (h ^ (unsigned char)kind) * UINT64_C(1099511628211);
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    h ^= h >> 30;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 27;
    h *= UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return h != 0 ? h : 1;
}

struct talas_census_table *talas_census_table(const struct talas_metrics_header *hdr, unsigned i)
{
    return (struct talas_census_table *)(header_of(hdr) + 1) + i;
}

void talas_census_clear(struct talas_census_table *t)
{
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel);
    for (size_t i = 0; i < TALAS_CENSUS_ENTRIES; i++) {
        atomic_store_explicit(&t->e[i].key, 0, memory_order_relaxed);
        atomic_store_explicit(&t->e[i].count, 0, memory_order_relaxed);
    }
    t->used = 0;
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
}

/* Where KEY is in T, or the empty place it would take; NULL when neither
 * (a full table). */
static struct talas_census_entry *probe(struct talas_census_table *t, uint64_t key)
{
    for (size_t n = 0, i = key & MASK; n < TALAS_CENSUS_ENTRIES; n++, i = (i + 1) & MASK) {
        uint64_t k = atomic_load_explicit(&t->e[i].key, memory_order_relaxed);
        if (k == key || k == 0)
            return &t->e[i];
    }
    return NULL;
}

/* Drops the keys whose count is 0: the table is rewritten in place, its
 * sequence number odd meanwhile. */
static void compact(struct talas_census_table *t)
{
    static struct talas_census_entry live[TALAS_CENSUS_ENTRIES]; /* the owner's loop only */
    size_t n = 0;

    for (size_t i = 0; i < TALAS_CENSUS_ENTRIES; i++) {
        uint64_t count = atomic_load_explicit(&t->e[i].count, memory_order_relaxed);
        if (atomic_load_explicit(&t->e[i].key, memory_order_relaxed) != 0 && count != 0) {
            atomic_store_explicit(&live[n].key, atomic_load_explicit(&t->e[i].key, memory_order_relaxed),
                                  memory_order_relaxed);
            atomic_store_explicit(&live[n].count, count, memory_order_relaxed);
            n++;
        }
    }
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel);
    for (size_t i = 0; i < TALAS_CENSUS_ENTRIES; i++) {
        atomic_store_explicit(&t->e[i].key, 0, memory_order_relaxed);
        atomic_store_explicit(&t->e[i].count, 0, memory_order_relaxed);
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t key = atomic_load_explicit(&live[i].key, memory_order_relaxed);
        struct talas_census_entry *e = probe(t, key);
        atomic_store_explicit(&e->count, atomic_load_explicit(&live[i].count, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&e->key, key, memory_order_relaxed);
    }
    t->used = n;
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
}

int talas_census_add(struct talas_census_table *t, uint64_t key, int delta)
{
    struct talas_census_entry *e = probe(t, key);
    uint64_t count;

    if (delta < 0) {
        if (e != NULL && atomic_load_explicit(&e->key, memory_order_relaxed) == key &&
            (count = atomic_load_explicit(&e->count, memory_order_relaxed)) > 0)
            atomic_store_explicit(&e->count, count - 1, memory_order_release);
        return 0;
    }
    if (e == NULL || atomic_load_explicit(&e->key, memory_order_relaxed) == 0) {
        if (t->used >= FULL) {
            compact(t);
            if (t->used >= FULL)
                return -1;
            e = probe(t, key);
        }
        atomic_store_explicit(&e->count, 0, memory_order_relaxed);
        atomic_store_explicit(&e->key, key, memory_order_release);
        t->used++;
    }
    atomic_store_explicit(&e->count, atomic_load_explicit(&e->count, memory_order_relaxed) + 1,
                          memory_order_release);
    return 0;
}

/* KEY's count in T, read again while its owner rewrote it; 0 when it
 * kept moving (its owner stopped mid-compaction: what it holds is then
 * not counted). */
static uint64_t count_in(struct talas_census_table *t, uint64_t key)
{
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint64_t before = atomic_load_explicit(&t->seq, memory_order_acquire), count = 0;
        struct talas_census_entry *e;

        if (before & 1)
            continue;
        if ((e = probe(t, key)) != NULL && atomic_load_explicit(&e->key, memory_order_acquire) == key)
            count = atomic_load_explicit(&e->count, memory_order_acquire);
        if (atomic_load_explicit(&t->seq, memory_order_acquire) == before)
            return count;
    }
    return 0;
}

uint64_t talas_census_total(const struct talas_metrics_header *hdr, uint64_t key)
{
    unsigned n =
        atomic_load_explicit(&((struct talas_metrics_header *)hdr)->high_water, memory_order_relaxed);
    uint64_t total = 0;

    for (unsigned i = 0; i < n && i < hdr->slot_count; i++) {
        struct talas_metrics_slot *slot = talas_metrics_slot((struct talas_metrics_header *)hdr, i);
        if (atomic_load_explicit(&slot->in_use, memory_order_relaxed))
            total += count_in(talas_census_table(hdr, i), key);
    }
    return total;
}
