/*
 * track_analysis.h - what the scanner measured of a track: loudness (EBU
 * R128), ReplayGain 2.0 derived from it, and tempo; the part of the track
 * record (store/catalog.h) that carries them, its JSON, and the filters of
 * /api/tracks over it.
 *
 * Plain data, no I/O: the measuring is scan/measure.c's (libebur128,
 * libaubio, in the scanner only), the storing catalog.c's.
 */
#ifndef TALAS_TRACK_ANALYSIS_H
#define TALAS_TRACK_ANALYSIS_H

#include <stdint.h>

#include "core/json.h"

/* flags of struct talas_track_analysis */
#define TALAS_ANALYSIS_LOUDNESS 0x01u /* the loudness fields were measured */
#define TALAS_ANALYSIS_TEMPO 0x02u    /* the tempo was looked for (bpm 0: none found) */
#define TALAS_ANALYSIS_FAILED 0x04u   /* the file could not be analysed: error says why */
#define TALAS_ANALYSIS_FLAGS 0x07u

/* The reference level of ReplayGain 2.0, in LUFS. */
#define TALAS_REPLAY_GAIN_REFERENCE (-18.0)

struct talas_track_analysis {
    uint32_t flags;
    /* EBU R128 / ITU-R BS.1770-4. Not finite (-inf) where there is nothing
     * to measure: digital silence has no integrated loudness and no peak
     * in dB. */
    double integrated_lufs;
    double range_lu;
    double true_peak_dbtp;
    double sample_peak_dbfs;
    double sample_peak; /* linear, the largest of every channel's */
    double bpm;         /* 0: no tempo found */
    double bpm_confidence;
    /* why the analysis failed (TALAS_ANALYSIS_FAILED), else NULL; points
     * into the record like the track's strings */
    const char *error;
};

/* What a track still needs measured under the configuration's analysis.*
 * keys: TALAS_ANALYSIS_LOUDNESS and/or TALAS_ANALYSIS_TEMPO, or 0. PLAYABLE
 * is 0 for a file that failed to probe (nothing to analyse); tempo only for
 * a track shorter than TEMPO_MAX_MS (analysis.tempo_max_duration). A
 * failed analysis is not tried again until the file changes. */
uint32_t talas_track_analysis_wanted(const struct talas_track_analysis *a, int playable, uint64_t duration_ms,
                                     int loudness, int tempo, uint64_t tempo_max_ms);

/* ReplayGain 2.0 track gain in dB (reference -18 LUFS); not finite when
 * the integrated loudness is not (silence) or was not measured. */
double talas_track_analysis_gain_db(const struct talas_track_analysis *a);

/* Writes the members "loudness", "replay_gain" and "tempo" into the open
 * object of JSON: objects when known, null when not (never a non-finite
 * number: those are null). */
void talas_track_analysis_json(struct talas_json *json, const struct talas_track_analysis *a);

/* The filters of /api/tracks: a bound < 0 is not set. */
struct talas_track_filter {
    double bpm_min, bpm_max; /* tracks with a known tempo in [min, max] */
    int64_t max_duration_ms; /* tracks no longer than this */
};

/* No filter set. */
void talas_track_filter_init(struct talas_track_filter *f);
/* 1 when the filter has a bound, else 0. */
int talas_track_filter_active(const struct talas_track_filter *f);
/* 1 when a track of DURATION_MS with analysis A passes F, else 0. A bpm
 * bound leaves out tracks without a known tempo. */
int talas_track_filter_match(const struct talas_track_filter *f, uint64_t duration_ms,
                             const struct talas_track_analysis *a);

#endif
