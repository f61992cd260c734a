/*
 * test_sessions.c - streaming session records in a real LMDB environment
 * (src/store/sessions.c): ids, create and the cap, updates, ends, expiry and the
 * sweep, and the totals they keep; the bounds per user and per address, the
 * backend's reserve, the owner index kept in step, purging a user's
 * sessions, and records of the previous version.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/record.h"
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

/* Creation with only the global cap, by the backend for no user. */
static int create(struct talas_storage *st, const struct talas_session *s, size_t max, uint64_t now)
{
    struct talas_session_limits lim = {max, 0, 0, 0};

    return talas_session_create(st, s, &lim, 1, now, TIMEOUT, NULL);
}

static struct talas_session owned_by(uint64_t now, uint32_t kind, const char *owner)
{
    struct talas_session s = make(now);

    s.owner_kind = kind;
    snprintf(s.owner, sizeof(s.owner), "%s", owner);
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

    assert_int_equal(create(fx->st, &a, 2, 1000000), 0);
    assert_int_equal(create(fx->st, &b, 2, 1000000), 0);
    /* full, and nothing has expired */
    assert_int_equal(create(fx->st, &c, 2, 1000000), TALAS_SESSION_FULL);
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
        assert_int_equal(create(fx->st, &s[i], 4, 1000000), 0);
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
    assert_int_equal(create(fx->st, &s[4], 2, 1011900), TALAS_SESSION_FULL);
    assert_int_equal(create(fx->st, &s[4], 2, 1012500), 0);
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
    s.owner_kind = TALAS_SESSION_OWNER_USER;
    snprintf(s.owner, sizeof(s.owner), "user-%s", "y");
    assert_int_equal(create(fx->st, &s, 4, 1000000), 0);
    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    assert_int_equal(talas_session_get(fx->st, txn, s.session_id, &got), 0);
    mdb_txn_abort(txn);
    assert_memory_equal(&got, &s, sizeof(s));
}

/* Keys in the owner index, all owners together. */
static size_t index_entries(struct talas_storage *st)
{
    MDB_txn *txn;
    MDB_stat ms;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_SESSIONS_BY_OWNER), &ms), 0);
    mdb_txn_abort(txn);
    return ms.ms_entries;
}

static size_t user_count(struct talas_storage *st, const char *user)
{
    MDB_txn *txn;
    size_t n = 99;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_session_count_by_owner(st, txn, user, &n), 0);
    mdb_txn_abort(txn);
    return n;
}

/* One user cannot hold more than max_per_user sessions, by a token or by
 * the backend naming it; other users, the same name as an address, and
 * the backend for no user are counted apart. */
static void test_per_user(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {100, 3, 0, 10};
    struct talas_quota_refusal r = {NULL, 0};
    struct talas_session s;
    const uint64_t now = 1000000;

    for (int i = 0; i < 3; i++) {
        s = owned_by(now, TALAS_SESSION_OWNER_USER, "alice");
        /* the backend naming alice counts as alice */
        assert_int_equal(talas_session_create(fx->st, &s, &lim, i == 2, now, TIMEOUT, &r), 0);
    }
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "alice");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, &r), TALAS_QUOTA_EXCEEDED);
    assert_non_null(r.limit);
    assert_string_equal(r.limit, "streaming.max_sessions_per_user");
    assert_int_equal(r.max, 3);
    assert_false(exists(fx->st, s.session_id));
    /* the backend key does not lift a user's bound */
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 1, now, TIMEOUT, NULL), TALAS_QUOTA_EXCEEDED);
    /* a user whose name starts like alice's is someone else */
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "alic");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "alice2");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "alice");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    for (int i = 0; i < 5; i++) {
        s = make(now);
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 1, now, TIMEOUT, NULL), 0);
    }
    assert_int_equal(user_count(fx->st, "alice"), 3);
    assert_int_equal(user_count(fx->st, "alic"), 1);
    assert_int_equal(user_count(fx->st, "nobody"), 0);
    /* one index key per owned session, none for the backend's */
    assert_int_equal(index_entries(fx->st), 6);
    assert_int_equal(counters(fx->st).created, 11);

    /* 0: no bound */
    lim.max_per_user = 0;
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "alice");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
}

