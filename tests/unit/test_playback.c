/*
 * test_playback.c - playback records in a real LMDB environment
 * (src/store/playback.c): the migration of a store written in the previous
 * format (raw C structs), playback state through Play, Pause, Seek and
 * Stop, listening sessions and per-track totals (playlists are
 * test_playlists.c's).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/playback.h"
#include "store/storage.h"
#include "tmpdir.h"

struct fixture {
    char *dir;
    struct talas_storage *st;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    char *error;

    fx->dir = test_tmpdir("playback");
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

static void reopen(struct fixture *fx)
{
    char *error;

    talas_storage_close(fx->st);
    if (talas_storage_open(fx->dir, 16 << 20, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
}

/* ------------------------------------------------- the previous format */

/* The records of the commit before the record codec, as that build wrote
 * them: these C structs, copied from its playback.h, stored raw. */
struct prev_playback_state {
    uint32_t version;
    uint32_t status;
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t duration_ms;
    uint64_t position_ms;
    uint64_t updated_ms;
    uint64_t played_ms;
    uint64_t session_started_ms;
    uint32_t session_pid;
};
struct prev_listen_session {
    uint32_t version;
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t started_ms;
    uint64_t ended_ms;
    uint64_t position_ms;
    uint64_t total_played_ms;
};
struct prev_track_plays {
    uint64_t plays;
    uint64_t listeners;
    uint64_t total_listening_ms;
};

