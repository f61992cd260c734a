/*
 * test_room_clock.c - the position rule of listening rooms
 * (src/store/room_clock.c): paused, playing, one and several track ends
 * crossed, past the last entry, an entry gone from the queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store/room_clock.h"

/* Three entries of 10 s, 20 s and 5 s. */
static struct talas_room_entry queue[3] = {
    {"0000000000000001", "AAAAAAAAAAAAAAAA", NULL, NULL, 10000},
    {"0000000000000002", "BBBBBBBBBBBBBBBB", NULL, NULL, 20000},
    {"0000000000000003", "CCCCCCCCCCCCCCCC", NULL, NULL, 5000},
};

static void at(struct talas_room_playback *pb, int entry, uint64_t position, uint64_t at_ms, int playing)
{
    memset(pb, 0, sizeof(*pb));
    strcpy(pb->entry_id, queue[entry].entry_id);
    strcpy(pb->track_id, queue[entry].track_id);
    pb->position_ms = position;
    pb->at_server_ms = at_ms;
    pb->playing = playing;
}

static void test_paused(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 0, 4000, 1000000, 0);
    /* long past the end of the track: a paused room does not move */
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1000000 + 60000), 0);
    assert_string_equal(pb.entry_id, queue[0].entry_id);
    assert_int_equal(talas_room_clock_position(&pb, 1000000 + 60000), 4000);
    assert_int_equal(pb.playing, 0);
}

static void test_playing(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 0, 4000, 1000000, 1);
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1000000 + 5999), 0);
    assert_int_equal(talas_room_clock_position(&pb, 1000000 + 5999), 9999);
    assert_string_equal(pb.entry_id, queue[0].entry_id);
    /* a clock a little behind at_server_ms reads the position as stored */
    assert_int_equal(talas_room_clock_position(&pb, 999990), 4000);
}

static void test_one_track_end(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 0, 4000, 1000000, 1);
    /* entry 0 ends at 1006000; 2.5 s later the room is 2.5 s into entry 1 */
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1008500), 1);
    assert_string_equal(pb.entry_id, queue[1].entry_id);
    assert_string_equal(pb.track_id, queue[1].track_id);
    assert_int_equal(pb.position_ms, 0);
    assert_int_equal(pb.at_server_ms, 1006000);
    assert_int_equal(pb.playing, 1);
    assert_int_equal(talas_room_clock_position(&pb, 1008500), 2500);
    /* applied again, nothing moves: every reader agrees */
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1008500), 0);
    /* exactly at the end: the next entry, at 0 */
    at(&pb, 0, 4000, 1000000, 1);
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1006000), 1);
    assert_string_equal(pb.entry_id, queue[1].entry_id);
    assert_int_equal(talas_room_clock_position(&pb, 1006000), 0);
}

static void test_several_track_ends(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 0, 4000, 1000000, 1);
    /* entry 0 ends at 1006000, entry 1 at 1026000; 1 s into entry 2 */
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1027000), 1);
    assert_string_equal(pb.entry_id, queue[2].entry_id);
    assert_int_equal(pb.at_server_ms, 1026000);
    assert_int_equal(talas_room_clock_position(&pb, 1027000), 1000);
    assert_int_equal(pb.playing, 1);
    /* a seek past the end of a track ends it at the seek's instant */
    at(&pb, 0, 15000, 2000000, 1);
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 2000100), 1);
    assert_string_equal(pb.entry_id, queue[1].entry_id);
    assert_int_equal(pb.at_server_ms, 2000000);
    assert_int_equal(talas_room_clock_position(&pb, 2000100), 100);
}

static void test_past_the_last(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 1, 0, 1000000, 1);
    /* entry 1 ends at 1020000, entry 2 at 1025000 */
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1100000), 1);
    assert_string_equal(pb.entry_id, queue[2].entry_id);
    assert_int_equal(pb.playing, 0);
    assert_int_equal(pb.position_ms, 5000);
    assert_int_equal(pb.at_server_ms, 1025000);
    assert_int_equal(talas_room_clock_position(&pb, 1200000), 5000);
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1200000), 0);
}

static void test_entry_gone(void **state)
{
    struct talas_room_playback pb;

    (void)state;
    at(&pb, 0, 1000, 1000000, 1);
    strcpy(pb.entry_id, "ffffffffffffffff");
    assert_int_equal(talas_room_clock_apply(queue, 3, &pb, 1002000), 1);
    assert_int_equal(pb.playing, 0);
    assert_int_equal(pb.position_ms, 3000);
    /* an empty queue: nothing to play */
    at(&pb, 0, 0, 1000000, 1);
    assert_int_equal(talas_room_clock_apply(queue, 0, &pb, 1000001), 1);
    assert_int_equal(pb.playing, 0);
    assert_int_equal(talas_room_clock_find(queue, 3, ""), -1);
    assert_int_equal(talas_room_clock_find(queue, 3, queue[2].entry_id), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused),        cmocka_unit_test(test_playing),
        cmocka_unit_test(test_one_track_end), cmocka_unit_test(test_several_track_ends),
        cmocka_unit_test(test_past_the_last), cmocka_unit_test(test_entry_gone),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