/* Clients with no user are bounded by their address. */
static void test_per_address(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {100, 1, 2, 0};
    struct talas_quota_refusal r = {NULL, 0};
    struct talas_session s;
    const uint64_t now = 1000000;

    for (int i = 0; i < 2; i++) {
        s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "192.0.2.7");
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, &r), 0);
    }
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "192.0.2.7");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.limit, "streaming.max_sessions_per_address");
    assert_int_equal(r.max, 2);
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "192.0.2.70");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "2001:db8::1");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    /* a user's sessions are the user's, not the address's */
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "192.0.2.7");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    assert_int_equal(counters(fx->st).created, 5);

    /* an owner kind with no owner is a caller's mistake */
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), EINVAL);
}

/* The last backend_reserved sessions are the backend's; the per-client
 * bounds come before the global cap. */
static void test_backend_reserve(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {10, 5, 5, 3};
    struct talas_quota_refusal r = {NULL, 0};
    struct talas_session s;
    char owner[32];
    const uint64_t now = 1000000;

    for (int i = 0; i < 7; i++) {
        snprintf(owner, sizeof(owner), "listener-%d", i);
        s = owned_by(now, TALAS_SESSION_OWNER_USER, owner);
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    }
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "listener-7");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), TALAS_SESSION_FULL);
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "198.51.100.1");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), TALAS_SESSION_FULL);
    /* the backend, for no user or for one, takes the reserve */
    for (int i = 0; i < 3; i++) {
        s = i == 0 ? make(now) : owned_by(now, TALAS_SESSION_OWNER_USER, "listener-0");
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 1, now, TIMEOUT, NULL), 0);
    }
    /* and then the cap holds for it too */
    s = make(now);
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 1, now, TIMEOUT, NULL), TALAS_SESSION_FULL);
    /* full, but a client at its own bound is told about its own bound */
    lim.max_per_user = 3;
    s = owned_by(now, TALAS_SESSION_OWNER_USER, "listener-0");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.limit, "streaming.max_sessions_per_user");
    assert_int_equal(counters(fx->st).created, 10);
}

/* Expired sessions hold no slot: neither of their owner nor of the
 * reserve; counting deletes them (counted as expired) with their keys. */
static void test_expired_not_counted(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {6, 2, 2, 2};
    struct talas_session s, old[2];
    const uint64_t t0 = 1000000, t1 = t0 + TIMEOUT;

    for (int i = 0; i < 2; i++) {
        old[i] = owned_by(t0, TALAS_SESSION_OWNER_USER, "carol");
        assert_int_equal(talas_session_create(fx->st, &old[i], &lim, 0, t0, TIMEOUT, NULL), 0);
    }
    s = owned_by(t0 + 1, TALAS_SESSION_OWNER_USER, "carol");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, t1 - 1, TIMEOUT, NULL), TALAS_QUOTA_EXCEEDED);
    /* at t1 both have been idle for TIMEOUT */
    s = owned_by(t1, TALAS_SESSION_OWNER_USER, "carol");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, t1, TIMEOUT, NULL), 0);
    assert_false(exists(fx->st, old[0].session_id));
    assert_false(exists(fx->st, old[1].session_id));
    assert_int_equal(user_count(fx->st, "carol"), 1);
    assert_int_equal(index_entries(fx->st), 1);
    assert_int_equal(counters(fx->st).expired, 2);

    /* the same for the global cap with its reserve: 4 open to listeners,
     * taken by sessions that then expire */
    for (int i = 0; i < 3; i++) {
        char owner[16];
        snprintf(owner, sizeof(owner), "d%d", i);
        s = owned_by(t1, TALAS_SESSION_OWNER_USER, owner);
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, t1, TIMEOUT, NULL), 0);
    }
    s = owned_by(t1, TALAS_SESSION_OWNER_USER, "e");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, t1, TIMEOUT, NULL), TALAS_SESSION_FULL);
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, t1 + TIMEOUT, TIMEOUT, NULL), 0);
    assert_int_equal(counters(fx->st).expired, 6);
    assert_int_equal(index_entries(fx->st), 1);
}

