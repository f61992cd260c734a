/*
 * chunk.h - one chunk of a transcode, whichever place it came from.
 *
 * A struct talas_chunk is a read-only view of the bytes of chunk N of
 * (track, variant): either a view into the LMDB map, valid because the
 * chunk holds the read transaction that found it (zero copy: h2o writes
 * straight from the map), or the buffer an encode just produced. Users
 * see the bytes, their length and the frame table, and hold references:
 * the last talas_chunk_release aborts the read transaction or frees the
 * buffer. Chunks are handed out by talas_chunk_get (transcode_jobs.h);
 * this module is the one place of the worker that reads the transcode
 * cache.
 *
 * Threads: everything here runs on the worker's loop thread, except
 * talas__chunk_encoded, which an encoder thread calls to wrap its output
 * before handing it to the loop.
 */
#ifndef TALAS_CHUNK_H
#define TALAS_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/storage.h"

/* What names a chunk's transcode: the track, the variant (settings and
 * grid, transcode_jobs.h) and the identity of the source file. */
struct talas_chunk_key {
    char track[17];
    char variant[TALAS_CACHE_VARIANT_MAX + 1];
    struct talas_cache_source identity;
};

/* A chunk, shared by its holders: read its public fields, never write
 * them. */
struct talas_chunk {
    const char *data; /* LEN bytes: a view into the map, or the encoder's buffer */
    size_t len;
    size_t frame_count; /* frames in the table (0 when the encoder kept none) */
    /* the rest belongs to chunk.c */
    unsigned refs;
    struct MDB_txn *txn;              /* from the cache: the read transaction holding the view */
    const unsigned char *frame_table; /* from the cache: little-endian uint32 sizes */
    uint32_t *frame_sizes;            /* encoded: owned */
    char *owned;                      /* encoded: the buffer DATA points to */
};

/* Starts the module for this worker: ST is where the cache lives (it
 * outlives every chunk). */
void talas_chunk_init(struct talas_storage *st);

/* The size of frame I (< frame_count) of C. */
uint32_t talas_chunk_frame_size(const struct talas_chunk *c, size_t i);

/* Takes one more reference to C; returns C. */
struct talas_chunk *talas_chunk_ref(struct talas_chunk *c);
/* Gives one reference back; the last one ends the read transaction or frees
 * the buffer. NULL is ignored. */
void talas_chunk_release(struct talas_chunk *c);

/*
 * Chunk INDEX of KEY from the cache, without encoding anything: returns 0
 * with a new reference in *chunk_r, MDB_NOTFOUND when it is not stored (or
 * from another source), -1 when its record is damaged (logged by the
 * cache; an encode replaces it), or another LMDB error.
 */
int talas_chunk_lookup(const struct talas_chunk_key *key, uint32_t index, struct talas_chunk **chunk_r);

/* 1 when chunks FIRST..LAST of KEY are all in the cache (one read
 * transaction), else 0. With FIRST_R, a 1 also hands over a reference to
 * chunk FIRST from that transaction (*FIRST_R is NULL on a 0): a response
 * that asked whether it must encode serves its first chunk without
 * looking it up again. */
int talas_chunk_cached(const struct talas_chunk_key *key, uint32_t first, uint32_t last,
                       struct talas_chunk **first_r);

/*
 * When the whole transcode of KEY is cached (every chunk its entry
 * announces), calls FN for each chunk in order, all in one read
 * transaction: COUNT is the number of chunks, CHUNK a view valid during
 * the call only (not to be referenced). Returns COUNT, or -1 when some
 * chunk is missing or unreadable (FN may have seen the ones before) or
 * when there are more than MAX.
 */
typedef void (*talas_chunk_scan_fn)(void *arg, uint32_t index, uint32_t count,
                                    const struct talas_chunk *chunk);
int64_t talas_chunk_scan(const struct talas_chunk_key *key, uint32_t max, talas_chunk_scan_fn fn, void *arg);

/* Marks KEY's transcode as used now (the cache's LRU order). */
void talas_chunk_touch(const struct talas_chunk_key *key);

/* For transcode_jobs.c: wraps an encoder's output (DATA, LEN bytes, and
 * FRAME_SIZES, FRAME_COUNT entries, may be NULL; both malloc'd, now the
 * chunk's) in a chunk with one reference. Any thread. */
struct talas_chunk *talas__chunk_encoded(char *data, size_t len, uint32_t *frame_sizes, size_t frame_count);

#endif
