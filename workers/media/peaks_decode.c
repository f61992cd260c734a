/*
 * peaks_decode.c - a track's waveform from its source file (see
 * peaks_decode.h).
 *
 * Entry point: talas_peaks_decode_source. Any thread; logs nothing: errors
 * go back to the caller (peaks_jobs.c logs them).
 */
#include <stdlib.h>

#include "media/peaks_decode.h"
#include "media/transcoder.h"
#include "store/peaks.h"

int talas_peaks_decode_source(const char *path, const struct talas_cache_source *identity,
                              volatile const int *cancel, struct talas_buf *rec, char **error_r)
{
    struct talas_source_info info;
    float *mn = NULL, *mx = NULL;
    uint32_t buckets;
    int result = -1;

    if (cancel != NULL && *cancel)
        return 1;
    /* what the transcodes refuse has no waveform either: one verdict */
    if (talas_source_check(path, &info, error_r) != 0)
        return -1;
    /* a source with fewer samples than buckets gets a bucket per sample */
    buckets = info.samples < TALAS_PEAKS_BUCKETS ? (uint32_t)info.samples : TALAS_PEAKS_BUCKETS;
    mn = xmalloc(sizeof(float) * buckets);
    mx = xmalloc(sizeof(float) * buckets);
    if (talas_source_peaks(path, info.samples, buckets, cancel, mn, mx, error_r) != 0) {
        result = cancel != NULL && *cancel ? 1 : -1;
        goto done;
    }
    talas_peaks_encode(identity, info.samples * 1000 / info.sample_rate, buckets, mn, mx, rec);
    result = 0;
done:
    free(mn);
    free(mx);
    return result;
}