static void raw_put(struct talas_storage *st, enum talas_dbi dbi, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

    assert_int_equal(mdb_txn_begin(talas_storage_env(st), NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, talas_storage_dbi(st, dbi), &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

/* The previous session key: user NUL, started (be64), pid (be32). */
static size_t prev_session_key(char *buf, const char *user, uint64_t started, uint32_t pid)
{
    size_t n = strlen(user) + 1;

    memcpy(buf, user, n);
    for (int i = 0; i < 8; i++)
        buf[n + i] = (char)(started >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        buf[n + 8 + i] = (char)(pid >> (24 - 8 * i));
    return n + 12;
}

static struct prev_playback_state prev_state(uint32_t status, const char *track, uint64_t base)
{
    struct prev_playback_state s;

    memset(&s, 0, sizeof(s));
    s.version = 1;
    s.status = status;
    snprintf(s.track_id, sizeof(s.track_id), "%s", track);
    snprintf(s.quality, sizeof(s.quality), "high");
    snprintf(s.platform, sizeof(s.platform), "web");
    s.duration_ms = base + 200000;
    s.position_ms = base + 1234;
    s.updated_ms = base + 5;
    s.played_ms = base + 777;
    s.session_started_ms = base + 3;
    s.session_pid = 4321;
    return s;
}

/* Writes the previous format's records: two users' states, three
 * sessions, two tracks' totals. */
static void write_prev_store(struct talas_storage *st)
{
    struct prev_playback_state a = prev_state(TALAS_PLAYBACK_PAUSED, "track-a", 1000000);
    struct prev_playback_state b = prev_state(TALAS_PLAYBACK_STOPPED, "track-b", 2000000);
    struct prev_track_plays pa = {5, 3, 123456}, pb = {1, 1, 42};
    char key[TALAS_PLAYBACK_ID_MAX + 16];

    /* a track id of the full length: the longest string of the old struct */
    memset(b.track_id, 'x', TALAS_PLAYBACK_ID_MAX);
    b.track_id[TALAS_PLAYBACK_ID_MAX] = '\0';
    raw_put(st, TALAS_DBI_PLAYBACK, "alice", 5, &a, sizeof(a));
    raw_put(st, TALAS_DBI_PLAYBACK, "bob", 3, &b, sizeof(b));
    for (int i = 0; i < 3; i++) {
        struct prev_listen_session s;
        memset(&s, 0, sizeof(s));
        s.version = 1;
        snprintf(s.track_id, sizeof(s.track_id), "track-%c", 'a' + i);
        snprintf(s.quality, sizeof(s.quality), "q%d", i);
        snprintf(s.platform, sizeof(s.platform), "p%d", i);
        s.started_ms = 100000 + 1000 * (uint64_t)i;
        s.ended_ms = i == 2 ? 0 : s.started_ms + 500;
        s.position_ms = 10 + (uint64_t)i;
        s.total_played_ms = 20 + (uint64_t)i;
        raw_put(st, TALAS_DBI_LISTEN_SESSIONS, key, prev_session_key(key, "alice", s.started_ms, 4321), &s,
                sizeof(s));
    }
    raw_put(st, TALAS_DBI_TRACK_PLAYS, "track-a", 7, &pa, sizeof(pa));
    raw_put(st, TALAS_DBI_TRACK_PLAYS, "track-b", 7, &pb, sizeof(pb));
}

struct seen_state {
    int count;
    char users[4][16];
    struct talas_playback_state s[4];
};

static int on_state(const char *user, const struct talas_playback_state *s, void *arg)
{
    struct seen_state *seen = arg;

    assert_true(seen->count < 4);
    snprintf(seen->users[seen->count], sizeof(seen->users[0]), "%s", user);
    seen->s[seen->count++] = *s;
    return 0;
}

struct seen_sessions {
    int count;
    struct talas_listen_session s[8];
};

static void on_session(const struct talas_listen_session *s, void *arg)
{
    struct seen_sessions *seen = arg;

    assert_true(seen->count < 8);
    seen->s[seen->count++] = *s;
}

/* Every value of write_prev_store, read through the public API. */
static void check_prev_values(struct talas_storage *st)
{
    struct prev_playback_state a = prev_state(TALAS_PLAYBACK_PAUSED, "track-a", 1000000);
    struct prev_playback_state b = prev_state(TALAS_PLAYBACK_STOPPED, "track-b", 2000000);
    struct seen_state states = {0};
    struct seen_sessions sessions = {0};
    struct talas_track_plays p;
    MDB_txn *txn;
    size_t total;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playback_foreach_state(st, txn, on_state, &states), 0);
    assert_int_equal(states.count, 2);
    assert_string_equal(states.users[0], "alice");
    assert_string_equal(states.users[1], "bob");
    for (int i = 0; i < 2; i++) {
        const struct prev_playback_state *want = i == 0 ? &a : &b;
        const struct talas_playback_state *got = &states.s[i];
        assert_int_equal(got->status, want->status);
        if (i == 0)
            assert_string_equal(got->track_id, want->track_id);
        else
            assert_int_equal(strlen(got->track_id), TALAS_PLAYBACK_ID_MAX);
        assert_string_equal(got->quality, want->quality);
        assert_string_equal(got->platform, want->platform);
        assert_true(got->duration_ms == want->duration_ms);
        assert_true(got->position_ms == want->position_ms);
        assert_true(got->updated_ms == want->updated_ms);
        assert_true(got->played_ms == want->played_ms);
        assert_true(got->session_started_ms == want->session_started_ms);
        assert_int_equal(got->session_pid, want->session_pid);
    }

    assert_int_equal(talas_playback_user_sessions(st, txn, "alice", 10, on_session, &sessions, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(sessions.count, 3);
    for (int i = 0; i < 3; i++) {
        const struct talas_listen_session *s = &sessions.s[2 - i]; /* newest first */
        char want[16];
        snprintf(want, sizeof(want), "track-%c", 'a' + i);
        assert_string_equal(s->track_id, want);
        snprintf(want, sizeof(want), "q%d", i);
        assert_string_equal(s->quality, want);
        snprintf(want, sizeof(want), "p%d", i);
        assert_string_equal(s->platform, want);
        assert_true(s->started_ms == 100000 + 1000 * (uint64_t)i);
        assert_true(s->ended_ms == (i == 2 ? 0 : s->started_ms + 500));
        assert_true(s->position_ms == 10 + (uint64_t)i);
        assert_true(s->total_played_ms == 20 + (uint64_t)i);
    }

    assert_int_equal(talas_playback_track_plays(st, txn, "track-a", &p), 0);
    assert_true(p.plays == 5 && p.listeners == 3 && p.total_listening_ms == 123456);
    assert_int_equal(talas_playback_track_plays(st, txn, "track-b", &p), 0);
    assert_true(p.plays == 1 && p.listeners == 1 && p.total_listening_ms == 42);
    mdb_txn_abort(txn);
}

/* Counts the records of DBI whose size is SIZE. */
static int count_sized(struct talas_storage *st, enum talas_dbi dbi, size_t size)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int n = 0, rc;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(mdb_cursor_open(txn, talas_storage_dbi(st, dbi), &cur), 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        n += v.mv_size == size;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return n;
}

static void test_migrate_previous_format(void **state)
{
    struct fixture *fx = *state;
    size_t migrated = 99;

    write_prev_store(fx->st);
    /* a reader sees the same values before the migration */
    check_prev_values(fx->st);

    assert_int_equal(talas_playback_migrate(fx->st, &migrated), 0);
    assert_int_equal(migrated, 2 + 3 + 2);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_PLAYBACK, sizeof(struct prev_playback_state)), 0);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_LISTEN_SESSIONS, sizeof(struct prev_listen_session)), 0);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_TRACK_PLAYS, sizeof(struct prev_track_plays)), 0);
    check_prev_values(fx->st);

    /* idempotent, and the same after a reopen */
    assert_int_equal(talas_playback_migrate(fx->st, &migrated), 0);
    assert_int_equal(migrated, 0);
    reopen(fx);
    check_prev_values(fx->st);
}

