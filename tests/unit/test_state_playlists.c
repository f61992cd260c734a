/*
 * test_state_playlists.c - the playlists' state interface
 * (workers/state/state_playlists.c) with its local backend on a real LMDB
 * store: each call completes before it returns, with the outcomes of
 * store/playlists.c (created, position, forbidden, quota by key, not
 * found, the whole playlist read; edit, delete and list with the details:
 * name, comment, public, times); the PostgreSQL migration that adds the
 * details (the columns and functions state_playlists_pg.c calls); and its
 * cluster backend on
 * workers/cluster/pg.c without a server: a store that cannot be reached
 * answers unavailable at once, and an operation cancelled while it waits
 * never calls back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "cluster/pg.h"
#include "state/state.h"
#include "state/state_playlists.h"
#include "store/pg_schema.h"
#include "store/playlists.h"
#include "tmpdir.h"

struct fixture {
    char *dir;
    struct talas_config *conf;
    struct talas_storage *st;
    struct talas_worker_ctx ctx;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    char *yaml, *error;

    assert_non_null(fx->dir = test_tmpdir("state"));
    yaml = xasprintf("listen: [{port: 8082}]\n"
                     "library: {paths: [%s]}\n"
                     "storage: {path: %s/talas.lmdb, map_size: 16MiB}\n"
                     "playlists: {max_per_user: 2, max_tracks: 3, max_editors: 2}\n",
                     fx->dir, fx->dir);
    if (talas_config_load_string("state.yaml", yaml, strlen(yaml), &fx->conf, &error) != 0)
        fail_msg("config: %s", error);
    free(yaml);
    if (talas_storage_open(fx->conf->storage_path, fx->conf->storage_map_size, &fx->st, &error) != 0)
        fail_msg("storage: %s", error);
    fx->ctx.conf = fx->conf;
    fx->ctx.storage = fx->st;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    talas_storage_close(fx->st);
    talas_config_free(fx->conf);
    test_rm_rf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* What a callback saw. */
struct seen {
    int calls;
    enum talas_state_outcome outcome;
    uint64_t position;
    int created;
    size_t editors_added;
    char reason[256], limit[64], text[512];
};

static void on_done(void *data, const struct talas_state_playlist_result *r)
{
    struct seen *s = data;

    s->calls++;
    s->outcome = r->outcome;
    s->position = r->position;
    s->created = r->created;
    s->editors_added = r->editors_added;
    snprintf(s->reason, sizeof(s->reason), "%s", r->reason != NULL ? r->reason : "");
    snprintf(s->limit, sizeof(s->limit), "%s", r->outcome == TALAS_STATE_QUOTA ? r->refusal.limit : "");
    s->text[0] = '\0';
    if (r->playlist != NULL) {
        const struct talas_state_playlist *p = r->playlist;
        snprintf(s->text, sizeof(s->text), "%s%s%s%s|", p->public_ ? "+" : "", p->name,
                 p->comment[0] != '\0' ? "/" : "", p->comment);
        strcat(strcat(s->text, p->owner), "|");
        for (size_t i = 0; i < p->editor_count; i++)
            strcat(strcat(s->text, p->editors[i]), " ");
        strcat(s->text, "|");
        for (size_t i = 0; i < p->track_count; i++)
            strcat(strcat(s->text, p->tracks[i]), " ");
    }
}

static struct seen add(struct fixture *fx, const char *user, const char *pl, const char *track)
{
    struct seen s = {0};

    assert_null(talas_state_playlist_add(&fx->ctx, user, pl, track, 0, 0, on_done, &s));
    assert_int_equal(s.calls, 1); /* the local backend: before it returned */
    return s;
}

