/*
 * test_sessions.c - streaming session records in a real LMDB environment
 * (src/store/sessions.c): ids, create and the cap, updates, ends, expiry and the
 * sweep, and the totals they keep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/sessions.h"
#include "store/storage.h"
#include "tmpdir.h"

#define TIMEOUT 10000

struct fixture {
    char *dir;
    struct talas_storage *st;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    char *error;

    fx->dir = test_tmpdir("sessions");
    assert_non_null(fx->dir);
    if (talas_storage_open(fx->dir, 16 << 20, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    talas_storage_close(fx->st);
    test_rm_rf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static struct talas_session make(uint64_t now)
{
    struct talas_session s;

    memset(&s, 0, sizeof(s));
    assert_int_equal(talas_session_new_id(s.session_id), 0);
    snprintf(s.track_id, sizeof(s.track_id), "AAAAAAAAAAAAAAAA");
    snprintf(s.current_quality, sizeof(s.current_quality), "medium");
    s.created_at_ms = s.last_updated_ms = now;
    return s;
}

static struct talas_session_counters counters(struct talas_storage *st)
{
    struct talas_session_counters c;
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_session_counters_get(st, txn, &c), 0);
    mdb_txn_abort(txn);
    return c;
}

static int exists(struct talas_storage *st, const char *id)
{
    struct talas_session s;
    MDB_txn *txn;
    int rc;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    rc = talas_session_get(st, txn, id, &s);
    mdb_txn_abort(txn);
    return rc == 0;
}

static void test_ids(void **state)
{
    char a[TALAS_SESSION_ID_LEN + 1], b[TALAS_SESSION_ID_LEN + 1];

    assert_int_equal(talas_session_new_id(a), 0);
    assert_int_equal(talas_session_new_id(b), 0);
    assert_int_equal(strlen(a), TALAS_SESSION_ID_LEN);
    assert_string_not_equal(a, b);
    assert_true(talas_session_id_valid(a, strlen(a)));
    assert_false(talas_session_id_valid(a, strlen(a) - 1));
    assert_false(talas_session_id_valid("AAAAAAAAAAAAAAAAAAAAA.", 22));
    assert_false(talas_session_id_valid("AAAAAAAAAAAAAAAAAAAAA/", 22));
}

static int bump(struct talas_session *s, struct talas_session_counters *d, void *arg)
{
    s->performance_metrics.quality_switches++;
    d->quality_switches++;
    return 0;
}

static int refuse(struct talas_session *s, struct talas_session_counters *d, void *arg)
{
    snprintf(s->current_quality, sizeof(s->current_quality), "never");
    return 7;
}

static void test_create_update_end(void **state)
{
    struct fixture *fx = *state;
    struct talas_session a = make(1000000), b = make(1000000), c = make(1000000), got;
    struct talas_session_counters t;

    assert_int_equal(talas_session_create(fx->st, &a, 2, 1000000, TIMEOUT), 0);
    assert_int_equal(talas_session_create(fx->st, &b, 2, 1000000, TIMEOUT), 0);
    /* full, and nothing has expired */
    assert_int_equal(talas_session_create(fx->st, &c, 2, 1000000, TIMEOUT), 1);
    assert_false(exists(fx->st, c.session_id));

    assert_int_equal(talas_session_update(fx->st, a.session_id, 1005000, TIMEOUT, bump, NULL, &got), 0);
    assert_int_equal(got.performance_metrics.quality_switches, 1);
    assert_int_equal(got.last_updated_ms, 1005000);
    /* a callback that refuses leaves the record as it was */
    assert_int_equal(talas_session_update(fx->st, a.session_id, 1006000, TIMEOUT, refuse, NULL, &got), 7);
    assert_int_equal(talas_session_update(fx->st, a.session_id, 1006000, TIMEOUT, bump, NULL, &got), 0);
    assert_string_equal(got.current_quality, "medium");
    assert_int_equal(got.performance_metrics.quality_switches, 2);

    assert_int_equal(talas_session_end(fx->st, a.session_id, 1007000, TIMEOUT), 0);
    assert_int_equal(talas_session_end(fx->st, a.session_id, 1007000, TIMEOUT), MDB_NOTFOUND);
    assert_int_equal(talas_session_update(fx->st, a.session_id, 1007000, TIMEOUT, bump, NULL, NULL),
                     MDB_NOTFOUND);

    /* b was idle since 1000000: expired at 1010000, deleted and counted
     * when touched */
    assert_int_equal(talas_session_update(fx->st, b.session_id, 1010000, TIMEOUT, bump, NULL, NULL),
                     MDB_NOTFOUND);
    assert_false(exists(fx->st, b.session_id));
    t = counters(fx->st);
    assert_int_equal(t.created, 2);
    assert_int_equal(t.ended, 1);
    assert_int_equal(t.expired, 1);
    assert_int_equal(t.quality_switches, 2);
}

