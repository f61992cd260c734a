/*
 * hls.h - HLS playlists and fragmented MP4 (CMAF) segments of a transcode.
 *
 * An HLS rung of a track is the AAC transcode of workers/media/transcoder.h, cut
 * on its chunk grid: segment n is chunk n, so segments and progressive AAC
 * share the cache. The chunk's ADTS frames become one movie fragment (moof
 * + mdat) whose decode time is the frame's position on the grid, which is
 * what makes segments made in any order, by any process, play as one.
 *
 * The encoder's priming frame (frame 0, encoder_delay samples of nothing)
 * is left out of segment 0: fragmented MP4 can only signal it with an edit
 * list, which FFmpeg's demuxer ignores in fragments and MSE players apply
 * unevenly, so presentation time t is decode time t and the playlist's
 * EXTINFs add up to the source's duration.
 *
 * Pure functions over plain data; nothing is logged.
 */
#ifndef TALAS_HLS_H
#define TALAS_HLS_H

#include <stddef.h>
#include <stdint.h>

#include "media/transcoder.h"
#include "core/util.h"

/* One rung of a master playlist. */
struct talas_hls_rung {
    const char *name; /* the quality: URL segment */
    const struct talas_profile *profile;
    unsigned bandwidth;     /* BANDWIDTH: peak bit/s of a segment */
    unsigned avg_bandwidth; /* AVERAGE-BANDWIDTH */
};

/* BANDWIDTH and AVERAGE-BANDWIDTH of an AAC profile in fMP4: the encoder's
 * bitrate with the container's overhead, and the peak a segment reaches
 * (measured on FFmpeg 5.1's encoder; tests/integration/test_hls.py checks
 * the bound on real segments). */
void talas_hls_bandwidth(const struct talas_profile *p, unsigned *peak_r, unsigned *average_r);

/*
 * The exact bandwidths of a rung whose N chunks are all known: FRAME_SIZE(ARG,
 * c, i) is the size of ADTS frame i of chunk c, FRAMES[c] each chunk's frame
 * count; durations come from the frame counts (the last chunk's padding
 * counts as played, a few ms over a track).
 */
void talas_hls_measured_bandwidth(uint32_t n, const uint32_t *frames,
                                  uint32_t (*frame_size)(void *, uint32_t, uint32_t), void *arg,
                                  unsigned rate, unsigned encoder_delay, unsigned *peak_r,
                                  unsigned *average_r);

/* Puts RUNGS (N of them) in the order players should try them: the
 * first listed is where a player without a bandwidth estimate starts
 * (RFC 8216bis 4.3.4.2), so the middle rung by bitrate comes first, then
 * the others from the highest down. */
void talas_hls_ladder_order(struct talas_hls_rung *rungs, size_t n);

/* Appends the master playlist: RUNGS in the order given, each listed as
 * "NAME/playlist.m3u8" followed by QUERY (e.g. "?token=...", or ""). */
void talas_hls_master(struct talas_buf *out, const struct talas_hls_rung *rungs, size_t n, const char *query);

/* Appends the VOD media playlist of layout L: EXTINFs of every segment,
 * "init.mp4" and "N.m4s" followed by QUERY. */
void talas_hls_media_playlist(struct talas_buf *out, const struct talas_layout *l, const char *query);

/* Presentation start and duration of segment N, in output samples. */
void talas_hls_segment_span(const struct talas_layout *l, uint32_t n, uint64_t *start_r, uint64_t *length_r);

/* Appends the initialization segment (ftyp + moov) of an AAC profile.
 * Returns 0, or -1 for a profile fMP4 cannot describe here. */
int talas_hls_init_segment(struct talas_buf *out, const struct talas_profile *p);

/*
 * Appends media segment N (moof + mdat) made from chunk N's ADTS bytes
 * (ADTS, LEN) of layout L. Returns 0, or -1 with *error_r a static message
 * when the bytes are not the chunk's frames (a corrupt cache entry).
 */
int talas_hls_media_segment(struct talas_buf *out, const struct talas_layout *l, uint32_t n,
                            const uint8_t *adts, size_t len, const char **error_r);

#endif
