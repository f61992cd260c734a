/*
 * test_ws_limits.c - the per-user and per-address limits of one worker's
 * realtime channel (workers/realtime/ws_limits.c): connection caps that
 * name their key, users and addresses counted apart, one command budget
 * shared by an identity's connections, windows that end, and identities
 * kept until their window ends (so reconnecting does not reset a budget),
 * and connection caps that count every worker's through the census.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/census.h"
#include "core/config.h"
#include "core/metrics.h"
#include "realtime/ws_limits.h"

static struct talas_config conf;

static int setup(void **state)
{
    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.ws_max_connections_per_user = 3;
    conf.ws_max_connections_per_address = 2;
    conf.ws_user_rate_limit = 5;
    conf.ws_rate_limit_window_ms = 10000;
    talas_ws_limits_init(&conf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    talas_ws_limits_init(&conf); /* frees the table */
    return 0;
}

static void test_connections_per_user(void **state)
{
    struct talas_quota_refusal r = {0};
    struct talas_ws_identity *a[3], *b;

    (void)state;
    for (int i = 0; i < 3; i++) {
        a[i] = talas_ws_limits_open("alice", "192.0.2.1", &r);
        assert_non_null(a[i]);
        assert_ptr_equal(a[i], a[0]);
    }
    assert_true(talas_ws_identity_is_user(a[0]));
    /* the fourth, from any address */
    assert_null(talas_ws_limits_open("alice", "192.0.2.9", &r));
    assert_string_equal(r.limit, "ws.max_connections_per_user");
    assert_int_equal(r.max, 3);
    /* another user is not affected, nor is a user named like an address */
    b = talas_ws_limits_open("bob", "192.0.2.1", &r);
    assert_non_null(b);
    assert_ptr_not_equal(b, a[0]);
    assert_non_null(talas_ws_limits_open("192.0.2.1", "192.0.2.1", &r));
    /* one closes: one more may open */
    talas_ws_limits_close(a[0]);
    assert_non_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
    assert_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
}

static void test_connections_per_address(void **state)
{
    struct talas_quota_refusal r = {0};
    struct talas_ws_identity *x;

    (void)state;
    x = talas_ws_limits_open(NULL, "198.51.100.7", &r);
    assert_non_null(x);
    assert_false(talas_ws_identity_is_user(x));
    assert_non_null(talas_ws_limits_open(NULL, "198.51.100.7", &r));
    assert_null(talas_ws_limits_open(NULL, "198.51.100.7", &r));
    assert_string_equal(r.limit, "ws.max_connections_per_address");
    assert_int_equal(r.max, 2);
    assert_non_null(talas_ws_limits_open(NULL, "198.51.100.8", &r));
    /* the address cap is not the user cap: a user of that name is apart */
    assert_non_null(talas_ws_limits_open("198.51.100.7", "203.0.113.1", &r));

    /* 0: no limit */
    conf.ws_max_connections_per_address = 0;
    for (int i = 0; i < 100; i++)
        assert_non_null(talas_ws_limits_open(NULL, "198.51.100.7", &r));
}

static void test_command_budget_is_shared(void **state)
{
    struct talas_quota_refusal r = {0};
    struct talas_ws_identity *one = talas_ws_limits_open("carol", "192.0.2.1", &r),
                             *two = talas_ws_limits_open("carol", "192.0.2.2", &r);
    struct talas_ws_budget b;
    uint64_t t0 = 1000000;

    (void)state;
    /* the budget of the user, whichever connection spends it */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(talas_ws_limits_command(i % 2 ? one : two, t0 + (uint64_t)i, &b), 0);
        assert_int_equal(b.remaining, 4 - i);
        assert_int_equal(b.limit, 5);
    }
    assert_int_equal(talas_ws_limits_command(one, t0 + 10, &b), -1);
    assert_int_equal(talas_ws_limits_command(two, t0 + 11, &b), -1);
    assert_int_equal(b.remaining, 0);
    assert_int_equal(b.reset_ms, 10000 - 11);
    assert_int_equal(b.window_start_ms, t0);
    /* another user has their own */
    assert_int_equal(talas_ws_limits_command(talas_ws_limits_open("dave", "192.0.2.1", &r), t0 + 12, &b), 0);
    /* the window ends: a new one */
    assert_int_equal(talas_ws_limits_command(one, t0 + 10000, &b), 0);
    assert_int_equal(b.window_start_ms, t0 + 10000);
    assert_int_equal(b.remaining, 4);

    /* 0: no limit */
    conf.ws_user_rate_limit = 0;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(talas_ws_limits_command(one, t0 + 10001, NULL), 0);
}

