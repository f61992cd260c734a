/*
 * test_queue_timeline.c - the timeline of a queue (workers/media/
 * queue_timeline.c): where each track starts at the rung's rate, which
 * track plays at a sample, which samples chunk N carries and which its
 * encoder reads (the pre-roll, across track boundaries), on the grid of
 * the builtin "medium" rung (AAC, 44.1 kHz: frames of 1024, 1024 samples
 * of priming, chunks of 258 frames after a ramp of 8, 16, 32, 64 and 129,
 * a pre-roll of 65 frames). The expected figures are worked out by hand
 * in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "media/queue_timeline.h"
#include "media/transcoder.h"

static struct talas_profile medium;

static void layout_of(uint64_t samples, unsigned rate, unsigned channels, struct talas_layout *l)
{
    struct talas_source_info src = {.samples = samples, .sample_rate = rate, .channels = channels};
    char *error = NULL;

    if (talas_layout_compute(&medium, &src, NULL, l, &error) != 0)
        fail_msg("talas_layout_compute: %s", error);
}

/* A queue of the test's four sources (as test_gapless.py makes them):
 * MP3 44.1 kHz 7.31 s, FLAC 48 kHz 6.77 s, mono WAV 22.05 kHz 5.123 s,
 * Opus 48 kHz 8.05 s; FIRST overrides the first track's length. */
static struct talas_queue *four_tracks(uint64_t first)
{
    struct talas_queue *q = talas_queue_new(4);

    layout_of(first, 44100, 2, &q->tracks[0].layout);
    layout_of(324960, 48000, 2, &q->tracks[1].layout);
    layout_of(112962, 22050, 1, &q->tracks[2].layout);
    layout_of(386400, 48000, 2, &q->tracks[3].layout);
    talas_queue_place(q);
    return q;
}

static void queue_layout(const struct talas_queue *q, struct talas_layout *l)
{
    layout_of(q->total, 44100, 2, l);
}

static void test_tracks_start_where_the_one_before_ends(void **state)
{
    struct talas_queue *q = four_tracks(322371);

    (void)state;
    /* each at the rung's rate, rounded on its own: 324960 * 44100 / 48000
     * = 298557, 112962 * 2 = 225924, 386400 * 0.91875 = 355005 */
    assert_int_equal(q->tracks[0].layout.out_samples, 322371);
    assert_int_equal(q->tracks[1].layout.out_samples, 298557);
    assert_int_equal(q->tracks[2].layout.out_samples, 225924);
    assert_int_equal(q->tracks[3].layout.out_samples, 355005);
    assert_int_equal(q->tracks[0].start, 0);
    assert_int_equal(q->tracks[1].start, 322371);
    assert_int_equal(q->tracks[2].start, 620928);
    assert_int_equal(q->tracks[3].start, 846852);
    assert_int_equal(q->total, 1201857);
    talas_queue_unref(q);
}

static void test_track_at(void **state)
{
    struct talas_queue *q = four_tracks(322371);

    (void)state;
    assert_int_equal(talas_queue_track_at(q, 0), 0);
    assert_int_equal(talas_queue_track_at(q, 322370), 0);
    assert_int_equal(talas_queue_track_at(q, 322371), 1);
    assert_int_equal(talas_queue_track_at(q, 620927), 1);
    assert_int_equal(talas_queue_track_at(q, 620928), 2);
    assert_int_equal(talas_queue_track_at(q, 1201856), 3);
    assert_int_equal(talas_queue_track_at(q, 1201857), 4); /* the end */
    assert_int_equal(talas_queue_track_at(q, UINT64_MAX), 4);
    talas_queue_unref(q);
}

static void test_an_empty_track_takes_no_time(void **state)
{
    struct talas_queue *q = talas_queue_new(3);

    (void)state;
    layout_of(1000, 44100, 2, &q->tracks[0].layout);
    q->tracks[1].layout.out_samples = 0;
    layout_of(500, 44100, 2, &q->tracks[2].layout);
    talas_queue_place(q);
    assert_int_equal(q->tracks[1].start, 1000);
    assert_int_equal(q->tracks[2].start, 1000);
    assert_int_equal(talas_queue_track_at(q, 999), 0);
    assert_int_equal(talas_queue_track_at(q, 1000), 2);
    assert_int_equal(q->total, 1500);
    talas_queue_unref(q);
}

static void test_queue_grid(void **state)
{
    struct talas_queue *q = four_tracks(322371);
    struct talas_layout l;

    (void)state;
    queue_layout(q, &l);
    /* F = ceil((1024 + 1201857) / 1024) = 1175 frames; chunks start at
     * frames 0, 8, 24, 56, 120, 249, 507, 765, 1023: 9 chunks */
    assert_int_equal(l.frames, 1175);
    assert_int_equal(l.chunks, 9);
    assert_int_equal(l.out_samples, q->total);
    assert_int_equal(talas_layout_chunk_start(&l, 5), 249);
    assert_int_equal(talas_layout_chunk_preroll(&medium, &l, 5), 65);
    assert_int_equal(talas_layout_chunk_preroll(&medium, &l, 2), 24); /* never before frame 0 */
    talas_queue_unref(q);
}

