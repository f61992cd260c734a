/*
 * measure.h - one file's loudness (EBU R128 by libebur128) and tempo (by
 * libaubio), from its audio decoded with libavcodec.
 *
 * Runs in the scanner only (a child of the master, or talasctl): it decodes
 * the whole file, which takes seconds, and talas-worker does not link
 * these libraries at all.
 */
#ifndef TALAS_MEASURE_H
#define TALAS_MEASURE_H

#include <stdint.h>

#include "store/track_analysis.h"

/*
 * Decodes the file at PATH (its probed duration DURATION_MS, 0 when
 * unknown) and measures WHAT (TALAS_ANALYSIS_LOUDNESS and/or
 * TALAS_ANALYSIS_TEMPO) into *A_R, whose flags say what was measured.
 * Returns 0, or -1 with a malloc'd reason in *error_r (the caller frees
 * it): a file that cannot be opened or decoded, one that decodes to
 * markedly less audio than its header announces (truncated), one whose
 * format changes midway. Never crashes on a broken file; logs nothing.
 */
int talas_measure_file(const char *path, uint64_t duration_ms, uint32_t what,
                       struct talas_track_analysis *a_r, char **error_r);

#endif
