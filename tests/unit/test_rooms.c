/*
 * test_rooms.c - listening rooms in src/store/rooms.c: the record's round
 * trip and damaged records refused; on a temporary LMDB environment:
 * create (rooms.max_per_user), join (rooms.max_members), leave with the
 * host handed over, queue add/remove/move (rooms.max_queue), play and
 * skip, members dropped as stale, a room deleted once idle.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "store/rooms.h"
#include "store/storage.h"
#define STORE_FIXTURE_NAME "rooms"
#include "store_fixture.h"

static const struct talas_room_limits lim = {
    .idle_timeout_ms = 600000,
    .max_members = 3,
    .max_queue = 4,
    .max_per_user = 2,
};

#define T0 1000000000ull

static void new_room(struct talas_room *r, const char *host)
{
    int joined;

    memset(r, 0, sizeof(*r));
    talas_room_id_make(r->id);
    strcpy(r->name, "Friday <b>mix</b>");
    r->mode = TALAS_ROOM_HOST;
    strcpy(r->host, host);
    r->created_ms = T0;
    assert_int_equal(talas_room_join(r, &lim, host, 0, T0, &joined, NULL), 0);
    assert_int_equal(joined, 1);
}

static struct talas_room_entry entry(const char *track, uint64_t duration)
{
    struct talas_room_entry e;

    memset(&e, 0, sizeof(e));
    strcpy(e.track_id, track);
    e.title = xstrdup("Title");
    e.artist = xstrdup("Artist");
    e.duration_ms = duration;
    return e;
}

static void test_record(void **state)
{
    struct talas_room r, back;
    struct talas_room_entry add[2] = {entry("AAAAAAAAAAAAAAAA", 1000), entry("BBBBBBBBBBBBBBBB", 2000)};
    struct talas_buf b = {0};
    int joined;

    (void)state;
    new_room(&r, "alice");
    assert_int_equal(talas_room_join(&r, &lim, "bob", 1, T0 + 5, &joined, NULL), 0);
    assert_int_equal(talas_room_queue_insert(&r, &lim, 0, add, 2, NULL), 0);
    assert_int_equal(talas_room_play(&r, r.queue[1].entry_id, 1, 500, T0 + 10), 0);
    talas_room_encode(&r, &b);
    assert_int_equal(talas_room_decode(r.id, strlen(r.id), b.data, b.len, &back), 0);
    assert_string_equal(back.name, r.name);
    assert_string_equal(back.host, "alice");
    assert_int_equal(back.mode, TALAS_ROOM_HOST);
    assert_int_equal(back.member_count, 2);
    assert_string_equal(back.members[1].user_id, "bob");
    assert_int_equal(back.members[1].connections, 1);
    assert_int_equal(back.queue_count, 2);
    assert_string_equal(back.queue[1].track_id, "BBBBBBBBBBBBBBBB");
    assert_string_equal(back.queue[1].title, "Title");
    assert_memory_equal(&back.playback, &r.playback, sizeof(r.playback));
    talas_room_free(&back);
    /* cut short, a byte too many, another layout, a bad id length */
    assert_int_equal(talas_room_decode(r.id, 24, b.data, b.len - 1, &back), TALAS_ROOM_DAMAGED);
    talas_room_free(&back);
    talas_buf_append(&b, "", 1);
    assert_int_equal(talas_room_decode(r.id, 24, b.data, b.len, &back), TALAS_ROOM_DAMAGED);
    talas_room_free(&back);
    b.len--;
    b.data[0] = 2;
    assert_int_equal(talas_room_decode(r.id, 24, b.data, b.len, &back), TALAS_ROOM_DAMAGED);
    talas_room_free(&back);
    b.data[0] = 1;
    assert_int_equal(talas_room_decode(r.id, 23, b.data, b.len, &back), TALAS_ROOM_DAMAGED);
    talas_room_free(&back);
    talas_buf_free(&b);
    talas_room_free(&r);
    assert_true(talas_room_id_valid("0123456789abcdef01234567"));
    assert_false(talas_room_id_valid("0123456789ABCDEF01234567"));
    assert_false(talas_room_id_valid("0123456789abcdef0123456"));
}

