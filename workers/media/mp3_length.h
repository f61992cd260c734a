/*
 * mp3_length.h - an MP3 file's exact length from its Info tag, confirmed
 * by a walk over every frame header (no payload is read or decoded).
 */
#ifndef TALAS_MP3_LENGTH_H
#define TALAS_MP3_LENGTH_H

#include <stddef.h>
#include <stdint.h>

/* Layer III bit rates in kbit/s by bitrate index: [0] MPEG-2 and 2.5,
 * [1] MPEG-1. Index 0 is the free format, 15 is forbidden. */
extern const unsigned talas_mp3_kbps[2][15];

struct talas_mp3_length {
    uint64_t frames;    /* audio frames, the Info frame not counted */
    unsigned spf;       /* samples per frame: 1152 (MPEG-1) or 576 */
    unsigned rate;      /* sample rate, Hz */
    int lame;           /* 1: a LAME extension (LAME, Lavf, Lavc) gave pads */
    unsigned start_pad; /* encoder delay, samples (lame only) */
    unsigned end_pad;   /* padding at the end, samples (lame only) */
};

/* A file to read: SIZE bytes, of which READ copies N from offset OFF into
 * BUF (returns how many it copied, -1 on an error). */
struct talas_mp3_input {
    uint64_t size;
    long (*read)(void *arg, void *buf, size_t n, uint64_t off);
    void *arg;
};

/*
 * Reads the file IN as an MP3 whose length the
 * frame headers confirm: ID3v2 tags, then a Layer III frame holding a Xing
 * or Info tag with a frame count, then exactly that many frames of the
 * same version and sample rate, none in the free format, ending where the
 * file ends or where its trailing tags (APEv2, then ID3v1) begin.
 * Returns 0 with *R filled; -1 when anything differs (junk between frames,
 * a cut or concatenated file, no frame count): the caller then measures by
 * demuxing. Reads the file once, front to back, through a 64 KiB window
 * (an ID3v2 tag is skipped unread), whatever it holds.
 */
int talas_mp3_length(const struct talas_mp3_input *in, struct talas_mp3_length *r);

#endif