static void test_local_completes_at_once(void **state)
{
    struct fixture *fx = *state;
    const char *to[] = {"bob", "carol", "dave"};
    struct seen s;

    s = add(fx, "alice", "mix", "t1");
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_true(s.created);
    s = add(fx, "alice", "mix", "t2");
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_false(s.created);
    assert_int_equal(s.position, 1);

    s = add(fx, "bob", "mix", "t3");
    assert_int_equal(s.outcome, TALAS_STATE_FORBIDDEN);
    assert_true(strncmp(s.reason, "forbidden: ", 11) == 0);

    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_share(&fx->ctx, "alice", "mix", to, 3, on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_QUOTA);
    assert_string_equal(s.limit, "playlists.max_editors");
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_share(&fx->ctx, "alice", "mix", to, 1, on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_int_equal(s.editors_added, 1);

    s = add(fx, "bob", "mix", "t3");
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    s = add(fx, "bob", "mix", "t4");
    assert_int_equal(s.outcome, TALAS_STATE_QUOTA);
    assert_string_equal(s.limit, "playlists.max_tracks");

    assert_int_equal(add(fx, "alice", "two", "t1").outcome, TALAS_STATE_OK);
    s = add(fx, "alice", "three", "t1");
    assert_int_equal(s.outcome, TALAS_STATE_QUOTA);
    assert_string_equal(s.limit, "playlists.max_per_user");

    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_remove(&fx->ctx, "alice", "nothing", "t1", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_NOT_FOUND);
    assert_string_equal(s.reason, "no such playlist");
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_remove(&fx->ctx, "alice", "mix", "t1", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_int_equal(s.position, 0);

    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_get(&fx->ctx, "mix", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_string_equal(s.text, "|alice|bob |t2 t3 "); /* no name, private */
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_get(&fx->ctx, "none", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_NOT_FOUND);
}

/* The ids of a list, "id:count id:count ". */
static void on_listed(void *data, const struct talas_state_playlist_result *r)
{
    struct seen *s = data;

    on_done(data, r);
    for (size_t i = 0; i < r->playlist_count; i++)
        snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "%s:%s:%zu ",
                 r->playlists[i].id, r->playlists[i].name, r->playlists[i].track_count);
}

static void test_local_edit_delete_list(void **state)
{
    struct fixture *fx = *state;
    const char *songs[] = {"t1", "t2"};
    uint64_t rm[] = {0};
    struct talas_playlist_edit e;
    struct seen s;

    memset(&e, 0, sizeof(e));
    e.create = 1;
    e.name = "Mix <1>";
    e.public_ = -1;
    e.adds = songs;
    e.add_count = 2;
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_edit(&fx->ctx, "alice", "pl1", &e, on_done, &s));
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_true(s.created);
    assert_int_equal(s.position, 2);

    memset(&e, 0, sizeof(e));
    e.comment = "c";
    e.public_ = 1;
    e.removes = rm;
    e.remove_count = 1;
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_edit(&fx->ctx, "bob", "pl1", &e, on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_FORBIDDEN);
    assert_string_equal(s.reason, talas_playlist_forbidden_owner);
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_edit(&fx->ctx, "alice", "pl1", &e, on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_int_equal(s.position, 1);
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_get(&fx->ctx, "pl1", on_done, &s));
    assert_string_equal(s.text, "+Mix <1>/c|alice||t2 ");

    e.public_ = -1;
    e.comment = NULL;
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_edit(&fx->ctx, "alice", "nope", &e, on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_NOT_FOUND);

    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_list(&fx->ctx, "bob", on_listed, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    assert_string_equal(s.text, "pl1:Mix <1>:1 ");

    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_delete(&fx->ctx, "bob", "pl1", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_FORBIDDEN);
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_delete(&fx->ctx, "alice", "pl1", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_OK);
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_delete(&fx->ctx, "alice", "pl1", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_NOT_FOUND);
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_list(&fx->ctx, "alice", on_listed, &s));
    assert_string_equal(s.text, "");
}

/* The migration of the details: after version 4, the columns and the
 * functions that state_playlists_pg.c names. */
static void test_migration_of_details(void **state)
{
    const char *m = NULL;

    (void)state;
    assert_true(TALAS_PG_SCHEMA_VERSION >= 5);
    /* the lead may renumber it at a merge: find it rather than count */
    for (int v = 0; v < TALAS_PG_SCHEMA_VERSION; v++)
        if (strstr(talas_pg_migrations[v], "CREATE FUNCTION talas_playlist_edit(") != NULL)
            m = talas_pg_migrations[v];
    assert_non_null(m);
    assert_non_null(strstr(m, "ALTER TABLE talas_playlists ADD COLUMN name text"));
    assert_non_null(strstr(m, "ADD COLUMN comment text"));
    assert_non_null(strstr(m, "ADD COLUMN public boolean"));
    assert_non_null(strstr(m, "ADD COLUMN changed timestamptz"));
    assert_non_null(strstr(m, "CREATE FUNCTION talas_playlist_delete("));
    /* an existing row gets its created time as changed, before NOT NULL */
    assert_true(strstr(m, "SET changed = created") < strstr(m, "SET NOT NULL"));
    for (int v = 0; v < TALAS_PG_SCHEMA_VERSION; v++)
        if (talas_pg_migrations[v] != m)
            assert_null(strstr(talas_pg_migrations[v], "talas_playlist_edit("));
}

static int no_check(const PGresult *res, char *reason, size_t size)
{
    (void)res;
    (void)reason;
    (void)size;
    return 0;
}

static void test_cluster_unreachable_answers_at_once(void **state)
{
    struct fixture *fx = *state;
    h2o_loop_t *loop = h2o_evloop_create();
    char *conninfo = xasprintf("host=%s/nowhere dbname=x user=x connect_timeout=2", fx->dir);
    struct seen s = {0};

    fx->ctx.loop = loop;
    fx->ctx.records = talas_pg_create(loop, conninfo, NULL, talas_pg_schema_check_sql, no_check);
    /* no server on that socket: the first attempt failed at once */
    assert_false(talas_pg_ready(fx->ctx.records));
    assert_null(talas_state_playlist_add(&fx->ctx, "alice", "mix", "t1", 0, 0, on_done, &s));
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.outcome, TALAS_STATE_UNAVAILABLE);
    assert_string_equal(s.reason, "the record store cannot be reached");
    memset(&s, 0, sizeof(s));
    assert_null(talas_state_playlist_get(&fx->ctx, "mix", on_done, &s));
    assert_int_equal(s.outcome, TALAS_STATE_UNAVAILABLE);
    talas_pg_destroy(fx->ctx.records);
    fx->ctx.records = NULL;
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    free(conninfo);
}