/* The first change of a process on an old store migrates it, and the
 * change applies on the old values. */
static void test_change_migrates(void **state)
{
    struct fixture *fx = *state;
    struct talas_playback_result r;
    struct talas_track_plays p;
    const char *reason = NULL;
    MDB_txn *txn;

    write_prev_store(fx->st);
    /* alice's paused track-a resumes where the old record left it */
    assert_int_equal(
        talas_playback_play(fx->st, "alice", "track-a", 200000, 0, 0, "high", "web", 1500000, &r, &reason),
        0);
    assert_int_equal(r.resumed, 1);
    assert_true(r.position_ms == 1000000 + 1234);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_PLAYBACK, sizeof(struct prev_playback_state)), 0);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_LISTEN_SESSIONS, sizeof(struct prev_listen_session)), 0);
    assert_int_equal(count_sized(fx->st, TALAS_DBI_TRACK_PLAYS, sizeof(struct prev_track_plays)), 0);
    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    assert_int_equal(talas_playback_track_plays(fx->st, txn, "track-b", &p), 0);
    assert_true(p.plays == 1 && p.listeners == 1 && p.total_listening_ms == 42);
    mdb_txn_abort(txn);
}

/* ------------------------------------------------------------ behaviour */

static void get_state(struct talas_storage *st, const char *user, struct talas_playback_state *s)
{
    struct seen_state seen = {0};
    MDB_txn *txn;

    /* foreach_state, not talas_playback_get: the state as stored, not
     * advanced to the wall clock */
    memset(s, 0, sizeof(*s));
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playback_foreach_state(st, txn, on_state, &seen), 0);
    mdb_txn_abort(txn);
    for (int i = 0; i < seen.count; i++)
        if (strcmp(seen.users[i], user) == 0)
            *s = seen.s[i];
}

static struct talas_track_plays plays_of(struct talas_storage *st, const char *track)
{
    struct talas_track_plays p;
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playback_track_plays(st, txn, track, &p), 0);
    mdb_txn_abort(txn);
    return p;
}

