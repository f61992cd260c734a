/*
 * peaks_decode.h - a track's waveform computed from its source file.
 *
 * The source is checked as a transcode's is (talas_source_check: what
 * cannot be transcoded has no waveform either), then decoded whole
 * (talas_source_peaks in transcoder.h, which places samples by timestamp
 * as a transcode does) into at most TALAS_PEAKS_BUCKETS min/max buckets, and
 * encoded as the record that store/peaks.h keeps. CPU-bound, about a
 * second for a long track: on a pool thread, never on an event loop.
 */
#ifndef TALAS_PEAKS_DECODE_H
#define TALAS_PEAKS_DECODE_H

#include "core/util.h"
#include "store/cache.h"

/*
 * Decodes PATH, the file of identity IDENTITY, and appends its peaks
 * record to REC (the caller's). CANCEL (may be NULL) interrupts it.
 * Returns 0, 1 when cancelled, or -1 with a malloc'd message in *error_r
 * when no audio decodes or talas_source_check refuses the source.
 */
int talas_peaks_decode_source(const char *path, const struct talas_cache_source *identity,
                              volatile const int *cancel, struct talas_buf *rec, char **error_r);

#endif
