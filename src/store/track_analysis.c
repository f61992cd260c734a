/*
 * track_analysis.c - the measured part of a track (track_analysis.h): what
 * is still to measure, ReplayGain from loudness, the JSON members of the
 * API and talasctl, and the /api/tracks filters over them.
 *
 * Entry points: talas_track_analysis_wanted(), _gain_db(), _json(),
 * talas_track_filter_init() / _active() / _match(). Pure: no I/O, logs
 * nothing.
 */
#include <math.h>

#include "store/track_analysis.h"

uint32_t talas_track_analysis_wanted(const struct talas_track_analysis *a, int playable, uint64_t duration_ms,
                                     int loudness, int tempo, uint64_t tempo_max_ms)
{
    uint32_t want = 0;

    if (!playable || (a->flags & TALAS_ANALYSIS_FAILED))
        return 0;
    if (loudness && !(a->flags & TALAS_ANALYSIS_LOUDNESS))
        want |= TALAS_ANALYSIS_LOUDNESS;
    if (tempo && duration_ms < tempo_max_ms && !(a->flags & TALAS_ANALYSIS_TEMPO))
        want |= TALAS_ANALYSIS_TEMPO;
    return want;
}

double talas_track_analysis_gain_db(const struct talas_track_analysis *a)
{
    if (!(a->flags & TALAS_ANALYSIS_LOUDNESS) || !isfinite(a->integrated_lufs))
        return NAN;
    return TALAS_REPLAY_GAIN_REFERENCE - a->integrated_lufs;
}

/* V to DIGITS decimals, or null: a measurement is not more precise than
 * that, and 17 significant digits of noise help no client. */
static void number(struct talas_json *json, double v, int digits)
{
    talas_json_double_digits(json, v, digits);
}

void talas_track_analysis_json(struct talas_json *json, const struct talas_track_analysis *a)
{
    talas_json_key(json, "loudness");
    if (a->flags & TALAS_ANALYSIS_LOUDNESS) {
        talas_json_object_begin(json);
        talas_json_key(json, "integrated_lufs");
        number(json, a->integrated_lufs, 2);
        talas_json_key(json, "range_lu");
        number(json, a->range_lu, 2);
        talas_json_key(json, "true_peak_dbtp");
        number(json, a->true_peak_dbtp, 2);
        talas_json_key(json, "sample_peak_dbfs");
        number(json, a->sample_peak_dbfs, 2);
        talas_json_object_end(json);
    } else {
        talas_json_null(json);
    }

    talas_json_key(json, "replay_gain");
    if (a->flags & TALAS_ANALYSIS_LOUDNESS) {
        talas_json_object_begin(json);
        talas_json_key(json, "track_gain_db");
        number(json, talas_track_analysis_gain_db(a), 2);
        talas_json_key(json, "track_peak");
        number(json, a->sample_peak, 6);
        talas_json_object_end(json);
    } else {
        talas_json_null(json);
    }

    talas_json_key(json, "tempo");
    if ((a->flags & TALAS_ANALYSIS_TEMPO) && isfinite(a->bpm) && a->bpm > 0) {
        talas_json_object_begin(json);
        talas_json_key(json, "bpm");
        number(json, a->bpm, 2);
        talas_json_key(json, "confidence");
        number(json, a->bpm_confidence, 2);
        talas_json_object_end(json);
    } else {
        talas_json_null(json);
    }
}

void talas_track_filter_init(struct talas_track_filter *f)
{
    f->bpm_min = -1;
    f->bpm_max = -1;
    f->max_duration_ms = -1;
}

int talas_track_filter_active(const struct talas_track_filter *f)
{
    return f->bpm_min >= 0 || f->bpm_max >= 0 || f->max_duration_ms >= 0;
}

int talas_track_filter_match(const struct talas_track_filter *f, uint64_t duration_ms,
                             const struct talas_track_analysis *a)
{
    if (f->max_duration_ms >= 0 && duration_ms > (uint64_t)f->max_duration_ms)
        return 0;
    if (f->bpm_min >= 0 || f->bpm_max >= 0) {
        if (!(a->flags & TALAS_ANALYSIS_TEMPO) || !isfinite(a->bpm) || a->bpm <= 0)
            return 0;
        if (f->bpm_min >= 0 && a->bpm < f->bpm_min)
            return 0;
        if (f->bpm_max >= 0 && a->bpm > f->bpm_max)
            return 0;
    }
    return 1;
}
