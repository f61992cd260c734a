/*
 * transcoder.h - chunked, deterministic transcodes (FLAC/WAV/... -> MP3 or
 * AAC) for the worker processes.
 *
 * A transcode of one (source, profile, window) is DEFINED as a grid of
 * chunks. The output stream is a sequence of encoder frames of
 * frame_samples each; chunk c is frames [c*K, min((c+1)*K, F)), produced by
 * a fresh encoder fed with the source from PREROLL frames before the chunk
 * start (the packets of those frames are dropped; an MP3 chunk 0 is
 * pre-rolled with silence, an AAC pre-roll starts no earlier than frame 0). Every chunk is a pure function of (file, profile, layout, c): the
 * same bytes in any process, in any order, so chunks can be cached one by
 * one and a stream can start anywhere (seek, Range, HLS segment N) on its
 * very first play. Concatenating header + chunks 0..C-1 is the stream.
 *
 * MP3 (libmp3lame, CBR, no bit reservoir) is raw frames after one Xing
 * "Info" frame with a LAME tag carrying the encoder delay and end padding,
 * so gapless decoders return exactly the source's duration. Every byte size
 * is known before encoding (exact_size). AAC (FFmpeg's native encoder, LC)
 * is ADTS, which cannot carry the encoder delay: a decoder returns
 * encoder_delay samples of priming before the audio (a player or HLS
 * playlist that wants to trim them reads encoder_delay from the layout), and
 * sizes are only known after encoding.
 *
 * Source reading: every format is sought with the demuxer
 * (AVSEEK_FLAG_BACKWARD) a margin before the needed position and decoded
 * samples are placed by their timestamps; when a seek lands after the
 * needed position (or fails) the chunk decodes from the start of the file
 * instead. MP3 sources are sought through libavformat's generic index
 * (exact timestamps, linear in the file position), never by TOC/bitrate.
 *
 * Thread safety: no global mutable state; every call opens its own libav
 * contexts, so any number of threads may encode chunks concurrently. Only
 * call after fork (libav contexts are never shared across fork). Nothing is
 * logged.
 */
#ifndef TALAS_TRANSCODER_H
#define TALAS_TRANSCODER_H

#include <stdint.h>

#include "core/util.h"

/* Frames encoded and dropped before every chunk, so that a chunk's first
 * frame is coded as in a continuous encode (no click at boundaries). MP3
 * (libmp3lame without reservoir) settles in 3 frames. FFmpeg's aac encoder
 * carries adaptive state (rate control lambda, psy bit reservoir, window
 * switching): with 3 frames its first frames after a boundary were coded
 * 2-4x worse than a continuous encode's on real music; 1.5 s of pre-roll
 * (64 frames at 44.1 kHz, 33 at 22.05 kHz) brings them to the continuous
 * encode's level. An AAC pre-roll never starts before frame 0: chunks
 * within the first 1.5 s are then exactly the continuous encode. */
#define TALAS_TRANSCODE_PREROLL 3
#define TALAS_TRANSCODE_PREROLL_AAC_MS 1500
/* A normalized AAC stream (louder, limited) needed 3 s: with 1.5 s one
 * boundary of real music still coded 1.7x worse than a continuous encode
 * (tests/integration/test_seams.py). Its pre-roll is in its variant. */
#define TALAS_TRANSCODE_PREROLL_AAC_NORMALIZED_MS 3000
/* Largest chunk_frames the layout can describe (the padding bitmap). */
#define TALAS_LAYOUT_MAX_CHUNK_FRAMES 512

/* Return values of talas_transcode_chunk besides 0 and -1. */
#define TALAS_TRANSCODE_CANCELLED 1
/* The chunk was produced in full, but part of the source it covers could
 * not be decoded (truncated or corrupt file): that part is silence. Serve
 * it, but do not cache it. */
#define TALAS_TRANSCODE_INCOMPLETE 2

enum talas_codec { TALAS_CODEC_MP3, TALAS_CODEC_AAC };