/* Every way a session goes also takes its key out of the owner index. */
static void test_index_in_step(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {100, 10, 10, 0};
    struct talas_session s[4];
    const uint64_t t0 = 1000000;
    size_t expired;

    for (int i = 0; i < 4; i++) {
        s[i] = owned_by(t0, TALAS_SESSION_OWNER_USER, "dave");
        assert_int_equal(talas_session_create(fx->st, &s[i], &lim, 0, t0, TIMEOUT, NULL), 0);
    }
    assert_int_equal(user_count(fx->st, "dave"), 4);
    /* DELETE */
    assert_int_equal(talas_session_end(fx->st, s[0].session_id, t0 + 1, TIMEOUT), 0);
    assert_int_equal(user_count(fx->st, "dave"), 3);
    /* an update keeps it (and its key) */
    assert_int_equal(talas_session_update(fx->st, s[1].session_id, t0 + 5000, TIMEOUT, bump, NULL, NULL), 0);
    assert_int_equal(talas_session_update(fx->st, s[2].session_id, t0 + 6000, TIMEOUT, bump, NULL, NULL), 0);
    assert_int_equal(user_count(fx->st, "dave"), 3);
    /* the sweep: s[3] idle since t0 */
    assert_int_equal(talas_session_sweep(fx->st, t0 + TIMEOUT, TIMEOUT, 64, &expired), 0);
    assert_int_equal(expired, 1);
    assert_int_equal(user_count(fx->st, "dave"), 2);
    /* found expired by an update */
    assert_int_equal(
        talas_session_update(fx->st, s[1].session_id, t0 + 5000 + TIMEOUT, TIMEOUT, bump, NULL, NULL),
        MDB_NOTFOUND);
    assert_int_equal(user_count(fx->st, "dave"), 1);
    /* found expired by an end */
    assert_int_equal(talas_session_end(fx->st, s[2].session_id, t0 + 6000 + TIMEOUT, TIMEOUT), MDB_NOTFOUND);
    assert_int_equal(user_count(fx->st, "dave"), 0);
    assert_int_equal(index_entries(fx->st), 0);
    assert_int_equal(counters(fx->st).expired, 3);
    assert_int_equal(counters(fx->st).ended, 1);
}

/* Purging a user deletes all of that user's sessions (more than one write
 * transaction's batch), and nobody else's. */
static void test_purge(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {1000, 0, 0, 0};
    struct talas_session s, bob;
    const uint64_t now = 1000000;
    size_t purged = 0;

    for (int i = 0; i < 300; i++) {
        s = owned_by(now, TALAS_SESSION_OWNER_USER, "erin");
        assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    }
    bob = owned_by(now, TALAS_SESSION_OWNER_USER, "bob");
    assert_int_equal(talas_session_create(fx->st, &bob, &lim, 0, now, TIMEOUT, NULL), 0);
    /* erin's name as an address is not erin */
    s = owned_by(now, TALAS_SESSION_OWNER_ADDRESS, "erin");
    assert_int_equal(talas_session_create(fx->st, &s, &lim, 0, now, TIMEOUT, NULL), 0);
    assert_int_equal(user_count(fx->st, "erin"), 300);

    assert_int_equal(talas_session_purge_owner(fx->st, "erin", &purged), 0);
    assert_int_equal(purged, 300);
    assert_int_equal(user_count(fx->st, "erin"), 0);
    assert_int_equal(user_count(fx->st, "bob"), 1);
    assert_true(exists(fx->st, bob.session_id));
    assert_true(exists(fx->st, s.session_id));
    assert_int_equal(index_entries(fx->st), 2);
    assert_int_equal(counters(fx->st).ended, 300);
    /* nothing left: nothing to do */
    assert_int_equal(talas_session_purge_owner(fx->st, "erin", &purged), 0);
    assert_int_equal(purged, 0);
    {
        MDB_txn *txn;
        MDB_stat ms;
        assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
        assert_int_equal(mdb_stat(txn, talas_storage_dbi(fx->st, TALAS_DBI_SESSIONS), &ms), 0);
        mdb_txn_abort(txn);
        assert_int_equal(ms.ms_entries, 2);
    }
}