static void test_cluster_cancelled_never_calls_back(void **state)
{
    struct fixture *fx = *state;
    h2o_loop_t *loop = h2o_evloop_create();
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *conninfo = xasprintf("host=%s port=5432 dbname=x user=x", fx->dir);
    struct seen kept = {0}, cancelled = {0};
    struct talas_state_op *a, *b;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    /* a "server" that accepts in its backlog and never answers: the
     * connection stays under way, the operations wait */
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.5432", fx->dir);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 8), 0);
    fx->ctx.loop = loop;
    fx->ctx.records = talas_pg_create(loop, conninfo, NULL, talas_pg_schema_check_sql, no_check);
    a = talas_state_playlist_add(&fx->ctx, "alice", "mix", "t1", 0, 0, on_done, &kept);
    b = talas_state_playlist_add(&fx->ctx, "alice", "mix", "t2", 0, 0, on_done, &cancelled);
    assert_non_null(a);
    assert_non_null(b);
    h2o_evloop_run(loop, 10);
    assert_int_equal(kept.calls + cancelled.calls, 0);
    talas_state_cancel(b);
    /* the server goes away: what waits completes, as unavailable */
    close(fd);
    unlink(sun.sun_path);
    for (int i = 0; i < 500 && kept.calls == 0; i++)
        h2o_evloop_run(loop, 10);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(kept.outcome, TALAS_STATE_UNAVAILABLE);
    assert_int_equal(cancelled.calls, 0);
    talas_pg_destroy(fx->ctx.records);
    fx->ctx.records = NULL;
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    free(conninfo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_completes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_edit_delete_list, setup, teardown),
        cmocka_unit_test(test_migration_of_details),
        cmocka_unit_test_setup_teardown(test_cluster_unreachable_answers_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_cancelled_never_calls_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