struct talas_profile {
    char name[32]; /* "mp3", "high", ... */
    enum talas_codec codec;
    unsigned bitrate;     /* bits per second */
    unsigned sample_rate; /* output Hz */
    unsigned channels;    /* output channels (1 or 2) */
    unsigned chunk_ms;    /* AAC: length of a full chunk (an HLS segment), 0: 6000 */
    /* Loudness normalization (media/normalize.h): the target in tenths of
     * LUFS, 0 for none; then GAIN_DB (the target less the track's
     * integrated loudness) and the true-peak limiter run before the
     * encoder. Part of the cache variant (talas_transcode_variant). */
    int normalize_dlu;
    double gain_db;
};

struct talas_config_profile;

/* The encoder's form of config profile CP, with full chunks of CHUNK_MS
 * (AAC; 0: 6000). */
void talas_profile_from_config(const struct talas_config_profile *cp, unsigned chunk_ms,
                               struct talas_profile *p_r);

/* Fills *P_R with the default ladder's profile NAME (high, medium, low,
 * mobile, mp3: talas_config_default_profile, the one definition) and
 * returns 0; -1 for a name not in it. */
int talas_profile_builtin(const char *name, struct talas_profile *p_r);

struct talas_source_info {
    uint64_t samples;     /* exact decoded length, at sample_rate */
    unsigned sample_rate; /* source Hz */
    unsigned channels;    /* source channels */
    int truncated;        /* 1: the file holds less audio than its header
                           * declares (FLAC STREAMINFO, Xing frames, MP4
                           * durations): samples counts what is there */
    const char *measured_by; /* whence samples came (a static string):
                              * "header" (PCM), "streaminfo" (FLAC),
                              * "info tag" (MP3), "sample table" (MP4),
                              * "ogg granule", or "pass" */
};

/*
 * Measures the source at PATH as a demux-only pass would: the sum of its
 * packet durations less what the container says the decoder trims
 * (encoder delay and padding: LAME/Info tags, Opus pre-skip, MP4 edit
 * lists). Where the container states its length and the file confirms it,
 * the pass is not made: PCM from its header, FLAC from STREAMINFO when its
 * last second ends exactly there, MP3 from its Info tag when a walk over
 * its frame headers counts the same frames (media/mp3_length.c), MP4 from
 * its sample table when every sample lies inside the file, Ogg from its
 * last granule. A millisecond or two for a 5-minute file; the pass takes
 * ten.
 * A file cut short is not an error: it measures what it holds, with
 * info_r->truncated set so the caller can say so (and not cache).
 * Returns 0, or -1 with *error_r a malloc'd message (not a file, no audio
 * stream, not a known format).
 */
int talas_source_measure(const char *path, struct talas_source_info *info_r, char **error_r);

/* The same measure by the pass alone, whatever the container states: what
 * the shortcuts above must agree with (the tests compare them). Ogg alone
 * is still measured from its granule: its packet durations count packets
 * that decode to nothing. */
int talas_source_measure_pass(const char *path, struct talas_source_info *info_r, char **error_r);

/* The sample rates a source may have. Outside them every function here
 * refuses it as undecodable (no audio format is sampled at 1 Hz; a
 * resampler asked for 44.1 kHz from it makes 44,100 samples of each). */
#define TALAS_SOURCE_RATE_MIN 1000
#define TALAS_SOURCE_RATE_MAX 768000

/* Decodes the first packets of PATH: returns 0 when audio comes out and
 * the resampler of every chunk can take it (to mono and to stereo), -1
 * with a malloc'd message when none comes out (a file whose packets look
 * like audio but are not) or when it cannot be converted (channels
 * libswresample cannot mix down: more than 8 without a known layout; a
 * rate outside TALAS_SOURCE_RATE_MIN..MAX). Such a file gets a 422 before
 * any header is sent, instead of a response cut after its headers.
 * Milliseconds; not on an event loop. */
int talas_source_decodes(const char *path, char **error_r);

