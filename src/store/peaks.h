/*
 * peaks.h - the stored waveform of a track: min/max peaks of its mono mix
 * at a fixed base resolution, one record per track in TALAS_DBI_PEAKS.
 *
 * A record is computed once (workers/http/http_peaks.c, from the whole decoded
 * source) and shared by every worker and every restart. It carries the
 * identity (size, mtime) of the file it was computed from: a look-up with
 * another identity finds nothing, so a changed file is computed again.
 * Any number of points is served from the base buckets by
 * talas_peaks_downsample (min of mins, max of maxes).
 */
#ifndef TALAS_PEAKS_H
#define TALAS_PEAKS_H

#include <stddef.h>
#include <stdint.h>

#include "store/cache.h"
#include "store/storage.h"
#include "core/util.h"

/* The base resolution (fewer for a source with fewer samples), and the
 * most points a request may ask for. */
#define TALAS_PEAKS_BUCKETS 4096
#define TALAS_PEAKS_POINTS_MAX 4096
/* META counters TALAS_PEAKS_COUNTERS: {computed, failed}, summed over
 * workers: a decode of a whole source for its peaks, and one that found no
 * audio. */
#define TALAS_PEAKS_COUNTERS "peaks"

/* A record, read in place: DATA points into the record (a transaction's
 * map, or a buffer), BUCKETS pairs of little-endian int16 (min, max),
 * full scale 32767. */
struct talas_peaks {
    struct talas_cache_source identity;
    uint64_t duration_ms;
    uint32_t buckets;
    const unsigned char *data;
};

/*
 * Encodes a record for IDENTITY from BUCKETS (1..TALAS_PEAKS_BUCKETS) min
 * and max values in -1..1 (clamped) into OUT (appended; the caller owns
 * it).
 */
void talas_peaks_encode(const struct talas_cache_source *identity, uint64_t duration_ms, uint32_t buckets,
                        const float *min, const float *max, struct talas_buf *out);

/* Reads record DATA (LEN bytes) into *P_R (pointing into DATA). Returns
 * 0, or -1 when it is damaged or of an unknown version. */
int talas_peaks_decode(const void *data, size_t len, struct talas_peaks *p_r);

/*
 * The record of TRACK made from IDENTITY, in TXN's map (valid until TXN
 * ends). Returns 0, MDB_NOTFOUND (none, or made from another file), -1
 * (damaged) or another LMDB error.
 */
int talas_peaks_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                    const struct talas_cache_source *identity, struct talas_peaks *p_r);

/* Stores record REC (LEN bytes) for TRACK in one short write transaction,
 * replacing what was there. Returns 0 or an LMDB error. Not on an event
 * loop: it waits for the writer lock. */
int talas_peaks_put(struct talas_storage *st, const char *track, const void *rec, size_t len);

/* Deletes the record of TRACK, or every record when TRACK is NULL; the
 * number deleted goes to *count_r (may be NULL). Returns 0 or an LMDB
 * error. */
int talas_peaks_drop(struct talas_storage *st, const char *track, uint64_t *count_r);

/* Moves the record of track FROM to track TO in TXN (a write transaction):
 * a record TO already has is kept, FROM's dropped. Returns 0 (nothing to
 * move included) or an LMDB error. */
int talas_peaks_move(struct talas_storage *st, MDB_txn *txn, const char *from, const char *to);

/* Reduces P to POINTS (>= 1) pairs in MIN_R / MAX_R, in -1..1: point j
 * covers the base buckets [j*B/POINTS, (j+1)*B/POINTS), at least one. */
void talas_peaks_downsample(const struct talas_peaks *p, uint32_t points, float *min_r, float *max_r);

#endif
