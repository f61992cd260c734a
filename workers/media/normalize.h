/*
 * normalize.h - loudness normalization of a transcode: a constant gain,
 * then a true-peak limiter, between the resampler and the encoder.
 *
 * The stage is a libavfilter graph (volume, 4x oversampling, alimiter,
 * back to the output rate) fed with planar float at the output rate. Its
 * delay is compensated: output sample k is input sample k, so a chunk
 * places the result on the layout's grid exactly as it places the
 * unnormalized samples. The limiter has memory (its lookahead and its
 * release), so a chunk feeds it TALAS_NORMALIZE_HISTORY_MS of the signal
 * before its encoder's pre-roll: by then its state is the continuous
 * stream's, and chunks join as the plain ones do.
 *
 * Thread safety: one stage per chunk encode, used by one thread. Only
 * after fork. Nothing is logged.
 */
#ifndef TALAS_NORMALIZE_H
#define TALAS_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

/* The targets ?normalize= accepts, in LUFS. */
#define TALAS_NORMALIZE_TARGET_MIN (-31.0)
#define TALAS_NORMALIZE_TARGET_MAX (-5.0)
/* What a normalized stream's true peak never exceeds once decoded, in
 * dBTP; the limiter works a margin below it, for the lossy encoder's own
 * overshoot: LAME's stayed within 1 dB on dense noise limited all the
 * time, FFmpeg's aac reached 1.9 dB at such a track's abrupt start. */
#define TALAS_NORMALIZE_PEAK_DBTP (-1.0)
#define TALAS_NORMALIZE_MARGIN_MP3_DB 1.5
#define TALAS_NORMALIZE_MARGIN_AAC_DB 2.5
/* Signal fed to the limiter before a chunk's first encoded sample. */
#define TALAS_NORMALIZE_HISTORY_MS 1000

struct talas_normalizer;

/* Opens a stage for CHANNELS (1 or 2) of planar float at RATE Hz applying
 * GAIN_DB, then limiting the true peak to CEILING_DBTP, whose first input
 * sample is at position FIRST. Returns 0 with *n_r (free with
 * talas_normalizer_free), or -1 with *error_r malloc'd. */
int talas_normalizer_open(unsigned rate, unsigned channels, double gain_db, double ceiling_dbtp,
                          int64_t first, struct talas_normalizer **n_r, char **error_r);

/* The position of the next input sample the stage wants. */
int64_t talas_normalizer_next_input(const struct talas_normalizer *n);

/* Feeds COUNT samples of each of the stage's channels (PLANES). Returns 0,
 * or -1 with *error_r malloc'd. */
int talas_normalizer_feed(struct talas_normalizer *n, const float *const *planes, unsigned count,
                          char **error_r);

/* Copies output samples [AT, AT + COUNT) into PLANES when the stage has
 * them all and returns 1; 0 when more input is needed first; -1 when AT
 * lies before what it still holds (outputs are dropped as they are read
 * past). */
int talas_normalizer_read(struct talas_normalizer *n, int64_t at, unsigned count, float *const *planes);

void talas_normalizer_free(struct talas_normalizer *n);

#endif
