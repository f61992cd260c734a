/*
 * test_shares.c - the private links of src/store/shares.c: the record's
 * round trip and damaged records refused, put/get/admit/count/list/delete
 * on a temporary LMDB environment (the listener limit, a listener let in
 * twice counted once, a deleted link and its listeners gone).
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
#include "store/shares.h"
#include "store/storage.h"
#define STORE_FIXTURE_NAME "shares"
#include "store_fixture.h"

static void sample(struct talas_share *s, const char *owner)
{
    memset(s, 0, sizeof(*s));
    talas_share_id_make(s->id);
    strcpy(s->track, "AAAAAAAAAAAAAAAA");
    strcpy(s->owner, owner);
    s->created_ms = 1000;
    s->expires_ms = 2000;
    s->permissions = TALAS_SHARE_STREAM | TALAS_SHARE_COMMENT;
    s->max_listeners = 2;
    strcpy(s->password_hash, "pbkdf2-sha256$1$00$00");
}

static void test_record(void **state)
{
    struct talas_share s, back;
    struct talas_buf b = {0};
    char perms[32];

    (void)state;
    sample(&s, "alice");
    s.plays = 7;
    s.listening_ms = 12345;
    talas_share_encode(&s, &b);
    assert_int_equal(talas_share_decode(s.id, strlen(s.id), b.data, b.len, &back), 0);
    assert_memory_equal(&s, &back, sizeof(s));
    /* cut short, a byte too many, another layout, a bad id length */
    assert_int_equal(talas_share_decode(s.id, 16, b.data, b.len - 1, &back), TALAS_SHARE_DAMAGED);
    talas_buf_append(&b, "", 1);
    assert_int_equal(talas_share_decode(s.id, 16, b.data, b.len, &back), TALAS_SHARE_DAMAGED);
    b.len--;
    b.data[0] = 2;
    assert_int_equal(talas_share_decode(s.id, 16, b.data, b.len, &back), TALAS_SHARE_DAMAGED);
    b.data[0] = 1;
    assert_int_equal(talas_share_decode(s.id, 15, b.data, b.len, &back), TALAS_SHARE_DAMAGED);
    talas_buf_free(&b);
    /* a track and a song at once, or neither: damaged */
    strcpy(s.song, "BBBBBBBBBBBBBBBB");
    talas_share_encode(&s, &b);
    assert_int_equal(talas_share_decode(s.id, 16, b.data, b.len, &back), TALAS_SHARE_DAMAGED);
    talas_buf_free(&b);
    talas_share_permissions_text(TALAS_SHARE_STREAM | TALAS_SHARE_COMMENT, perms);
    assert_string_equal(perms, "stream comment");
    talas_share_permissions_text(TALAS_SHARE_DOWNLOAD, perms);
    assert_string_equal(perms, "download");
}

static int count_one(const struct talas_share *s, void *arg)
{
    (void)s;
    (*(int *)arg)++;
    return 0;
}

static void test_store(void **state)
{
    struct store_fixture *f = *state;
    struct talas_share s, other, got;
    char l1[TALAS_SHARE_ID_LEN + 1], l2[TALAS_SHARE_ID_LEN + 1], l3[TALAS_SHARE_ID_LEN + 1];
    MDB_txn *txn;
    int n;

    sample(&s, "alice");
    sample(&other, "bob");
    assert_string_not_equal(s.id, other.id);
    assert_int_equal(talas_share_put(f->st, &s), 0);
    assert_int_equal(talas_share_put(f->st, &other), 0);
    assert_int_equal(talas_share_get(f->st, NULL, s.id, &got), 0);
    assert_memory_equal(&s, &got, sizeof(s));
    assert_int_equal(talas_share_get(f->st, NULL, "nope", &got), MDB_NOTFOUND);

    talas_share_id_make(l1);
    talas_share_id_make(l2);
    talas_share_id_make(l3);
    assert_int_equal(talas_share_admit(f->st, s.id, l1), 0);
    assert_int_equal(talas_share_admit(f->st, s.id, l1), 0); /* the same listener again */
    assert_int_equal(talas_share_admit(f->st, s.id, l2), 0);
    assert_int_equal(talas_share_admit(f->st, s.id, l3), TALAS_SHARE_FULL);
    assert_int_equal(talas_share_admit(f->st, s.id, l1), 0); /* in already: keeps its place */
    assert_int_equal(talas_share_count(f->st, s.id, 1, 6000), 0);
    assert_int_equal(talas_share_count(f->st, s.id, 2, 500), 0);
    assert_int_equal(talas_share_get(f->st, NULL, s.id, &got), 0);
    assert_int_equal(got.listeners, 2);
    assert_int_equal(got.plays, 3);
    assert_int_equal(got.listening_ms, 6500);

    assert_int_equal(talas_storage_read_begin(f->st, &txn), 0);
    n = 0;
    assert_int_equal(talas_share_list(f->st, txn, NULL, count_one, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(talas_share_list(f->st, txn, "bob", count_one, &n), 0);
    assert_int_equal(n, 1);
    mdb_txn_abort(txn);

    assert_int_equal(talas_share_delete(f->st, s.id, &got), 0);
    assert_int_equal(got.plays, 3);
    assert_int_equal(talas_share_get(f->st, NULL, s.id, &got), MDB_NOTFOUND);
    assert_int_equal(talas_share_delete(f->st, s.id, NULL), MDB_NOTFOUND);
    assert_int_equal(talas_share_admit(f->st, s.id, l1), MDB_NOTFOUND);
    assert_int_equal(talas_share_count(f->st, s.id, 1, 0), MDB_NOTFOUND);
    /* the other link and its numbers untouched */
    assert_int_equal(talas_share_get(f->st, NULL, other.id, &got), 0);
    assert_int_equal(got.listeners, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record),
        cmocka_unit_test_setup_teardown(test_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