static void test_sweep_keeps_running_windows(void **state)
{
    struct talas_quota_refusal r = {0};
    struct talas_ws_identity *id;
    struct talas_ws_budget b;
    uint64_t t0 = 5000000;

    (void)state;
    id = talas_ws_limits_open("erin", "192.0.2.1", &r);
    for (int i = 0; i < 5; i++)
        assert_int_equal(talas_ws_limits_command(id, t0, NULL), 0);
    assert_non_null(talas_ws_limits_open(NULL, "192.0.2.50", &r));
    talas_ws_limits_close(id);
    assert_int_equal(talas_ws_limits_count(), 2);

    /* no connection, but a window still running: kept, and a reconnect
     * finds the budget spent */
    talas_ws_limits_sweep(t0 + 5000);
    assert_int_equal(talas_ws_limits_count(), 2);
    id = talas_ws_limits_open("erin", "192.0.2.1", &r);
    assert_int_equal(talas_ws_limits_command(id, t0 + 5001, &b), -1);
    talas_ws_limits_close(id);

    /* the window over: forgotten; the address with a connection stays */
    talas_ws_limits_sweep(t0 + 10000);
    assert_int_equal(talas_ws_limits_count(), 1);
    id = talas_ws_limits_open("erin", "192.0.2.1", &r);
    assert_int_equal(talas_ws_limits_command(id, t0 + 10001, &b), 0);
    assert_int_equal(b.remaining, 4);
}

/* Shared through the node's census: connections of the same user on
 * another worker (another slot's table) count against the cap here, and
 * stop counting when that worker's slot is released. */
static void test_connections_across_workers(void **state)
{
    struct talas_metrics_header *hdr = calloc(1, talas_metrics_size());
    struct talas_quota_refusal r = {0};
    struct talas_census_table *other;
    struct talas_ws_identity *id;
    int here, there;

    (void)state;
    assert_non_null(hdr);
    talas_metrics_init(hdr);
    here = talas_metrics_claim(hdr, 100);
    there = talas_metrics_claim(hdr, 200);
    other = talas_census_table(hdr, (unsigned)there);
    talas_ws_limits_share(hdr, talas_census_table(hdr, (unsigned)here));

    /* the other worker holds 2 of alice's connections: one more fits */
    talas_census_add(other, talas_census_key(hdr, 'u', "alice"), +1);
    talas_census_add(other, talas_census_key(hdr, 'u', "alice"), +1);
    id = talas_ws_limits_open("alice", "192.0.2.1", &r);
    assert_non_null(id);
    assert_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
    assert_string_equal(r.limit, "ws.max_connections_per_user");
    /* ours is in the census, for the other worker to see */
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "alice")), 3);
    /* an address is counted apart from a user of the same name */
    assert_non_null(talas_ws_limits_open(NULL, "alice", &r));

    /* the other worker dies: its connections no longer count */
    talas_metrics_release(hdr, there);
    assert_non_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
    assert_non_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
    assert_null(talas_ws_limits_open("alice", "192.0.2.1", &r));
    talas_ws_limits_close(id);
    assert_int_equal(talas_census_total(hdr, talas_census_key(hdr, 'u', "alice")), 2);
    assert_non_null(talas_ws_limits_open("alice", "192.0.2.1", &r));

    talas_ws_limits_init(&conf); /* forgets the census before it is freed */
    free(hdr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connections_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_budget_is_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_keeps_running_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_across_workers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
