/*
 * test_users.c - the user settings of src/store/users.c: the record's
 * bytes, damaged and unknown records read as the defaults (private),
 * get/put/purge/usage on a temporary LMDB environment, defaults stored as
 * no record at all, and the user-data budget (storage.user_data_max)
 * refusing a new record but never a withdrawal of consent.
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
#include "store/quota.h"
#include "store/storage.h"
#include "store/users.h"
#define STORE_FIXTURE_NAME "users"
#include "store_fixture.h"

static int get(struct talas_storage *st, const char *user, struct talas_user_settings *s)
{
    MDB_txn *txn;
    int rc;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    rc = talas_user_settings_get(st, txn, user, s);
    mdb_txn_abort(txn);
    return rc;
}

static void usage(struct talas_storage *st, const char *user, uint64_t *count, uint64_t *bytes)
{
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_user_settings_usage(st, txn, user, count, bytes), 0);
    mdb_txn_abort(txn);
}

/* Writes RAW (LEN bytes) as USER's record, bypassing the codec. */
static void put_raw(struct talas_storage *st, const char *user, const void *raw, size_t len)
{
    MDB_val k = {strlen(user), (void *)user}, v = {len, (void *)raw};
    MDB_txn *txn;

    assert_int_equal(talas_storage_write_begin(st, &txn), 0);
    assert_int_equal(mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_USER_SETTINGS), &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* The record's layout, byte for byte, and a round trip. */
static void test_record_bytes(void **state)
{
    struct talas_user_settings s = {1, 0x0102030405060708ull}, back;
    static const unsigned char want[12] = {1, 1, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
    struct talas_buf b = {0};

    (void)state;
    talas_user_settings_encode(&s, &b);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_int_equal(talas_user_settings_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.share_listening, 1);
    assert_int_equal(back.updated_ms, s.updated_ms);

    s.share_listening = 0;
    b.len = 0;
    talas_user_settings_encode(&s, &b);
    assert_int_equal(((unsigned char *)b.data)[1], 0);
    assert_int_equal(talas_user_settings_decode(b.data, b.len, &back), 0);
    assert_int_equal(back.share_listening, 0);
    talas_buf_free(&b);
}

/* Every damaged record reads as the defaults: listening stays private. */
static void test_damaged_records_are_private(void **state)
{
    unsigned char rec[13] = {1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    struct talas_user_settings s;

    (void)state;
    assert_int_equal(talas_user_settings_decode(rec, 12, &s), 0);
    assert_int_equal(s.share_listening, 1);
    /* every shorter length, and a trailing byte */
    for (size_t n = 0; n < 12; n++) {
        assert_int_equal(talas_user_settings_decode(rec, n, &s), -1);
        assert_int_equal(s.share_listening, 0);
    }
    assert_int_equal(talas_user_settings_decode(rec, 13, &s), -1);
    assert_int_equal(s.share_listening, 0);
    rec[0] = 2; /* a version this build does not know */
    assert_int_equal(talas_user_settings_decode(rec, 12, &s), -1);
    assert_int_equal(s.share_listening, 0);
    rec[0] = 1;
    rec[1] = 3; /* a flag this version does not define */
    assert_int_equal(talas_user_settings_decode(rec, 12, &s), -1);
    assert_int_equal(s.share_listening, 0);
    rec[1] = 1;
    rec[2] = 1; /* the reserved field */
    assert_int_equal(talas_user_settings_decode(rec, 12, &s), -1);
    assert_int_equal(s.share_listening, 0);
}

static void test_defaults_and_round_trip(void **state)
{
    struct store_fixture *f = *state;
    struct talas_user_settings s = {1, 1234}, got;
    uint64_t count, bytes;

    /* nobody shares until they say so */
    assert_int_equal(get(f->st, "alice", &got), 0);
    assert_int_equal(got.share_listening, 0);
    assert_int_equal(got.updated_ms, 0);
    assert_int_equal(talas_user_shares_listening(f->st, "alice"), 0);
    assert_int_equal(talas_user_shares_listening(f->st, NULL), 0);
    assert_int_equal(talas_user_shares_listening(f->st, ""), 0);
    usage(f->st, "alice", &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(bytes, 0);

    assert_int_equal(talas_user_settings_put(f->st, "alice", &s, 0, NULL), 0);
    assert_int_equal(get(f->st, "alice", &got), 0);
    assert_int_equal(got.share_listening, 1);
    assert_int_equal(got.updated_ms, 1234);
    assert_int_equal(talas_user_shares_listening(f->st, "alice"), 1);
    /* one user's setting is nobody else's */
    assert_int_equal(talas_user_shares_listening(f->st, "bob"), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "alic"), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "alice2"), 0);
    usage(f->st, "alice", &count, &bytes);
    assert_int_equal(count, 1);
    assert_int_equal(bytes, strlen("alice") + 12);

    /* back to the defaults: no record at all */
    s.share_listening = 0;
    s.updated_ms = 5678;
    assert_int_equal(talas_user_settings_put(f->st, "alice", &s, 0, NULL), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "alice"), 0);
    usage(f->st, "alice", &count, &bytes);
    assert_int_equal(count, 0);
    /* and again, with nothing to delete */
    assert_int_equal(talas_user_settings_put(f->st, "alice", &s, 0, NULL), 0);
}

static void test_damaged_record_in_the_store(void **state)
{
    struct store_fixture *f = *state;
    static const unsigned char junk[5] = {1, 1, 0, 0, 9};
    struct talas_user_settings got;

    put_raw(f->st, "mallory", junk, sizeof(junk));
    assert_int_equal(get(f->st, "mallory", &got), -1);
    assert_int_equal(got.share_listening, 0);
    assert_int_equal(talas_user_shares_listening(f->st, "mallory"), 0);
    /* a purge clears it */
    assert_int_equal(talas_user_settings_purge(f->st, "mallory"), 0);
    assert_int_equal(get(f->st, "mallory", &got), 0);
}

static void test_purge(void **state)
{
    struct store_fixture *f = *state;
    struct talas_user_settings s = {1, 1};
    uint64_t count, bytes;

    assert_int_equal(talas_user_settings_put(f->st, "u1", &s, 0, NULL), 0);
    assert_int_equal(talas_user_settings_put(f->st, "u2", &s, 0, NULL), 0);
    assert_int_equal(talas_user_settings_purge(f->st, "u1"), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "u1"), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "u2"), 1);
    usage(f->st, "u1", &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(bytes, 0);
    /* nothing to purge is not an error */
    assert_int_equal(talas_user_settings_purge(f->st, "u1"), 0);
    assert_int_equal(talas_user_settings_purge(f->st, "never"), 0);
}

