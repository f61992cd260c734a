/*
 * queue_timeline.h - the timeline of a queue played as one stream
 * (continuous HLS of a playlist or an artist: http/http_hls_queue.c).
 *
 * A queue is a virtual source: the decoded audio of its tracks, each
 * resampled to the rung's rate and channels, laid end to end with nothing
 * between them. Track t holds samples_t output samples, the count of its
 * own whole-track transcode at that rung (talas_layout_compute's
 * out_samples: its exact decoded length, talas_source_measure, less the
 * decoder's trims, converted to the rung's rate and rounded), so a queue
 * of one track is that track's stream. Track t starts at the sum of the
 * samples before it. Over that source the queue has a grid of chunks like
 * any transcode (talas_layout_compute of a source of TOTAL samples at the
 * rung's rate), the same pre-roll and the same HLS packaging: chunk c's
 * encoder reads the timeline from its pre-roll on, across track
 * boundaries, so no priming, padding or silence is ever inserted between
 * two tracks.
 *
 * The timeline is plain data (the tracks' layouts and starts); the
 * functions here are pure arithmetic, with no I/O and no logging. A
 * struct talas_queue is shared by reference between a request and the
 * encodes it starts (talas_queue_ref / _unref, loop thread only; encoder
 * threads only read it).
 */
#ifndef TALAS_QUEUE_TIMELINE_H
#define TALAS_QUEUE_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "media/transcoder.h"

/* One track of a queue at one rung. */
struct talas_queue_track {
    char id[17];
    char *path;                 /* owned */
    struct talas_layout layout; /* its own transcode at the rung: layout.out_samples is its length */
    uint64_t start;             /* its first sample on the queue's timeline */
};

/* A queue at one rung. */
struct talas_queue {
    unsigned refs;
    size_t count;
    struct talas_queue_track *tracks; /* owned, COUNT of them, in play order */
    uint64_t total;                   /* samples of the whole timeline */
};

/* Sets each track's start from the lengths of those before it and
 * q->total; returns the total. */
uint64_t talas_queue_place(struct talas_queue *q);

/* The track playing at timeline sample POS (< q->total): the last track
 * starting at or before POS with at least one sample (empty tracks take
 * no time). Returns q->count when POS is at or past the end. */
size_t talas_queue_track_at(const struct talas_queue *q, uint64_t pos);

/* The timeline samples [*FROM_R, *TO_R) the frames of chunk C of layout L
 * carry (frame j carries samples [j*N - encoder_delay, (j+1)*N -
 * encoder_delay), clipped to [0, total)), and those its encoder reads
 * (READ: from its pre-roll's first frame on, talas_layout_chunk_preroll,
 * to its last frame's end). */
void talas_queue_chunk_span(const struct talas_profile *p, const struct talas_layout *l, uint32_t c, int read,
                            int64_t *from_r, int64_t *to_r);

/* The tracks [*FIRST_R, *LAST_R] whose samples fall in [FROM, TO) of
 * Q's timeline; returns 0, or -1 when none does (the span is only
 * padding or priming). */
int talas_queue_tracks_in(const struct talas_queue *q, int64_t from, int64_t to, size_t *first_r,
                          size_t *last_r);

/* A new queue of COUNT tracks, zeroed, one reference. */
struct talas_queue *talas_queue_new(size_t count);
struct talas_queue *talas_queue_ref(struct talas_queue *q);
/* Drops a reference; the last one frees the paths and Q. NULL is ignored. */
void talas_queue_unref(struct talas_queue *q);

#endif
