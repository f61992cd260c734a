/*
 * test_ipc.c - the master/worker messages (src/core/ipc.c): round trips, frames
 * split anywhere, and decoders that refuse every short, long or mangled
 * payload without reading past it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ipc.h"

static void test_event_round_trip(void **state)
{
    struct talas_ipc_event
        ev = {4242, 1, "user_1", 6, "{\"event\":\"X\"}", 13, "alice", 5, TALAS_IPC_EVENT_PRIVATE},
        got;
    struct talas_ipc_frame f;
    struct talas_buf out = {0};
    size_t used;

    assert_int_equal(talas_ipc_event_encode(&out, &ev), 0);
    /* a frame is whole only with its last byte */
    for (size_t n = 0; n < out.len; n++)
        assert_int_equal(talas_ipc_frame_next(out.data, n, &f, &used), 0);
    assert_int_equal(talas_ipc_frame_next(out.data, out.len, &f, &used), 1);
    assert_int_equal(used, out.len);
    assert_int_equal(f.type, TALAS_IPC_EVENT);
    assert_int_equal(talas_ipc_event_decode(f.payload, f.len, &got), 0);
    assert_int_equal(got.origin_pid, 4242);
    assert_int_equal(got.target, 1);
    assert_memory_equal(got.to, "user_1", 6);
    assert_int_equal(got.json_len, 13);
    assert_memory_equal(got.json, "{\"event\":\"X\"}", 13);
    /* the owner and its privacy cross with the event */
    assert_int_equal(got.owner_len, 5);
    assert_memory_equal(got.owner, "alice", 5);
    assert_int_equal(got.flags, TALAS_IPC_EVENT_PRIVATE);
    /* any other length of the same payload is refused */
    for (size_t n = 0; n < f.len; n++) {
        void *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
        memcpy(copy, f.payload, n);
        assert_int_equal(talas_ipc_event_decode(copy, n, &got), -1);
        free(copy);
    }
    talas_buf_free(&out);

    /* a public event of an owner */
    ev.flags = 0;
    assert_int_equal(talas_ipc_event_encode(&out, &ev), 0);
    assert_int_equal(talas_ipc_frame_next(out.data, out.len, &f, &used), 1);
    assert_int_equal(talas_ipc_event_decode(f.payload, f.len, &got), 0);
    assert_int_equal(got.flags, 0);
    assert_memory_equal(got.owner, "alice", 5);
    talas_buf_free(&out);

    /* too big to encode */
    ev.to_len = TALAS_IPC_MAX_TO + 1;
    assert_int_equal(talas_ipc_event_encode(&out, &ev), -1);
    assert_int_equal(out.len, 0);
    ev.to_len = 6;
    ev.owner_len = TALAS_IPC_MAX_TO + 1;
    assert_int_equal(talas_ipc_event_encode(&out, &ev), -1);
    assert_int_equal(out.len, 0);
    /* private, but nobody's: nobody could receive it */
    ev.owner = NULL;
    ev.owner_len = 0;
    ev.flags = TALAS_IPC_EVENT_PRIVATE;
    assert_int_equal(talas_ipc_event_encode(&out, &ev), -1);
    ev.flags = 0x80; /* a flag that does not exist */
    assert_int_equal(talas_ipc_event_encode(&out, &ev), -1);
    assert_int_equal(out.len, 0);
}