/* Whether PATH can be transcoded, and its measure: talas_source_measure,
 * at least one sample, then talas_source_decodes. The one verdict of
 * every route that decodes (transcodes, previews, HLS, peaks). Returns 0
 * with *info_r, or -1 with a malloc'd message in *error_r. Reads the whole
 * file (milliseconds): not on an event loop. */
int talas_source_check(const char *path, struct talas_source_info *info_r, char **error_r);

/*
 * Decodes the whole of PATH (opened as every source is: no symbolic link
 * since the scan), mixes it to mono (the mean of its channels) and keeps
 * the lowest and highest sample of each of BUCKETS equal stretches of its
 * SAMPLES samples (talas_source_measure's count) in MIN_R / MAX_R (BUCKETS
 * floats each, full scale 1; a stretch where nothing decodes reads 0).
 * CANCEL (may be NULL) interrupts it. Returns 0, or -1 with a malloc'd
 * message in *error_r (no audio decodes, interrupted). About a second for a
 * long track: never on an event loop.
 */
int talas_source_peaks(const char *path, uint64_t samples, uint32_t buckets, volatile const int *cancel,
                       float *min_r, float *max_r, char **error_r);

/* An excerpt of the source (previews), in source samples. */
struct talas_window {
    uint64_t start;  /* first source sample */
    uint64_t length; /* source samples; clipped to the end of the source */
    uint64_t fade;   /* linear fade-in and fade-out length, source samples */
};

/* The grid of one (source, profile, window). Plain data: it can be stored
 * and copied; the fields below the line are for this module. */
struct talas_layout {
    unsigned frame_samples; /* samples per encoder frame: 1152, 576 or 1024 */
    unsigned chunk_frames;  /* K: frames per full chunk (about 6 s) */
    unsigned ramp_chunks;   /* R: AAC starts with R short chunks of K/2^R, ..., K/2 frames */
    uint64_t out_samples;   /* the source (or window) duration, output samples */
    uint64_t frames;        /* F: frames in the stream (encoder delay + out_samples) */
    uint32_t chunks;        /* C */
    unsigned encoder_delay; /* priming samples at the start of the decoded stream */
    int exact_size;         /* 1: every byte size is known before encoding (MP3) */
    uint64_t header_size;   /* bytes before chunk 0 (MP3: the Info frame), else 0 */
    uint64_t total_size;    /* exact_size: header + all chunks, else 0 */
    /* ---- */
    unsigned preroll_frames;
    unsigned out_rate, out_channels;
    struct talas_source_info source;
    struct talas_window window; /* whole source when no window was given */
    uint64_t fade_out;          /* fade in output samples */
    unsigned frame_bytes;       /* MP3: bytes of an unpadded frame */
    uint64_t chunk_bytes;       /* MP3: bytes of a full chunk */
    /* MP3: bit m set when the m-th frame of every chunk carries the padding
     * slot (libmp3lame's sequence from a fresh encoder, after the pre-roll) */
    uint8_t padding[TALAS_LAYOUT_MAX_CHUNK_FRAMES / 8];
    /* MP3: the bits set in padding[0 .. i), so that a frame's offset costs
     * one look-up (every range of a cached transcode asks for dozens) */
    uint16_t padding_before[TALAS_LAYOUT_MAX_CHUNK_FRAMES / 8 + 1];
};

/*
 * Computes the layout of profile P over source SRC (from
 * talas_source_measure) and window WIN (NULL: the whole source; a window is
 * clipped to the source). Pure computation, microseconds. Returns 0, or -1
 * with *error_r malloc'd (unsupported profile, window outside the source).
 */
int talas_layout_compute(const struct talas_profile *p, const struct talas_source_info *src,
                         const struct talas_window *win, struct talas_layout *l_r, char **error_r);

/*
 * The grid. MP3 chunks are all K frames (the last one shorter). An AAC
 * stream opens with R short chunks that double in length up to K (a player
 * gets its first seconds after a small encode, then whole chunks while it
 * plays those): chunk c < R holds K >> (R - c) frames.
 */