/* The user-data budget refuses a new record, not a rewrite, and never the
 * return to the defaults (withdrawing consent). */
static void test_budget(void **state)
{
    struct store_fixture *f = *state;
    struct talas_quota_refusal r = {0};
    struct talas_user_settings on = {1, 1}, off = {0, 2};
    uint64_t bytes;
    MDB_txn *txn;
    char user[32];

    assert_true(talas_quota_is_user_data(TALAS_DBI_USER_SETTINGS));
    /* a user-data budget that is already full */
    for (int i = 0; i < 300; i++) {
        snprintf(user, sizeof(user), "user-%04d", i);
        assert_int_equal(talas_user_settings_put(f->st, user, &on, 0, NULL), 0);
    }
    assert_int_equal(talas_storage_read_begin(f->st, &txn), 0);
    assert_int_equal(talas_quota_user_data_bytes(f->st, txn, &bytes), 0);
    mdb_txn_abort(txn);
    assert_true(bytes > 0);

    assert_int_equal(talas_user_settings_put(f->st, "newcomer", &on, bytes, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.limit, "storage.user_data_max");
    assert_int_equal(r.max, bytes);
    assert_int_equal(talas_user_shares_listening(f->st, "newcomer"), 0);
    /* room left: the same write passes */
    assert_int_equal(talas_user_settings_put(f->st, "newcomer", &on, bytes + 64 * 1024, &r), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "newcomer"), 1);

    /* an existing record is rewritten, and consent withdrawn, whatever the budget */
    on.updated_ms = 99;
    assert_int_equal(talas_user_settings_put(f->st, "user-0007", &on, 1, &r), 0);
    assert_int_equal(talas_user_settings_put(f->st, "user-0008", &off, 1, &r), 0);
    assert_int_equal(talas_user_shares_listening(f->st, "user-0008"), 0);
    assert_int_equal(talas_user_settings_put(f->st, "nobody", &off, 1, &r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_bytes),
        cmocka_unit_test(test_damaged_records_are_private),
        cmocka_unit_test_setup_teardown(test_defaults_and_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_record_in_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