static void test_event_refused(void **state)
{
    struct talas_ipc_event ev = {1, 0, NULL, 0, "{}", 2, NULL, 0, 0}, got;
    struct talas_buf out = {0};
    uint32_t v;

    assert_int_equal(talas_ipc_event_encode(&out, &ev), 0);
    char *p = out.data + TALAS_IPC_HEADER_SIZE;
    size_t len = out.len - TALAS_IPC_HEADER_SIZE;
    assert_int_equal(talas_ipc_event_decode(p, len, &got), 0);
    assert_int_equal(got.owner_len, 0);
    assert_int_equal(got.flags, 0);
    {
        /* a room's event crosses with its room id */
        struct talas_ipc_event room = {1, TALAS_WS_TO_ROOM, "0123456789abcdef01234567", 24, "{}", 2, NULL, 0,
                                       0};
        struct talas_buf b = {0};
        assert_int_equal(talas_ipc_event_encode(&b, &room), 0);
        assert_int_equal(
            talas_ipc_event_decode(b.data + TALAS_IPC_HEADER_SIZE, b.len - TALAS_IPC_HEADER_SIZE, &got), 0);
        assert_int_equal(got.target, TALAS_WS_TO_ROOM);
        assert_memory_equal(got.to, "0123456789abcdef01234567", 24);
        talas_buf_free(&b);
    }
    v = 4; /* no such target */
    memcpy(p + 4, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = TALAS_WS_TO_ROOM; /* a room target without a room */
    memcpy(p + 4, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = 1; /* a user target without a user */
    memcpy(p + 4, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = 0;
    memcpy(p + 4, &v, 4);
    v = TALAS_IPC_EVENT_PRIVATE; /* private without an owner: refused, not delivered to all */
    memcpy(p + 8, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = 2; /* a flag that does not exist */
    memcpy(p + 8, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = 0;
    memcpy(p + 8, &v, 4);
    v = TALAS_IPC_MAX_TO + 1; /* an owner over its limit */
    memcpy(p + 16, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    v = 0;
    memcpy(p + 16, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), 0);
    v = 0xffffffffu; /* a length past the payload */
    memcpy(p + 20, &v, 4);
    assert_int_equal(talas_ipc_event_decode(p, len, &got), -1);
    talas_buf_free(&out);
}

static void test_frame_header(void **state)
{
    unsigned char h[TALAS_IPC_HEADER_SIZE] = {0};
    struct talas_ipc_frame f;
    uint32_t len = TALAS_IPC_MAX_PAYLOAD + 1;
    uint16_t type = TALAS_IPC_EVENT;
    size_t used;

    memcpy(h, &len, 4);
    memcpy(h + 4, &type, 2);
    assert_int_equal(talas_ipc_frame_next(h, sizeof(h), &f, &used), -1);
    len = 0;
    memcpy(h, &len, 4);
    type = 99;
    memcpy(h + 4, &type, 2);
    assert_int_equal(talas_ipc_frame_next(h, sizeof(h), &f, &used), -1);
    type = TALAS_IPC_STATS;
    memcpy(h + 4, &type, 2);
    h[7] = 1; /* the reserved field */
    assert_int_equal(talas_ipc_frame_next(h, sizeof(h), &f, &used), -1);
    h[7] = 0;
    assert_int_equal(talas_ipc_frame_next(h, sizeof(h), &f, &used), 1);
    assert_int_equal(f.len, 0);
}

static void test_stats(void **state)
{
    struct talas_ipc_stats s[2], got[4];
    struct talas_ipc_frame f;
    struct talas_buf out = {0};
    size_t used, count;

    memset(s, 0, sizeof(s));
    s[0].pid = 7;
    s[0].current_connections = 3;
    s[0].total_connections = 1ULL << 40;
    s[0].events_broadcast = 9;
    s[0].open_streams = 2;
    s[0].track_count = 1;
    memcpy(s[0].tracks[0].id, "ABCDEFGHIJKLMNOP", 17);
    s[0].tracks[0].listeners = 2;
    s[1].pid = 8;

    talas_ipc_stats_encode(&out, &s[0]);
    assert_int_equal(talas_ipc_frame_next(out.data, out.len, &f, &used), 1);
    assert_int_equal(f.type, TALAS_IPC_STATS);
    assert_int_equal(talas_ipc_stats_decode(f.payload, f.len, &got[0]), 0);
    assert_int_equal(got[0].total_connections, 1ULL << 40);
    assert_string_equal(got[0].tracks[0].id, "ABCDEFGHIJKLMNOP");
    assert_int_equal(talas_ipc_stats_decode(f.payload, f.len - 1, &got[0]), -1);
    /* a track id with a NUL in it */
    ((char *)f.payload)[4 + 4 + 32 + 4 + 4 + 3] = '\0';
    assert_int_equal(talas_ipc_stats_decode(f.payload, f.len, &got[0]), -1);
    talas_buf_free(&out);

    talas_ipc_stats_all_encode(&out, s, 2);
    assert_int_equal(talas_ipc_frame_next(out.data, out.len, &f, &used), 1);
    assert_int_equal(talas_ipc_stats_all_decode(f.payload, f.len, got, 4, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(got[1].pid, 8);
    assert_int_equal(got[0].tracks[0].listeners, 2);
    /* more entries than the caller has room for */
    assert_int_equal(talas_ipc_stats_all_decode(f.payload, f.len, got, 1, &count), -1);
    for (size_t n = 0; n < f.len; n++)
        assert_int_equal(talas_ipc_stats_all_decode(f.payload, n, got, 4, &count), -1);
    talas_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_round_trip),
        cmocka_unit_test(test_event_refused),
        cmocka_unit_test(test_frame_header),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