/* The first frame of chunk C (C <= l->chunks; l->chunks gives F). */
uint64_t talas_layout_chunk_start(const struct talas_layout *l, uint32_t c);
/* The number of frames of chunk C (< l->chunks). */
uint32_t talas_layout_chunk_frame_count(const struct talas_layout *l, uint32_t c);
/* The pre-roll of chunk C (< l->chunks) under profile P: the frames its
 * fresh encoder codes and drops before the chunk's first frame. AAC: the
 * layout's pre-roll, but never before frame 0 (an encoder started there
 * is the continuous one). MP3: always the layout's (the padding pattern of
 * every chunk depends on it). The encoder is fed from source sample
 * (talas_layout_chunk_start - pre-roll) * frame_samples. */
unsigned talas_layout_chunk_preroll(const struct talas_profile *p, const struct talas_layout *l, uint32_t c);
/* The chunk holding frame J (J < F). */
uint32_t talas_layout_chunk_of_frame(const struct talas_layout *l, uint64_t j);

/* When l->exact_size: the byte size of chunk C (< l->chunks). Else 0. */
uint64_t talas_layout_chunk_size(const struct talas_layout *l, uint32_t c);
/* When l->exact_size: the byte offset in the stream (header included) of
 * frame J (0 <= J <= F; J == F gives total_size), for ?t= seeks and Range to
 * chunk mapping. Else UINT64_MAX. */
uint64_t talas_layout_frame_offset(const struct talas_layout *l, uint64_t j);
/* The chunk holding byte OFF of the stream (OFF < total_size, past the
 * header) when exact_size; UINT32_MAX otherwise. */
uint32_t talas_layout_chunk_at(const struct talas_layout *l, uint64_t off);

/*
 * Appends the stream header to OUT: for MP3 the Info frame (frames, bytes,
 * linear TOC, LAME tag with delay and padding, tag CRC), exactly
 * l->header_size bytes; nothing for AAC. Returns 0, or -1 for a layout that
 * does not belong to P.
 */
int talas_transcode_header(const struct talas_profile *p, const struct talas_layout *l,
                           struct talas_buf *out);

/*
 * Encodes chunk C of the stream described by L (computed for PATH and P;
 * the layout carries the window) and appends it to OUT.
 *
 * CANCEL (may be NULL) is polled between frames and by libav's I/O: once it
 * is non-zero the call returns TALAS_TRANSCODE_CANCELLED within
 * milliseconds, with OUT holding a partial chunk the caller must discard.
 * When FRAME_SIZES_R is not NULL, *frame_sizes_r receives a malloc'd array
 * of the chunk's frame sizes in bytes (one per frame, caller frees).
 *
 * Returns 0; TALAS_TRANSCODE_INCOMPLETE with *error_r malloc'd when part of
 * the source this chunk covers did not decode (the chunk is whole and
 * valid, with silence there, and for MP3 still exactly
 * talas_layout_chunk_size bytes: serve, do not cache); CANCELLED; or -1 with
 * *error_r malloc'd and OUT unspecified (unreadable or undecodable source,
 * encoder failure, a layout that does not match).
 */
int talas_transcode_chunk(const char *path, const struct talas_profile *p, const struct talas_layout *l,
                          uint32_t c, volatile const int *cancel, struct talas_buf *out,
                          uint32_t **frame_sizes_r, char **error_r);

/*
 * Chunk C of a queue's continuous stream (media/queue_timeline.h): as
 * talas_transcode_chunk, over the timeline of Q's tracks (each decoded and
 * resampled as its own transcode is, laid end to end) instead of one file.
 * L is the layout of a source of q->total samples at P's rate and
 * channels; P has no normalization. Q is only read: any number of threads
 * may encode chunks of one queue at once. Returns as talas_transcode_chunk
 * (INCOMPLETE when a track did not decode somewhere in the chunk).
 */
struct talas_queue;
int talas_transcode_queue_chunk(const struct talas_queue *q, const struct talas_profile *p,
                                const struct talas_layout *l, uint32_t c, volatile const int *cancel,
                                struct talas_buf *out, uint32_t **frame_sizes_r, char **error_r);

#endif
