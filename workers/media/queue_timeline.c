/*
 * queue_timeline.c - where each track of a queue sits on its timeline, and
 * which tracks a chunk covers (see queue_timeline.h).
 *
 * Entry points: talas_queue_place, talas_queue_track_at,
 * talas_queue_chunk_span, talas_queue_tracks_in, talas_queue_new / _ref /
 * _unref. Logs nothing.
 */
#include <stdlib.h>

#include "media/queue_timeline.h"
#include "core/util.h"

uint64_t talas_queue_place(struct talas_queue *q)
{
    uint64_t at = 0;

    for (size_t i = 0; i < q->count; i++) {
        q->tracks[i].start = at;
        at += q->tracks[i].layout.out_samples;
    }
    q->total = at;
    return at;
}

size_t talas_queue_track_at(const struct talas_queue *q, uint64_t pos)
{
    size_t lo = 0, hi = q->count;

    if (pos >= q->total)
        return q->count;
    /* the last track starting at or before POS, then past the empty ones */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (q->tracks[mid].start <= pos)
            lo = mid;
        else
            hi = mid;
    }
    while (lo < q->count && q->tracks[lo].layout.out_samples == 0)
        lo++;
    return lo;
}

void talas_queue_chunk_span(const struct talas_profile *p, const struct talas_layout *l, uint32_t c, int read,
                            int64_t *from_r, int64_t *to_r)
{
    int64_t n = l->frame_samples, first = (int64_t)talas_layout_chunk_start(l, c),
            end = (int64_t)talas_layout_chunk_start(l, c + 1);

    if (read) {
        /* the encoder is fed timeline samples from its first frame on (its
         * priming is its own, not the timeline's) */
        *from_r = (first - (int64_t)talas_layout_chunk_preroll(p, l, c)) * n;
        *to_r = end * n;
    } else {
        *from_r = first * n - (int64_t)l->encoder_delay;
        *to_r = end * n - (int64_t)l->encoder_delay;
    }
    if (*from_r < 0)
        *from_r = 0;
    if (*to_r > (int64_t)l->out_samples)
        *to_r = (int64_t)l->out_samples;
    if (*to_r < *from_r)
        *to_r = *from_r;
}

int talas_queue_tracks_in(const struct talas_queue *q, int64_t from, int64_t to, size_t *first_r,
                          size_t *last_r)
{
    size_t a, b;

    if (from < 0)
        from = 0;
    if (to <= from || (uint64_t)from >= q->total)
        return -1;
    a = talas_queue_track_at(q, (uint64_t)from);
    b = talas_queue_track_at(q, (uint64_t)to - 1);
    *first_r = a;
    *last_r = b;
    return 0;
}

struct talas_queue *talas_queue_new(size_t count)
{
    struct talas_queue *q = xcalloc(1, sizeof(*q));

    q->refs = 1;
    q->count = count;
    q->tracks = xcalloc(count > 0 ? count : 1, sizeof(*q->tracks));
    return q;
}

struct talas_queue *talas_queue_ref(struct talas_queue *q)
{
    q->refs++;
    return q;
}

void talas_queue_unref(struct talas_queue *q)
{
    if (q == NULL || --q->refs > 0)
        return;
    for (size_t i = 0; i < q->count; i++)
        free(q->tracks[i].path);
    free(q->tracks);
    free(q);
}
