/*
 * test_play_queue.c - the saved play queues of src/store/play_queue.c: the
 * record's bytes and damaged records refused (a lying count, a truncated
 * record, an empty queue, a wrong version), save / get / replace / clear
 * on a temporary LMDB environment (order kept, users kept apart), the
 * limits refused (too many songs, too long ids and client names), the
 * user-data quota, usage, purge, and the users listed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "store/play_queue.h"
#include "store/storage.h"
#define STORE_FIXTURE_NAME "play_queue"
#include "store_fixture.h"

static void test_record_bytes(void **state)
{
    static const unsigned char want[] = {
        1,    0,    0, 0,             /* version, reserved */
        2,    0,    0, 0,             /* count */
        0x39, 0x30, 0, 0, 0, 0, 0, 0, /* position 12345 */
        0xe8, 0x03, 0, 0, 0, 0, 0, 0, /* changed 1000 */
    };
    const char *tracks[] = {"t1", "t2"};
    struct talas_play_queue q = {tracks, 2, "t2", 12345, 1000, "app"}, back;
    struct talas_buf b = {0};
    unsigned char *bad;

    (void)state;
    talas_play_queue_encode(&q, &b);
    assert_true(b.len > sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(talas_play_queue_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.count, 2);
    assert_string_equal(back.tracks[0], "t1");
    assert_string_equal(back.tracks[1], "t2");
    assert_string_equal(back.current, "t2");
    assert_string_equal(back.changed_by, "app");
    assert_int_equal(back.position_ms, 12345);
    assert_int_equal(back.changed_ms, 1000);
    talas_play_queue_release(&back);

    bad = xmalloc(b.len);
    memcpy(bad, b.data, b.len);
    bad[0] = 2; /* an unknown version */
    assert_int_equal(talas_play_queue_decode(bad, b.len, &back), -1);
    assert_null(back.tracks);
    memcpy(bad, b.data, b.len);
    bad[4] = 3; /* a count past the entries */
    assert_int_equal(talas_play_queue_decode(bad, b.len, &back), -1);
    memcpy(bad, b.data, b.len);
    bad[4] = 0xff, bad[5] = 0xff, bad[6] = 0xff, bad[7] = 0xff; /* a count that lies */
    assert_int_equal(talas_play_queue_decode(bad, b.len, &back), -1);
    memcpy(bad, b.data, b.len);
    bad[4] = 0; /* an empty queue is never stored */
    assert_int_equal(talas_play_queue_decode(bad, b.len, &back), -1);
    assert_int_equal(talas_play_queue_decode(b.data, b.len - 1, &back), -1);
    free(bad);
    talas_buf_free(&b);
}

static void get(struct talas_storage *st, const char *user, int want_rc, size_t want_count, char first[32])
{
    struct talas_play_queue q;
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_play_queue_get(st, txn, user, &q), want_rc);
    assert_int_equal(q.count, want_count);
    if (first != NULL && want_count > 0)
        snprintf(first, 32, "%s", q.tracks[0]);
    talas_play_queue_release(&q);
    mdb_txn_abort(txn);
}

static void test_save_get(void **state)
{
    struct store_fixture *f = *state;
    const char *tracks[] = {"a", "b", "c"};
    struct talas_play_queue q = {tracks, 3, "b", 5000, 42, "DSub"}, got;
    struct talas_quota_refusal refusal = {NULL, 0};
    const char **many = xcalloc(TALAS_PLAY_QUEUE_MAX + 1, sizeof(*many));
    char long_id[TALAS_PLAY_QUEUE_ID_MAX + 2], long_client[TALAS_PLAY_QUEUE_CLIENT_MAX + 2], first[32];
    uint64_t count, bytes, removed;
    int users = 0;
    MDB_txn *txn;

    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), 0);
    assert_int_equal(talas_storage_read_begin(f->st, &txn), 0);
    assert_int_equal(talas_play_queue_get(f->st, txn, "alice", &got), 0);
    assert_int_equal(got.count, 3);
    assert_string_equal(got.tracks[2], "c");
    assert_string_equal(got.current, "b");
    assert_int_equal(got.position_ms, 5000);
    assert_string_equal(got.changed_by, "DSub");
    talas_play_queue_release(&got);
    mdb_txn_abort(txn);
    get(f->st, "alicia", MDB_NOTFOUND, 0, NULL); /* users kept apart */

    /* a save replaces, in the new order */
    q.tracks = (const char *[]){"c", "a"};
    q.count = 2;
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), 0);
    get(f->st, "alice", 0, 2, first);
    assert_string_equal(first, "c");

    /* the limits: nothing saved */
    for (size_t i = 0; i <= TALAS_PLAY_QUEUE_MAX; i++)
        many[i] = "x";
    q.tracks = many;
    q.count = TALAS_PLAY_QUEUE_MAX + 1;
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), EINVAL);
    q.count = TALAS_PLAY_QUEUE_MAX;
    assert_int_equal(talas_play_queue_save(f->st, "bob", &q, 0, &refusal), 0);
    get(f->st, "bob", 0, TALAS_PLAY_QUEUE_MAX, NULL);
    memset(long_id, 'i', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    q.tracks = (const char *[]){long_id};
    q.count = 1;
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), EINVAL);
    q.tracks = (const char *[]){""};
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), EINVAL);
    memset(long_client, 'c', sizeof(long_client) - 1);
    long_client[sizeof(long_client) - 1] = '\0';
    q.tracks = tracks;
    q.changed_by = long_client;
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), EINVAL);
    q.changed_by = "DSub";
    assert_int_equal(talas_play_queue_save(f->st, long_id, &q, 0, &refusal), EINVAL);
    get(f->st, "alice", 0, 2, first);
    assert_string_equal(first, "c");

    /* the quota holds a new record only */
    assert_int_equal(talas_play_queue_save(f->st, "carol", &q, 1, &refusal), TALAS_QUOTA_EXCEEDED);
    get(f->st, "carol", MDB_NOTFOUND, 0, NULL);

    assert_int_equal(talas_storage_read_begin(f->st, &txn), 0);
    assert_int_equal(talas_play_queue_usage(f->st, txn, "alice", &count, &bytes), 0);
    assert_int_equal(count, 1);
    assert_true(bytes > 0);
    assert_int_equal(talas_play_queue_foreach_user(f->st, txn, store_fixture_count_user, &users), 0);
    assert_int_equal(users, 2);
    mdb_txn_abort(txn);

    /* an empty save clears */
    q.count = 0;
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), 0);
    get(f->st, "alice", MDB_NOTFOUND, 0, NULL);
    assert_int_equal(talas_play_queue_save(f->st, "alice", &q, 0, &refusal), 0);
    assert_int_equal(talas_play_queue_purge(f->st, "bob", &removed), 0);
    assert_int_equal(removed, 1);
    get(f->st, "bob", MDB_NOTFOUND, 0, NULL);
    free(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_bytes),
        cmocka_unit_test_setup_teardown(test_save_get, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