static void test_chunks_and_their_tracks(void **state)
{
    struct talas_queue *q = four_tracks(322371);
    struct talas_layout l;
    int64_t from, to;
    size_t first, last;

    (void)state;
    queue_layout(q, &l);
    /* chunk 0 carries frames 0..7 less the priming: samples [0, 7168) */
    talas_queue_chunk_span(&medium, &l, 0, 0, &from, &to);
    assert_int_equal(from, 0);
    assert_int_equal(to, 7168);
    talas_queue_chunk_span(&medium, &l, 0, 1, &from, &to);
    assert_int_equal(from, 0);
    /* chunk 5: frames 249..506, samples [253952, 518144): the boundary at
     * 322371 inside, tracks 0 and 1; its encoder starts at frame 184 */
    talas_queue_chunk_span(&medium, &l, 5, 0, &from, &to);
    assert_int_equal(from, 253952);
    assert_int_equal(to, 518144);
    assert_int_equal(talas_queue_tracks_in(q, from, to, &first, &last), 0);
    assert_int_equal(first, 0);
    assert_int_equal(last, 1);
    talas_queue_chunk_span(&medium, &l, 5, 1, &from, &to);
    assert_int_equal(from, 184 * 1024);
    assert_int_equal(to, 507 * 1024);
    /* chunk 6: [518144, 782336): tracks 1 and 2 (620928 inside); its
     * encoder reads from frame 442, still track 1 */
    talas_queue_chunk_span(&medium, &l, 6, 0, &from, &to);
    assert_int_equal(talas_queue_tracks_in(q, from, to, &first, &last), 0);
    assert_int_equal(first, 1);
    assert_int_equal(last, 2);
    talas_queue_chunk_span(&medium, &l, 6, 1, &from, &to);
    assert_int_equal(from, 442 * 1024);
    assert_int_equal(talas_queue_track_at(q, (uint64_t)from), 1);
    /* the last chunk: [1046528, 1201857), the end of the queue, not of
     * its last frame (1202176): the padding is nobody's */
    talas_queue_chunk_span(&medium, &l, 8, 0, &from, &to);
    assert_int_equal(from, 1046528);
    assert_int_equal(to, 1201857);
    assert_int_equal(talas_queue_tracks_in(q, from, to, &first, &last), 0);
    assert_int_equal(first, 3);
    assert_int_equal(last, 3);
    talas_queue_unref(q);
}

static void test_preroll_reaches_into_the_track_before(void **state)
{
    struct talas_queue *q = four_tracks(200000);
    struct talas_layout l;
    int64_t from, to;
    size_t first, last;

    (void)state;
    queue_layout(q, &l);
    /* track 1 now starts at 200000: chunk 5 carries [253952, 518144) of
     * tracks 1 and 2 (498557), but its encoder reads from 188416, in
     * track 0: the end of track 0 primes the encoder of track 1's chunk */
    talas_queue_chunk_span(&medium, &l, 5, 0, &from, &to);
    assert_int_equal(talas_queue_tracks_in(q, from, to, &first, &last), 0);
    assert_int_equal(first, 1);
    assert_int_equal(last, 2);
    talas_queue_chunk_span(&medium, &l, 5, 1, &from, &to);
    assert_int_equal(from, 188416);
    assert_int_equal(talas_queue_tracks_in(q, from, to, &first, &last), 0);
    assert_int_equal(first, 0);
    assert_int_equal(last, 2);
    talas_queue_unref(q);
}

static void test_every_sample_in_exactly_one_chunk(void **state)
{
    struct talas_queue *q = four_tracks(322371);
    struct talas_layout l;
    int64_t at = 0;

    (void)state;
    queue_layout(q, &l);
    /* the chunks' spans tile [0, total): no sample twice, none missing */
    for (uint32_t c = 0; c < l.chunks; c++) {
        int64_t from, to;

        talas_queue_chunk_span(&medium, &l, c, 0, &from, &to);
        assert_int_equal(from, at);
        assert_true(to > from);
        at = to;
    }
    assert_int_equal(at, (int64_t)q->total);
    talas_queue_unref(q);
}

static void test_a_queue_of_one_is_the_track(void **state)
{
    struct talas_queue *q = talas_queue_new(1);
    struct talas_layout l;

    (void)state;
    layout_of(386400, 48000, 2, &q->tracks[0].layout);
    talas_queue_place(q);
    queue_layout(q, &l);
    assert_int_equal(l.out_samples, q->tracks[0].layout.out_samples);
    assert_int_equal(l.frames, q->tracks[0].layout.frames);
    assert_int_equal(l.chunks, q->tracks[0].layout.chunks);
    talas_queue_unref(q);
}

static void test_references(void **state)
{
    struct talas_queue *q = talas_queue_new(2);

    (void)state;
    q->tracks[0].path = xstrdup("/a");
    q->tracks[1].path = xstrdup("/b");
    assert_ptr_equal(talas_queue_ref(q), q);
    assert_int_equal(q->refs, 2);
    talas_queue_unref(q);
    assert_int_equal(q->refs, 1);
    talas_queue_unref(q); /* frees the paths (ASan/valgrind would tell) */
    talas_queue_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracks_start_where_the_one_before_ends),
        cmocka_unit_test(test_track_at),
        cmocka_unit_test(test_an_empty_track_takes_no_time),
        cmocka_unit_test(test_queue_grid),
        cmocka_unit_test(test_chunks_and_their_tracks),
        cmocka_unit_test(test_preroll_reaches_into_the_track_before),
        cmocka_unit_test(test_every_sample_in_exactly_one_chunk),
        cmocka_unit_test(test_a_queue_of_one_is_the_track),
        cmocka_unit_test(test_references),
    };

    if (talas_profile_builtin("medium", &medium) != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