static void test_playback_cycle(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playback_result r;
    struct talas_playback_state s;
    struct talas_track_plays p;
    struct seen_sessions sessions = {0};
    const char *reason = NULL;
    MDB_txn *txn;
    size_t total;

    /* refusals on a user with no state */
    assert_int_equal(talas_playback_pause(st, "u1", "t1", 500, &r, &reason), 1);
    assert_non_null(reason);
    assert_int_equal(talas_playback_play(st, "u1", "t1", 100000, 1, 200000, "low", "ios", 500, &r, &reason),
                     1);

    assert_int_equal(talas_playback_play(st, "u1", "t1", 100000, 0, 0, "low", "ios", 1000, &r, &reason), 0);
    assert_int_equal(r.resumed, 0);
    assert_int_equal(r.stopped_previous, 0);
    get_state(st, "u1", &s);
    assert_int_equal(s.status, TALAS_PLAYBACK_PLAYING);
    assert_string_equal(s.track_id, "t1");
    assert_string_equal(s.quality, "low");
    assert_string_equal(s.platform, "ios");
    assert_true(s.duration_ms == 100000 && s.position_ms == 0 && s.session_started_ms == 1000);

    /* 3 s of listening */
    assert_int_equal(talas_playback_pause(st, "u1", "t1", 4000, &r, &reason), 0);
    assert_true(r.position_ms == 3000);
    assert_int_equal(talas_playback_pause(st, "u1", "t1", 4500, &r, &reason), 1);
    get_state(st, "u1", &s);
    assert_int_equal(s.status, TALAS_PLAYBACK_PAUSED);
    assert_true(s.position_ms == 3000 && s.played_ms == 3000);

    /* paused time does not count */
    assert_int_equal(talas_playback_play(st, "u1", "t1", 100000, 0, 0, "low", "ios", 10000, &r, &reason), 0);
    assert_int_equal(r.resumed, 1);
    assert_true(r.position_ms == 3000);
    /* 2 s more, then a seek */
    assert_int_equal(talas_playback_seek(st, "u1", "t1", 500000, 12000, &r, &reason), 1);
    assert_int_equal(talas_playback_seek(st, "u1", "t1", 50000, 12000, &r, &reason), 0);
    get_state(st, "u1", &s);
    assert_true(s.position_ms == 50000 && s.played_ms == 5000);
    /* 1 s more, then stop */
    assert_int_equal(talas_playback_stop(st, "u1", "t2", 13000, &r, &reason), 1);
    assert_int_equal(talas_playback_stop(st, "u1", "t1", 13000, &r, &reason), 0);
    assert_true(r.position_ms == 51000 && r.total_played_ms == 6000);
    get_state(st, "u1", &s);
    assert_int_equal(s.status, TALAS_PLAYBACK_STOPPED);

    p = plays_of(st, "t1");
    assert_true(p.plays == 1 && p.listeners == 1 && p.total_listening_ms == 6000);

    /* another listener; the same one again counts a play, not a listener */
    assert_int_equal(talas_playback_play(st, "u2", "t1", 100000, 0, 0, "high", "web", 20000, &r, &reason), 0);
    assert_int_equal(talas_playback_play(st, "u1", "t1", 100000, 1, 7000, "low", "ios", 21000, &r, &reason),
                     0);
    assert_true(r.position_ms == 7000);
    /* u1 switches track while playing: t1's session ends */
    assert_int_equal(talas_playback_play(st, "u1", "t2", 0, 0, 0, "low", "ios", 25000, &r, &reason), 0);
    assert_int_equal(r.stopped_previous, 1);
    assert_string_equal(r.previous_track, "t1");
    assert_true(r.previous_played_ms == 4000);
    p = plays_of(st, "t1");
    assert_true(p.plays == 3 && p.listeners == 2 && p.total_listening_ms == 10000);
    p = plays_of(st, "t2");
    assert_true(p.plays == 1 && p.listeners == 1 && p.total_listening_ms == 0);
    p = plays_of(st, "never");
    assert_true(p.plays == 0 && p.listeners == 0 && p.total_listening_ms == 0);

    /* u1's sessions, newest first: t2 (open), t1 again, t1 */
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playback_user_sessions(st, txn, "u1", 2, on_session, &sessions, &total), 0);
    mdb_txn_abort(txn);
    assert_int_equal(total, 3);
    assert_int_equal(sessions.count, 2);
    assert_string_equal(sessions.s[0].track_id, "t2");
    assert_true(sessions.s[0].started_ms == 25000 && sessions.s[0].ended_ms == 0);
    assert_string_equal(sessions.s[1].track_id, "t1");
    assert_true(sessions.s[1].started_ms == 21000 && sessions.s[1].ended_ms == 25000);
    assert_true(sessions.s[1].total_played_ms == 4000 && sessions.s[1].position_ms == 11000);
    assert_string_equal(sessions.s[1].quality, "low");
    assert_string_equal(sessions.s[1].platform, "ios");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate_previous_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_playback_cycle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