static void test_create_quota(void **state)
{
    struct store_fixture *f = *state;
    struct talas_quota_refusal refusal;
    struct talas_room r;

    for (int i = 0; i < 2; i++) {
        new_room(&r, "alice");
        assert_int_equal(talas_room_create(f->st, &lim, &r, T0, &refusal), 0);
        talas_room_free(&r);
    }
    new_room(&r, "alice");
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, &refusal), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(refusal.limit, "rooms.max_per_user");
    assert_int_equal(refusal.max, 2);
    talas_room_free(&r);
    /* another user has a quota of their own */
    new_room(&r, "bob");
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, &refusal), 0);
    talas_room_free(&r);
    /* rooms gone idle no longer count: alice's members went stale at
     * T0 + 30 s, the rooms expire 600 s later */
    new_room(&r, "alice");
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0 + 630001, &refusal), 0);
    talas_room_free(&r);
}

struct join_arg {
    const char *user;
    int joined;
    struct talas_quota_refusal refusal;
};

static int do_join(struct talas_room *r, uint64_t now, void *arg)
{
    struct join_arg *a = arg;
    return talas_room_join(r, &lim, a->user, 1, now, &a->joined, &a->refusal);
}

static int do_leave(struct talas_room *r, uint64_t now, void *arg)
{
    int rc = talas_room_leave(r, arg, 0, now);
    return rc < 0 ? rc : 0;
}

static void join(struct store_fixture *f, const char *id, const char *user, uint64_t now, int want)
{
    struct join_arg a = {.user = user};
    struct talas_room r;

    assert_int_equal(talas_room_update(f->st, &lim, id, user, now, do_join, &a, &r, NULL, NULL), want);
    talas_room_free(&r);
}

static void test_join_leave(void **state)
{
    struct store_fixture *f = *state;
    struct talas_room r;
    char id[TALAS_ROOM_ID_LEN + 1];
    unsigned norm;

    new_room(&r, "alice");
    strcpy(id, r.id);
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, NULL), 0);
    talas_room_free(&r);
    join(f, id, "bob", T0 + 1000, 0);
    join(f, id, "carol", T0 + 2000, 0);
    join(f, id, "dave", T0 + 3000, TALAS_QUOTA_EXCEEDED);
    /* the host leaves: the longest-present member (bob) hosts */
    assert_int_equal(
        talas_room_update(f->st, &lim, id, "alice", T0 + 4000, do_leave, "alice", &r, &norm, NULL), 0);
    assert_string_equal(r.host, "bob");
    assert_int_equal(r.member_count, 2);
    assert_string_equal(r.members[0].user_id, "bob");
    talas_room_free(&r);
    /* leaving twice: not a member */
    assert_int_equal(
        talas_room_update(f->st, &lim, id, "alice", T0 + 4500, do_leave, "alice", &r, NULL, NULL),
        TALAS_ROOM_FORBIDDEN);
    talas_room_free(&r);
    /* alice rejoins: last in join order, not host */
    join(f, id, "alice", T0 + 5000, 0);
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0 + 5000, NULL, NULL, &r, NULL, NULL), 0);
    assert_string_equal(r.members[2].user_id, "alice");
    assert_string_equal(r.host, "bob");
    talas_room_free(&r);
    /* unknown rooms */
    assert_int_equal(
        talas_room_update(f->st, &lim, "ffffffffffffffffffffffff", NULL, T0, NULL, NULL, &r, NULL, NULL),
        MDB_NOTFOUND);
    talas_room_free(&r);
    assert_int_equal(talas_room_update(f->st, &lim, "../x", NULL, T0, NULL, NULL, &r, NULL, NULL),
                     MDB_NOTFOUND);
    talas_room_free(&r);
}

static void test_connections(void **state)
{
    struct talas_room r;
    int joined;

    (void)state;
    new_room(&r, "alice");
    assert_int_equal(talas_room_join(&r, &lim, "bob", 1, T0, &joined, NULL), 0);
    assert_int_equal(talas_room_join(&r, &lim, "bob", 1, T0, &joined, NULL), 0);
    assert_int_equal(joined, 0);
    /* a closed connection of two: bob stays; the last: bob leaves */
    assert_int_equal(talas_room_leave(&r, "bob", 1, T0), 0);
    assert_int_equal(r.member_count, 2);
    assert_int_equal(talas_room_leave(&r, "bob", 1, T0), 1);
    assert_int_equal(r.member_count, 1);
    talas_room_free(&r);
}