/* A record of the previous version (2: no owner) reads as a session of no
 * owner: it counts only globally, and ends as any other. */
static void test_version_2_record(void **state)
{
    struct fixture *fx = *state;
    struct talas_session_limits lim = {2, 1, 1, 0};
    struct talas_session s = make(1000000), got, other;
    struct talas_record_writer w;
    struct talas_buf out = {0};
    MDB_val key = {TALAS_SESSION_ID_LEN, s.session_id}, val;
    MDB_txn *txn;

    talas_record_writer_buf(&w, &out);
    talas_record_put_u8(&w, 2);
    talas_record_put_str(&w, s.session_id);
    talas_record_put_str(&w, s.track_id);
    talas_record_put_str(&w, "client-2");
    talas_record_put_str(&w, s.current_quality);
    for (int i = 0; i < 5; i++)
        talas_record_put_u32(&w, 0);
    talas_record_put_str(&w, "");
    talas_record_put_f64(&w, 50.0);
    talas_record_put_f64(&w, 0.0);
    for (int i = 0; i < 6; i++)
        talas_record_put_u32(&w, (uint32_t)i);
    talas_record_put_u32(&w, 0);
    talas_record_put_u32(&w, 0);
    talas_record_put_u64(&w, 1000000);
    talas_record_put_u64(&w, 1000000);
    val.mv_data = out.data;
    val.mv_size = out.len;
    assert_int_equal(talas_storage_write_begin(fx->st, &txn), 0);
    assert_int_equal(mdb_put(txn, talas_storage_dbi(fx->st, TALAS_DBI_SESSIONS), &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    talas_buf_free(&out);

    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    assert_int_equal(talas_session_get(fx->st, txn, s.session_id, &got), 0);
    mdb_txn_abort(txn);
    assert_int_equal(got.owner_kind, TALAS_SESSION_OWNER_NONE);
    assert_string_equal(got.owner, "");
    assert_string_equal(got.client_id, "client-2");
    assert_int_equal(got.performance_metrics.reports, 5);
    /* it takes a global slot, no client's */
    other = owned_by(1000000, TALAS_SESSION_OWNER_USER, "client-2");
    assert_int_equal(talas_session_create(fx->st, &other, &lim, 0, 1000000, TIMEOUT, NULL), 0);
    other = owned_by(1000000, TALAS_SESSION_OWNER_USER, "frank");
    assert_int_equal(talas_session_create(fx->st, &other, &lim, 0, 1000000, TIMEOUT, NULL),
                     TALAS_SESSION_FULL);
    /* updated, it is written in the current version, still of no owner */
    assert_int_equal(talas_session_update(fx->st, s.session_id, 1000500, TIMEOUT, bump, NULL, &got), 0);
    assert_int_equal(got.owner_kind, TALAS_SESSION_OWNER_NONE);
    assert_int_equal(talas_session_end(fx->st, s.session_id, 1001000, TIMEOUT), 0);
    assert_int_equal(index_entries(fx->st), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_create_update_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_and_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_per_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_in_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_2_record, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
