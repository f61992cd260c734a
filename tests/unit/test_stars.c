/*
 * test_stars.c - the stars and ratings of src/store/stars.c: the record's
 * bytes and damaged records refused, star/unstar/rate/list on a temporary
 * LMDB environment (first star time kept, a record with neither removed,
 * users kept apart, bad ids and ratings refused), usage, purge, and the
 * users listed once each.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "store/stars.h"
#include "store/storage.h"
#define STORE_FIXTURE_NAME "stars"
#include "store_fixture.h"

static void test_record_bytes(void **state)
{
    static const unsigned char want[] = {1, 4, 0, 0, 0x39, 0x30, 0, 0, 0, 0, 0, 0};
    struct talas_star s = {NULL, 12345, 4}, back;
    struct talas_buf b = {0};
    unsigned char bad[sizeof(want)];

    (void)state;
    talas_star_encode(&s, &b);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(talas_star_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.starred_ms, 12345);
    assert_int_equal(back.rating, 4);
    memcpy(bad, want, sizeof(bad));
    bad[1] = 6; /* a rating past 5 */
    assert_int_equal(talas_star_decode(bad, sizeof(bad), &back), -1);
    memcpy(bad, want, sizeof(bad));
    bad[1] = 0;
    memset(bad + 4, 0, 8); /* neither star nor rating */
    assert_int_equal(talas_star_decode(bad, sizeof(bad), &back), -1);
    assert_int_equal(talas_star_decode(want, sizeof(want) - 1, &back), -1);
    talas_buf_free(&b);
}

struct seen {
    char items[8][32];
    uint64_t when[8];
    unsigned rating[8];
    size_t n;
};

static int see(const struct talas_star *s, void *arg)
{
    struct seen *v = arg;

    snprintf(v->items[v->n], sizeof(v->items[v->n]), "%s", s->item);
    v->when[v->n] = s->starred_ms;
    v->rating[v->n++] = s->rating;
    return 0;
}

static void list(struct talas_storage *st, const char *user, struct seen *v)
{
    MDB_txn *txn;

    memset(v, 0, sizeof(*v));
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_stars_list(st, txn, user, see, v), 0);
    mdb_txn_abort(txn);
}

static void test_star_rate_list(void **state)
{
    struct store_fixture *f = *state;
    const char *ab[] = {"song-b", "song-a"}, *a[] = {"song-a"}, *empty[] = {""};
    uint64_t count, bytes, removed;
    struct seen v;
    MDB_txn *txn;
    int users = 0;

    assert_int_equal(talas_stars_set(f->st, "alice", ab, 2, 1, 1000, 0, NULL), 0);
    assert_int_equal(talas_stars_set(f->st, "alice", a, 1, 1, 2000, 0, NULL), 0); /* keeps 1000 */
    assert_int_equal(talas_stars_set(f->st, "alicia", a, 1, 1, 3000, 0, NULL), 0);
    list(f->st, "alice", &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.items[0], "song-a");
    assert_int_equal(v.when[0], 1000);
    assert_string_equal(v.items[1], "song-b");
    /* a rating on an unstarred item; unstar keeps a rated record */
    assert_int_equal(talas_stars_rate(f->st, "alice", "song-c", 3, 0, NULL), 0);
    assert_int_equal(talas_stars_rate(f->st, "alice", "song-a", 5, 0, NULL), 0);
    assert_int_equal(talas_stars_set(f->st, "alice", a, 1, 0, 4000, 0, NULL), 0);
    assert_int_equal(talas_stars_set(f->st, "alice", ab, 1, 0, 4000, 0, NULL), 0);
    list(f->st, "alice", &v);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.items[0], "song-a");
    assert_int_equal(v.when[0], 0);
    assert_int_equal(v.rating[0], 5);
    assert_string_equal(v.items[1], "song-c");
    /* rating 0 on an unstarred item removes its record */
    assert_int_equal(talas_stars_rate(f->st, "alice", "song-c", 0, 0, NULL), 0);
    list(f->st, "alice", &v);
    assert_int_equal(v.n, 1);
    /* refusals */
    assert_int_equal(talas_stars_rate(f->st, "alice", "song-a", 6, 0, NULL), EINVAL);
    assert_int_equal(talas_stars_set(f->st, "alice", empty, 1, 1, 1, 0, NULL), EINVAL);
    assert_int_equal(talas_stars_set(f->st, "", a, 1, 1, 1, 0, NULL), EINVAL);
    /* the other user, untouched; users listed once each */
    list(f->st, "alicia", &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(talas_storage_read_begin(f->st, &txn), 0);
    assert_int_equal(talas_stars_usage(f->st, txn, "alice", &count, &bytes), 0);
    assert_int_equal(count, 1);
    assert_true(bytes > 0);
    assert_int_equal(talas_stars_foreach_user(f->st, txn, store_fixture_count_user, &users), 0);
    assert_int_equal(users, 2);
    mdb_txn_abort(txn);
    assert_int_equal(talas_stars_purge(f->st, "alice", &removed), 0);
    assert_int_equal(removed, 1);
    list(f->st, "alice", &v);
    assert_int_equal(v.n, 0);
    list(f->st, "alicia", &v);
    assert_int_equal(v.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_bytes),
        cmocka_unit_test_setup_teardown(test_star_rate_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