struct queue_arg {
    int op; /* 0 add, 1 remove, 2 move, 3 play entry, 4 skip */
    size_t position;
    const char *entry;
    struct talas_quota_refusal refusal;
};

static int do_queue(struct talas_room *r, uint64_t now, void *arg)
{
    struct queue_arg *a = arg;
    struct talas_room_entry add[2];
    int rc;

    switch (a->op) {
    case 0:
        add[0] = entry("AAAAAAAAAAAAAAAA", 10000);
        add[1] = entry("BBBBBBBBBBBBBBBB", 20000);
        rc = talas_room_queue_insert(r, &lim, a->position, add, 2, &a->refusal);
        for (int i = 0; i < 2; i++) {
            free(add[i].title);
            free(add[i].artist);
        }
        return rc;
    case 1:
        return talas_room_queue_remove(r, a->entry, now);
    case 2:
        return talas_room_queue_move(r, a->entry, a->position);
    case 3:
        return talas_room_play(r, a->entry, 0, 0, now);
    default:
        talas_room_skip(r, now);
        return 0;
    }
}

static void test_queue(void **state)
{
    struct store_fixture *f = *state;
    struct queue_arg a = {0};
    struct talas_room r;
    char id[TALAS_ROOM_ID_LEN + 1], e[4][TALAS_ROOM_ENTRY_ID_LEN + 1];

    new_room(&r, "alice");
    strcpy(id, r.id);
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, NULL), 0);
    talas_room_free(&r);
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    talas_room_free(&r);
    a.position = 1; /* A B then A A B B */
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    assert_int_equal(r.queue_count, 4);
    assert_string_equal(r.queue[1].track_id, "AAAAAAAAAAAAAAAA");
    assert_string_equal(r.queue[2].track_id, "BBBBBBBBBBBBBBBB");
    for (int i = 0; i < 4; i++)
        strcpy(e[i], r.queue[i].entry_id);
    assert_string_not_equal(e[0], e[1]);
    talas_room_free(&r);
    /* a fifth and sixth: over rooms.max_queue (4), nothing added */
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL),
                     TALAS_QUOTA_EXCEEDED);
    assert_string_equal(a.refusal.limit, "rooms.max_queue");
    assert_int_equal(r.queue_count, 4);
    talas_room_free(&r);
    /* move the last to the front: e3 e0 e1 e2 */
    a.op = 2;
    a.entry = e[3];
    a.position = 0;
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    assert_string_equal(r.queue[0].entry_id, e[3]);
    assert_string_equal(r.queue[3].entry_id, e[2]);
    talas_room_free(&r);
    /* and back past the end */
    a.position = 99;
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    assert_string_equal(r.queue[3].entry_id, e[3]);
    talas_room_free(&r);
    /* play e1 (A, 10 s), then remove it: the room moves to e2 */
    a.op = 3;
    a.entry = e[1];
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    assert_string_equal(r.playback.entry_id, e[1]);
    assert_int_equal(r.playback.playing, 1);
    talas_room_free(&r);
    /* 12 s later a reader sees the room 2 s into e2, and stores it */
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0 + 12000, NULL, NULL, &r, NULL, NULL), 0);
    assert_string_equal(r.playback.entry_id, e[2]);
    assert_int_equal(r.playback.at_server_ms, T0 + 10000);
    talas_room_free(&r);
    a.op = 1;
    a.entry = e[2];
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0 + 13000, do_queue, &a, &r, NULL, NULL),
                     0);
    assert_string_equal(r.playback.entry_id, e[3]);
    assert_int_equal(r.playback.position_ms, 0);
    assert_int_equal(r.queue_count, 3);
    talas_room_free(&r);
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0 + 13000, do_queue, &a, &r, NULL, NULL),
                     TALAS_ROOM_INVALID);
    talas_room_free(&r);
    /* skip past the last: stopped at its end */
    a.op = 4;
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0 + 14000, do_queue, &a, &r, NULL, NULL),
                     0);
    assert_int_equal(r.playback.playing, 0);
    assert_string_equal(r.playback.entry_id, e[3]);
    assert_int_equal(r.playback.position_ms, 20000);
    talas_room_free(&r);
}

/* A room is a user record: its growth counts against storage.user_data_max
 * like a playlist's; what does not grow it (playback, leaving) is never
 * refused, so a full budget does not stop a room. */
