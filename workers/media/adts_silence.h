/*
 * adts_silence.h - silent AAC-LC frames in ADTS of any chosen size, to
 * pad a transcode to the length announced for it (Subsonic's
 * estimateContentLength). Pure computation, any thread.
 */
#ifndef TALAS_ADTS_SILENCE_H
#define TALAS_ADTS_SILENCE_H

#include <stddef.h>
#include <stdint.h>

/* The smallest and largest silent frame (bytes, ADTS header included) for
 * CHANNELS (1 or 2). Every size between them can be made. */
size_t talas_adts_silence_min(unsigned channels);
size_t talas_adts_silence_max(unsigned channels);

/*
 * Writes LEN bytes of silent frames at OUT for a stream of RATE Hz and
 * CHANNELS (1 or 2): one frame per talas_adts_silence_max bytes or so,
 * every frame decoding to 1024 samples of silence. LEN is 0 or at least
 * talas_adts_silence_min(CHANNELS). Returns the number of frames, or -1
 * for a LEN that cannot be filled or channels other than 1 and 2.
 */
long talas_adts_silence(uint8_t *out, size_t len, unsigned rate, unsigned channels);

#endif