static void test_sweep_and_cap(void **state)
{
    struct fixture *fx = *state;
    struct talas_session s[5];
    size_t expired;

    for (int i = 0; i < 4; i++) {
        s[i] = make(1000000 + (uint64_t)i * 1000);
        assert_int_equal(talas_session_create(fx->st, &s[i], 4, 1000000, TIMEOUT), 0);
    }
    /* nothing expired yet: nothing written */
    assert_int_equal(talas_session_sweep(fx->st, 1009999, TIMEOUT, 64, &expired), 0);
    assert_int_equal(expired, 0);
    /* at 1011500, s[0] and s[1] have been idle for TIMEOUT */
    assert_int_equal(talas_session_sweep(fx->st, 1011500, TIMEOUT, 1, &expired), 0);
    assert_int_equal(expired, 1); /* at most MAX at a time */
    assert_int_equal(talas_session_sweep(fx->st, 1011500, TIMEOUT, 64, &expired), 0);
    assert_int_equal(expired, 1);
    assert_false(exists(fx->st, s[0].session_id));
    assert_false(exists(fx->st, s[1].session_id));
    assert_true(exists(fx->st, s[2].session_id));
    assert_int_equal(counters(fx->st).expired, 2);

    /* two live with a cap of 2: full while neither has expired; at
     * 1012500 s[2] has, and creating sweeps it first */
    s[4] = make(1011900);
    assert_int_equal(talas_session_create(fx->st, &s[4], 2, 1011900, TIMEOUT), 1);
    assert_int_equal(talas_session_create(fx->st, &s[4], 2, 1012500, TIMEOUT), 0);
    assert_false(exists(fx->st, s[2].session_id));
    assert_int_equal(counters(fx->st).expired, 3);
    assert_int_equal(counters(fx->st).created, 5);
}

/* Every field survives the record codec: a session with each one set to a
 * distinct value reads back equal, byte for byte. */
static void test_record_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct talas_session s = make(1000000), got;
    MDB_txn *txn;

    snprintf(s.client_id, sizeof(s.client_id), "client-%s", "x");
    s.client_capabilities.estimated_bandwidth_kbps = 1;
    s.client_capabilities.buffer_duration_ms = 2;
    s.client_capabilities.connection_type = 3;
    s.client_capabilities.device_type = 4;
    s.client_capabilities.adaptive_enabled = 1;
    snprintf(s.client_capabilities.preferred_quality, sizeof(s.client_capabilities.preferred_quality),
             "high");
    s.performance_metrics.buffer_health_percentage = 87.25;
    s.performance_metrics.packet_loss_percentage = 0.5;
    s.performance_metrics.download_speed_kbps = 5;
    s.performance_metrics.latency_ms = 6;
    s.performance_metrics.rebuffer_count = 7;
    s.performance_metrics.rebuffer_duration_ms = 8;
    s.performance_metrics.quality_switches = 9;
    s.performance_metrics.reports = 10;
    s.monitor.healthy_streak = 11;
    s.monitor.shortfall_streak = 12;
    s.last_updated_ms = 1000013;
    assert_int_equal(talas_session_create(fx->st, &s, 4, 1000000, TIMEOUT), 0);
    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    assert_int_equal(talas_session_get(fx->st, txn, s.session_id, &got), 0);
    mdb_txn_abort(txn);
    assert_memory_equal(&got, &s, sizeof(s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_create_update_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