static void test_user_data_budget(void **state)
{
    struct store_fixture *f = *state;
    struct talas_room_limits full = lim;
    struct talas_quota_refusal refusal = {0};
    struct queue_arg a = {0};
    struct talas_room r;
    char id[TALAS_ROOM_ID_LEN + 1];

    new_room(&r, "alice");
    strcpy(id, r.id);
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, NULL), 0);
    talas_room_free(&r);
    assert_int_equal(talas_room_update(f->st, &lim, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    talas_room_free(&r);
    /* the rooms' database now holds pages: a budget of one byte is spent */
    full.user_data_max = 1;
    new_room(&r, "bob");
    assert_int_equal(talas_room_create(f->st, &full, &r, T0, &refusal), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(refusal.limit, "storage.user_data_max");
    assert_int_equal(refusal.max, 1);
    talas_room_free(&r);
    memset(&refusal, 0, sizeof(refusal));
    assert_int_equal(talas_room_update(f->st, &full, id, "alice", T0, do_queue, &a, &r, NULL, &refusal),
                     TALAS_QUOTA_EXCEEDED);
    assert_string_equal(refusal.limit, "storage.user_data_max");
    talas_room_free(&r);
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0, NULL, NULL, &r, NULL, NULL), 0);
    assert_int_equal(r.queue_count, 2);
    talas_room_free(&r);
    /* playing and skipping do not grow it */
    a.op = 3;
    assert_int_equal(talas_room_update(f->st, &full, id, "alice", T0, do_queue, &a, &r, NULL, NULL), 0);
    talas_room_free(&r);
    a.op = 4;
    assert_int_equal(talas_room_update(f->st, &full, id, "alice", T0 + 1000, do_queue, &a, &r, NULL, NULL),
                     0);
    assert_true(strcmp(r.playback.entry_id, "") != 0);
    talas_room_free(&r);
}

static void test_stale_and_idle(void **state)
{
    struct store_fixture *f = *state;
    struct talas_room r;
    char id[TALAS_ROOM_ID_LEN + 1];
    size_t deleted;
    unsigned norm;

    new_room(&r, "alice");
    strcpy(id, r.id);
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, NULL), 0);
    talas_room_free(&r);
    join(f, id, "bob", T0 + 20000, 0);
    /* at T0 + 35 s alice (silent since T0) is stale: dropped, bob hosts */
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0 + 35000, NULL, NULL, &r, &norm, NULL), 0);
    assert_true(norm & TALAS_ROOM_NORM_MEMBERS);
    assert_true(norm & TALAS_ROOM_NORM_HOST);
    assert_int_equal(r.dropped_count, 1);
    assert_string_equal(r.dropped[0], "alice");
    assert_int_equal(r.member_count, 1);
    assert_string_equal(r.host, "bob");
    talas_room_free(&r);
    /* the change was stored: read again, nothing more to do */
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0 + 35000, NULL, NULL, &r, &norm, NULL), 0);
    assert_int_equal(norm, 0);
    talas_room_free(&r);
    /* bob's command keeps him present */
    assert_int_equal(talas_room_update(f->st, &lim, id, "bob", T0 + 45000, NULL, NULL, &r, &norm, NULL), 0);
    assert_int_equal(r.member_count, 1);
    talas_room_free(&r);
    /* bob goes silent at T0 + 45 s: the room is empty from T0 + 75 s, and
     * lives rooms.idle_timeout (600 s) more */
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0 + 675000 - 1, NULL, NULL, &r, NULL, NULL),
                     0);
    assert_int_equal(r.member_count, 0);
    talas_room_free(&r);
    assert_int_equal(talas_room_sweep(f->st, &lim, T0 + 675000 - 1, 100, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0 + 675000, NULL, NULL, &r, NULL, NULL),
                     MDB_NOTFOUND);
    talas_room_free(&r);
    /* the sweep deletes the idle rooms nobody reads */
    new_room(&r, "carol");
    strcpy(id, r.id);
    assert_int_equal(talas_room_create(f->st, &lim, &r, T0, NULL), 0);
    talas_room_free(&r);
    assert_int_equal(talas_room_sweep(f->st, &lim, T0 + 630000, 100, &deleted), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(talas_room_update(f->st, &lim, id, NULL, T0, NULL, NULL, &r, NULL, NULL), MDB_NOTFOUND);
    talas_room_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test_setup_teardown(test_create_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_leave, setup, teardown),
        cmocka_unit_test(test_connections),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_data_budget, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
