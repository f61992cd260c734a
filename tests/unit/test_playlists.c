/*
 * test_playlists.c - playlists in a real LMDB environment
 * (src/store/playlists.c): order of adds and removes, ownership and
 * sharing, each quota (playlists.max_per_user, max_total, max_tracks,
 * max_editors) and the user-data budget (storage.user_data_max), records
 * of the previous layouts (before owners: owned by nobody; before names:
 * no details) read and rewritten, damaged records, the details (name,
 * comment, public, times) with edit, delete and list, and
 * what talasctl users counts and purges (the owner index, the table of
 * kinds in user_data.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/record.h"
#include "store/playback.h"
#include "store/catalog.h"
#include "store/playlists.h"
#include "store/storage.h"
#include "store/user_data.h"
#include "tmpdir.h"

struct fixture {
    char *dir;
    struct talas_storage *st;
    struct talas_playlist_limits lim;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    char *error;

    fx->dir = test_tmpdir("playlists");
    assert_non_null(fx->dir);
    if (talas_storage_open(fx->dir, 16 << 20, &fx->st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    /* generous limits; each test lowers the one it is about */
    fx->lim.max_per_user = 1000;
    fx->lim.max_tracks = 1000;
    fx->lim.max_total = 100000;
    fx->lim.max_editors = 100;
    fx->lim.user_data_max = 0;
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

/* What a reader saw, as one string: "owner|editor editor |track track ". */
struct seen {
    char text[1024];
};

static void seen_owner(const char *owner, void *arg)
{
    struct seen *s = arg;

    snprintf(s->text, sizeof(s->text), "%s|", owner);
}

static void seen_editor(const char *user, size_t index, void *arg)
{
    struct seen *s = arg;

    (void)index;
    strcat(s->text, user);
    strcat(s->text, " ");
}

static void seen_track(const char *track, size_t index, void *arg)
{
    struct seen *s = arg;

    if (index == 0)
        strcat(s->text, "|");
    strcat(s->text, track);
    strcat(s->text, " ");
}

static int get(struct talas_storage *st, const char *playlist, struct seen *s)
{
    static const struct talas_playlist_reader rd = {seen_owner, seen_editor, seen_track, NULL};
    MDB_txn *txn;
    int rc;

    memset(s, 0, sizeof(*s));
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    rc = talas_playlist_get(st, txn, playlist, &rd, s);
    mdb_txn_abort(txn);
    return rc;
}

static void expect(struct talas_storage *st, const char *playlist, const char *want)
{
    struct seen s;

    assert_int_equal(get(st, playlist, &s), 0);
    assert_string_equal(s.text, want);
}

static int add(struct fixture *fx, const char *user, const char *playlist, const char *track,
               struct talas_playlist_result *r)
{
    return talas_playlist_add(fx->st, &fx->lim, user, playlist, track, 0, 0, r);
}

static void raw_put(struct talas_storage *st, enum talas_dbi dbi, const char *key, const void *val,
                    size_t vlen)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key}, v = {vlen, (void *)val};

    assert_int_equal(mdb_txn_begin(talas_storage_env(st), NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, talas_storage_dbi(st, dbi), &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void usage(struct talas_storage *st, const char *owner, uint64_t *count, uint64_t *bytes)
{
    MDB_txn *txn;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playlist_owner_usage(st, txn, owner, count, bytes), 0);
    mdb_txn_abort(txn);
}

/* What a reader saw of a playlist's details. */
struct seen_meta {
    char name[1200], comment[4200];
    int public_;
    uint64_t created_ms, changed_ms;
};

static void seen_meta(const struct talas_playlist_meta *m, void *arg)
{
    struct seen_meta *s = arg;

    snprintf(s->name, sizeof(s->name), "%s", m->name);
    snprintf(s->comment, sizeof(s->comment), "%s", m->comment);
    s->public_ = m->public_;
    s->created_ms = m->created_ms;
    s->changed_ms = m->changed_ms;
}

static void meta(struct talas_storage *st, const char *playlist, struct seen_meta *m)
{
    static const struct talas_playlist_reader rd = {NULL, NULL, NULL, seen_meta};
    MDB_txn *txn;

    memset(m, 0, sizeof(*m));
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playlist_get(st, txn, playlist, &rd, m), 0);
    mdb_txn_abort(txn);
}

/* The first byte of PLAYLIST's record: its layout. */
static int layout_of(struct talas_storage *st, const char *playlist)
{
    MDB_txn *txn;
    MDB_val k = {strlen(playlist), (void *)playlist}, v;
    int first;

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &k, &v), 0);
    first = v.mv_size > 0 ? ((const unsigned char *)v.mv_data)[0] : -1;
    mdb_txn_abort(txn);
    return first;
}

/* A writer of layout 2 (before names), as that build wrote it: u8 2, str
 * owner, u32 editor count, str editor..., u32 track count, str track... */
static void put_layout2(struct talas_storage *st, const char *playlist, const char *owner,
                        const char *const *editors, size_t ne, const char *const *tracks, size_t nt)
{
    struct talas_buf out = {0};
    struct talas_record_writer w;

    talas_record_writer_buf(&w, &out);
    talas_record_put_u8(&w, 2);
    talas_record_put_str(&w, owner);
    talas_record_put_u32(&w, (uint32_t)ne);
    for (size_t i = 0; i < ne; i++)
        talas_record_put_str(&w, editors[i]);
    talas_record_put_u32(&w, (uint32_t)nt);
    for (size_t i = 0; i < nt; i++)
        talas_record_put_str(&w, tracks[i]);
    raw_put(st, TALAS_DBI_PLAYLISTS, playlist, out.data, out.len);
    talas_buf_free(&out);
}

static struct talas_playlist_edit edit_none(void)
{
    struct talas_playlist_edit e;

    memset(&e, 0, sizeof(e));
    e.public_ = -1;
    return e;
}

/* Collects listed ids: "id id ". */
static int collect_id(const char *id, size_t len, void *arg)
{
    strncat(arg, id, len);
    strcat(arg, " ");
    return 0;
}

static void list(struct talas_storage *st, const char *user, char *out)
{
    MDB_txn *txn;

    out[0] = '\0';
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playlist_list(st, txn, user, collect_id, out), 0);
    mdb_txn_abort(txn);
}

/* ------------------------------------------------------------------ tests */

static void test_order(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_result r;
    struct seen s;

    assert_int_equal(get(st, "pl", &s), MDB_NOTFOUND);
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "a", &r), MDB_NOTFOUND);
    assert_string_equal(r.reason, "no such playlist");

    assert_int_equal(add(fx, "al", "pl", "a", &r), 0);
    assert_true(r.position == 0 && r.created);
    assert_int_equal(add(fx, "al", "pl", "b", &r), 0);
    assert_false(r.created);
    assert_int_equal(add(fx, "al", "pl", "c", &r), 0);
    assert_true(r.position == 2);
    assert_int_equal(talas_playlist_add(st, &fx->lim, "al", "pl", "d", 1, 1, &r), 0);
    assert_true(r.position == 1);
    assert_int_equal(talas_playlist_add(st, &fx->lim, "al", "pl", "e", 1, 0, &r), 0);
    expect(st, "pl", "al||e a d b c ");
    assert_int_equal(talas_playlist_add(st, &fx->lim, "al", "pl", "f", 1, 6, &r), TALAS_PLAYLIST_REFUSED);
    assert_string_equal(r.reason, "position: past the end of the playlist");
    assert_int_equal(talas_playlist_add(st, &fx->lim, "al", "pl", "b", 1, 5, &r), 0);
    expect(st, "pl", "al||e a d b c b ");

    /* the first occurrence goes */
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "b", &r), 0);
    assert_true(r.position == 3);
    expect(st, "pl", "al||e a d c b ");
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "zz", &r), TALAS_PLAYLIST_REFUSED);
    assert_string_equal(r.reason, "this track is not in the playlist");
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "e", &r), 0);
    assert_true(r.position == 0);
    expect(st, "pl", "al||a d c b ");
}

/* An entry stored under a track's former id (the first id format) is
 * removed by the id the playlist now lists: the current one. */
static void test_remove_by_current_id(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_result r;
    MDB_txn *txn;

    assert_int_equal(add(fx, "al", "pl", "OLDOLDOLDOLDOLD1", &r), 0);
    assert_int_equal(add(fx, "al", "pl", "b", &r), 0);
    assert_int_equal(mdb_txn_begin(talas_storage_env(st), NULL, 0, &txn), 0);
    assert_int_equal(talas_catalog_alias_put(st, txn, "OLDOLDOLDOLDOLD1", "NEWNEWNEWNEWNEW1"), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "NEWNEWNEWNEWNEW1", &r), 0);
    assert_true(r.position == 0);
    expect(st, "pl", "al||b ");
    /* and an id no entry was ever stored under is still refused */
    assert_int_equal(talas_playlist_remove(st, "al", "pl", "NEWNEWNEWNEWNEW1", &r), TALAS_PLAYLIST_REFUSED);
}

static void test_ownership_and_sharing(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_result r;
    const char *bob[] = {"bob"}, *both[] = {"bob", "carol", "bob", "al"};

    assert_int_equal(add(fx, "al", "mix", "t1", &r), 0);
    /* another user can neither add nor remove */
    assert_int_equal(add(fx, "bob", "mix", "t2", &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_true(strncmp(r.reason, "forbidden: ", 11) == 0);
    assert_int_equal(talas_playlist_remove(st, "bob", "mix", "t1", &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_true(strncmp(r.reason, "forbidden: ", 11) == 0);
    /* nor share it */
    assert_int_equal(talas_playlist_share(st, &fx->lim, "bob", "mix", bob, 1, &r), TALAS_PLAYLIST_FORBIDDEN);
    expect(st, "mix", "al||t1 ");

    /* the owner shares it with bob: bob may change it, not share it */
    assert_int_equal(talas_playlist_share(st, &fx->lim, "al", "mix", bob, 1, &r), 0);
    assert_int_equal(r.editors_added, 1);
    assert_int_equal(add(fx, "bob", "mix", "t2", &r), 0);
    assert_int_equal(talas_playlist_remove(st, "bob", "mix", "t1", &r), 0);
    assert_int_equal(talas_playlist_share(st, &fx->lim, "bob", "mix", both, 1, &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_int_equal(add(fx, "carol", "mix", "t3", &r), TALAS_PLAYLIST_FORBIDDEN);
    expect(st, "mix", "al|bob |t2 ");

    /* duplicates, existing editors and the owner are skipped */
    assert_int_equal(talas_playlist_share(st, &fx->lim, "al", "mix", both, 4, &r), 0);
    assert_int_equal(r.editors_added, 1);
    expect(st, "mix", "al|bob carol |t2 ");
    assert_int_equal(add(fx, "carol", "mix", "t3", &r), 0);

    /* the backend (no user) may share any playlist */
    assert_int_equal(add(fx, "dan", "dans", "t1", &r), 0);
    assert_int_equal(talas_playlist_share(st, &fx->lim, NULL, "dans", bob, 1, &r), 0);
    assert_int_equal(add(fx, "bob", "dans", "t2", &r), 0);
    assert_int_equal(talas_playlist_share(st, &fx->lim, NULL, "nope", bob, 1, &r), MDB_NOTFOUND);
    assert_string_equal(r.reason, "no such playlist");

    /* a playlist shared with bob is not bob's: he owns none */
    uint64_t count, bytes;
    usage(st, "bob", &count, &bytes);
    assert_int_equal(count, 0);
}

static void test_quota_per_user(void **state)
{
    struct fixture *fx = *state;
    struct talas_playlist_result r;
    char id[32];

    fx->lim.max_per_user = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "al-%d", i);
        assert_int_equal(add(fx, "al", id, "t", &r), 0);
    }
    assert_int_equal(add(fx, "al", "al-3", "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_per_user");
    assert_int_equal(r.refusal.max, 3);
    /* nothing was stored by the refused add */
    struct seen s;
    assert_int_equal(get(fx->st, "al-3", &s), MDB_NOTFOUND);
    /* her existing playlists still grow; another user still creates */
    assert_int_equal(add(fx, "al", "al-0", "t2", &r), 0);
    assert_int_equal(add(fx, "bob", "bob-0", "t", &r), 0);
    /* a user whose name extends hers is counted apart */
    assert_int_equal(add(fx, "al2", "al2-0", "t", &r), 0);
}

static void test_quota_total(void **state)
{
    struct fixture *fx = *state;
    struct talas_playlist_result r;
    char user[32], id[32];
    uint64_t total;
    MDB_txn *txn;

    fx->lim.max_per_user = 2;
    fx->lim.max_total = 5;
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof(user), "u%d", i / 2);
        snprintf(id, sizeof(id), "p%d", i);
        assert_int_equal(add(fx, user, id, "t", &r), 0);
    }
    assert_int_equal(add(fx, "fresh", "p5", "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_total");
    assert_int_equal(r.refusal.max, 5);
    /* the per-user limit names itself first */
    assert_int_equal(add(fx, "u0", "p6", "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_per_user");
    /* adding to an existing playlist is not a new one */
    assert_int_equal(add(fx, "u2", "p4", "t2", &r), 0);
    assert_int_equal(talas_storage_read_begin(fx->st, &txn), 0);
    assert_int_equal(talas_playlist_total(fx->st, txn, &total), 0);
    mdb_txn_abort(txn);
    assert_int_equal(total, 5);
}

static void test_quota_tracks_and_editors(void **state)
{
    struct fixture *fx = *state;
    struct talas_playlist_result r;
    const char *three[] = {"b", "c", "d"}, *two[] = {"b", "c"}, *one[] = {"d"};

    fx->lim.max_tracks = 3;
    fx->lim.max_editors = 2;
    for (int i = 0; i < 3; i++)
        assert_int_equal(add(fx, "al", "pl", "t", &r), 0);
    assert_int_equal(add(fx, "al", "pl", "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_tracks");
    assert_int_equal(r.refusal.max, 3);
    /* a remove frees a place */
    assert_int_equal(talas_playlist_remove(fx->st, "al", "pl", "t", &r), 0);
    assert_int_equal(add(fx, "al", "pl", "u", &r), 0);

    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, "al", "pl", three, 3, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_editors");
    assert_int_equal(r.refusal.max, 2);
    assert_int_equal(r.editors_added, 0);
    expect(fx->st, "pl", "al||t t u ");
    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, "al", "pl", two, 2, &r), 0);
    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, NULL, "pl", one, 1, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_editors");
    /* sharing again with the same users adds nobody, and is no error */
    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, "al", "pl", two, 2, &r), 0);
    assert_int_equal(r.editors_added, 0);
    expect(fx->st, "pl", "al|b c |t t u ");
}

static void test_user_data_budget(void **state)
{
    struct fixture *fx = *state;
    struct talas_playlist_result r;
    const char *bob[] = {"bob"};
    char id[160];
    int i, created = 0;

    /* a few pages: long ids fill them fast */
    fx->lim.user_data_max = 6 * 4096;
    for (i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "%0120d", i);
        if (add(fx, "al", id, "track-of-sixteen", &r) != 0)
            break;
        created++;
    }
    assert_true(i < 1000);
    assert_true(created > 10);
    assert_int_equal(add(fx, "al", "one-more", "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "storage.user_data_max");
    assert_int_equal(r.refusal.max, 6 * 4096);
    /* every growing change is held to it: adds to an existing playlist,
     * shares by the owner or the backend */
    snprintf(id, sizeof(id), "%0120d", 1);
    assert_int_equal(add(fx, "al", id, "t", &r), TALAS_QUOTA_EXCEEDED);
    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, NULL, id, bob, 1, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "storage.user_data_max");
    assert_int_equal(talas_playlist_share(fx->st, &fx->lim, "al", id, bob, 1, &r), TALAS_QUOTA_EXCEEDED);
    /* a remove frees room, and is never refused */
    snprintf(id, sizeof(id), "%0120d", 0);
    assert_int_equal(talas_playlist_remove(fx->st, "al", id, "track-of-sixteen", &r), 0);
    /* a purge brings the room back */
    assert_int_equal(talas_playlist_owner_purge(fx->st, "al", 0, NULL), 0);
    assert_int_equal(add(fx, "bob", "after-purge", "t", &r), 0);
}

static void test_previous_layout(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_result r;
    const char *al[] = {"al"};
    struct seen s;
    uint64_t count, bytes;

    /* what the build before owners stored: NUL-terminated track ids */
    raw_put(st, TALAS_DBI_PLAYLISTS, "old", "t1\0t2\0", 6);
    raw_put(st, TALAS_DBI_PLAYLISTS, "old-empty", "", 0);
    expect(st, "old", "||t1 t2 ");
    expect(st, "old-empty", "|");

    /* owned by nobody: no user may change it, nor share it */
    assert_int_equal(add(fx, "al", "old", "t3", &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_non_null(strstr(r.reason, "no owner"));
    assert_int_equal(talas_playlist_remove(st, "al", "old", "t1", &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_int_equal(talas_playlist_share(st, &fx->lim, "al", "old", al, 1, &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_int_equal(add(fx, "al", "old-empty", "t3", &r), TALAS_PLAYLIST_FORBIDDEN);
    /* until the backend shares it */
    assert_int_equal(talas_playlist_share(st, &fx->lim, NULL, "old", al, 1, &r), 0);
    assert_int_equal(add(fx, "al", "old", "t3", &r), 0);
    assert_int_equal(r.position, 2);
    assert_false(r.created);
    /* still owned by nobody: nobody's count grows */
    expect(st, "old", "|al |t1 t2 t3 ");
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(talas_playlist_share(st, &fx->lim, "al", "old", al, 1, &r), TALAS_PLAYLIST_FORBIDDEN);

    /* a record of neither shape is damaged, neither trusted nor replaced */
    raw_put(st, TALAS_DBI_PLAYLISTS, "bad", "\x02garbage", 8);
    raw_put(st, TALAS_DBI_PLAYLISTS, "bad2", "no-terminator", 13);
    assert_int_equal(get(st, "bad", &s), TALAS_PLAYLIST_DAMAGED);
    assert_int_equal(get(st, "bad2", &s), TALAS_PLAYLIST_DAMAGED);
    assert_int_equal(add(fx, "al", "bad", "t", &r), TALAS_PLAYLIST_REFUSED);
    assert_non_null(strstr(r.reason, "damaged"));
}

static void test_layout_2(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_edit e = edit_none();
    struct talas_playlist_result r;
    const char *editors[] = {"bob"}, *tracks[] = {"t1", "t2", "t3"};
    struct seen_meta m;
    uint64_t count, bytes;
    char ids[256];

    /* what the build before names stored, with its index entry */
    put_layout2(st, "two", "al", editors, 1, tracks, 3);
    {
        MDB_txn *txn;
        MDB_val k = {7, (void *)"al\0two"}, v = {0, (void *)""};
        assert_int_equal(mdb_txn_begin(talas_storage_env(st), NULL, 0, &txn), 0);
        assert_int_equal(mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS_BY_OWNER), &k, &v, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
    }
    expect(st, "two", "al|bob |t1 t2 t3 ");
    meta(st, "two", &m);
    assert_string_equal(m.name, "");
    assert_string_equal(m.comment, "");
    assert_false(m.public_);
    assert_int_equal(m.created_ms, 0);
    assert_int_equal(m.changed_ms, 0);
    assert_int_equal(layout_of(st, "two"), 2);
    list(st, "al", ids);
    assert_string_equal(ids, "two ");
    list(st, "bob", ids);
    assert_string_equal(ids, "two ");
    list(st, "carol", ids);
    assert_string_equal(ids, "");

    /* its next change writes layout 3, keeping what it had */
    e.name = "Named at last";
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", "two", &e, &r), 0);
    assert_int_equal(layout_of(st, "two"), 3);
    expect(st, "two", "al|bob |t1 t2 t3 ");
    meta(st, "two", &m);
    assert_string_equal(m.name, "Named at last");
    assert_int_equal(m.created_ms, 0); /* unknown, and stays so */
    assert_true(m.changed_ms > 0);
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, 1);

    /* a layout 2 or 3 record that lies is damaged */
    raw_put(st, TALAS_DBI_PLAYLISTS, "bad3", "\x03\x00", 2);
    assert_int_equal(get(st, "bad3", &(struct seen){{0}}), TALAS_PLAYLIST_DAMAGED);
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", "bad3", &e, &r), TALAS_PLAYLIST_REFUSED);
}

static void test_edit_delete_list(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_edit e = edit_none();
    struct talas_playlist_result r;
    const char *songs[] = {"a", "b", "c", "d"}, *bob[] = {"bob"};
    const char *name = "<b>\"Mix\"</b> & \xe2\x98\x83";
    uint64_t rm[] = {3, 0, 3}, bad_rm[] = {1, 4};
    struct seen_meta m;
    uint64_t count, bytes, created;
    char ids[256], id[TALAS_PLAYLIST_NEW_ID_LEN + 1], id2[TALAS_PLAYLIST_NEW_ID_LEN + 1];
    char long_name[TALAS_PLAYLIST_NAME_MAX + 2];

    talas_playlist_id_make(id);
    talas_playlist_id_make(id2);
    assert_int_equal(strlen(id), TALAS_PLAYLIST_NEW_ID_LEN);
    assert_string_not_equal(id, id2);

    /* create: the user's, with its details and songs, stored exactly */
    e.create = 1;
    e.name = name;
    e.comment = "line one\nline two";
    e.adds = songs;
    e.add_count = 4;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), 0);
    assert_true(r.created);
    assert_int_equal(r.position, 4);
    expect(st, id, "al||a b c d ");
    meta(st, id, &m);
    assert_string_equal(m.name, name);
    assert_string_equal(m.comment, "line one\nline two");
    assert_false(m.public_);
    assert_true(m.created_ms > 0 && m.changed_ms == m.created_ms);
    created = m.created_ms;
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, 1);
    /* the same id again is refused */
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), TALAS_PLAYLIST_REFUSED);
    assert_ptr_equal(r.reason, talas_playlist_exists);

    /* removes: indexes into the playlist as it was, a repeat counting once */
    e = edit_none();
    e.removes = rm;
    e.remove_count = 3;
    e.adds = songs + 1;
    e.add_count = 1;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), 0);
    assert_int_equal(r.position, 3);
    expect(st, id, "al||b c b ");
    /* an index past the end: refused, nothing changed */
    e = edit_none();
    e.removes = bad_rm;
    e.remove_count = 2;
    e.name = "never";
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), TALAS_PLAYLIST_REFUSED);
    assert_ptr_equal(r.reason, talas_playlist_bad_index);
    expect(st, id, "al||b c b ");
    meta(st, id, &m);
    assert_string_equal(m.name, name);

    /* details: the owner only; tracks: the owner and editors */
    assert_int_equal(talas_playlist_share(st, &fx->lim, "al", id, bob, 1, &r), 0);
    e = edit_none();
    e.public_ = 1;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "bob", id, &e, &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_ptr_equal(r.reason, talas_playlist_forbidden_owner);
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), 0);
    e = edit_none();
    e.replace = 1;
    e.adds = songs + 3;
    e.add_count = 1;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "bob", id, &e, &r), 0);
    expect(st, id, "al|bob |d ");
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "carol", id, &e, &r), TALAS_PLAYLIST_FORBIDDEN);
    meta(st, id, &m);
    assert_true(m.public_);
    assert_int_equal(m.created_ms, created);
    assert_true(m.changed_ms >= created);

    /* bad details refused before anything */
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    e = edit_none();
    e.name = long_name;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), TALAS_PLAYLIST_REFUSED);
    assert_ptr_equal(r.reason, talas_playlist_bad_name);
    e.name = NULL;
    e.comment = "\xff\xfe";
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), TALAS_PLAYLIST_REFUSED);
    assert_ptr_equal(r.reason, talas_playlist_bad_comment);
    /* no such playlist, without create */
    e = edit_none();
    e.name = "x";
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", "nope", &e, &r), MDB_NOTFOUND);
    /* max_tracks holds on the count after */
    fx->lim.max_tracks = 3;
    e = edit_none();
    e.adds = songs;
    e.add_count = 3;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), TALAS_QUOTA_EXCEEDED);
    assert_string_equal(r.refusal.limit, "playlists.max_tracks");
    e.replace = 1;
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "al", id, &e, &r), 0);
    expect(st, id, "al|bob |a b c ");

    /* lists: own, edited, public; a private one of another is not listed */
    e = edit_none();
    e.create = 1;
    e.name = "private";
    assert_int_equal(talas_playlist_edit(st, &fx->lim, "carol", id2, &e, &r), 0);
    list(st, "al", ids);
    assert_non_null(strstr(ids, id));
    assert_null(strstr(ids, id2));
    list(st, "carol", ids);
    assert_non_null(strstr(ids, id)); /* public */
    assert_non_null(strstr(ids, id2));
    list(st, "dave", ids);
    assert_non_null(strstr(ids, id));
    assert_null(strstr(ids, id2));

    /* delete: the owner or the backend */
    assert_int_equal(talas_playlist_delete(st, "bob", id, &r), TALAS_PLAYLIST_FORBIDDEN);
    assert_int_equal(talas_playlist_delete(st, "al", id, &r), 0);
    assert_int_equal(get(st, id, &(struct seen){{0}}), MDB_NOTFOUND);
    assert_int_equal(talas_playlist_delete(st, "al", id, &r), MDB_NOTFOUND);
    assert_ptr_equal(r.reason, talas_playlist_no_such);
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, 0);
    assert_int_equal(talas_playlist_delete(st, NULL, id2, &r), 0);
    usage(st, "carol", &count, &bytes);
    assert_int_equal(count, 0);
    list(st, "carol", ids);
    assert_string_equal(ids, "");
}

static int collect_owner(const char *owner, void *arg)
{
    strcat(arg, owner);
    strcat(arg, " ");
    return 0;
}

static void test_purge_and_counts(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    struct talas_playlist_result r;
    const char *al[] = {"al"};
    uint64_t count, bytes, removed, total;
    char id[32], owners[256] = "";
    MDB_txn *txn;

    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof(id), "al-%d", i);
        assert_int_equal(add(fx, "al", id, "track", &r), 0);
    }
    assert_int_equal(add(fx, "bob", "bob-1", "track", &r), 0);
    assert_int_equal(add(fx, "bob", "bob-2", "track", &r), 0);
    assert_int_equal(add(fx, "a", "a-1", "track", &r), 0);
    /* al edits one of bob's playlists: it stays bob's */
    assert_int_equal(talas_playlist_share(st, &fx->lim, "bob", "bob-1", al, 1, &r), 0);
    assert_int_equal(add(fx, "al", "bob-1", "track2", &r), 0);

    usage(st, "al", &count, &bytes);
    assert_int_equal(count, 7);
    /* each: an index entry, the key and a record with owner and track */
    assert_true(bytes >= 7 * (2 * sizeof("al-0") + 10));
    usage(st, "bob", &count, &bytes);
    assert_int_equal(count, 2);
    usage(st, "nobody", &count, &bytes);
    assert_true(count == 0 && bytes == 0);

    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playlist_foreach_owner(st, txn, collect_owner, owners), 0);
    mdb_txn_abort(txn);
    assert_string_equal(owners, "a al bob ");

    /* in batches of 2: 4 transactions */
    assert_int_equal(talas_playlist_owner_purge(st, "al", 2, &removed), 0);
    assert_int_equal(removed, 7);
    usage(st, "al", &count, &bytes);
    assert_true(count == 0 && bytes == 0);
    struct seen s;
    assert_int_equal(get(st, "al-0", &s), MDB_NOTFOUND);
    /* the others' are untouched, the one al edited included */
    usage(st, "bob", &count, &bytes);
    assert_int_equal(count, 2);
    expect(st, "bob-1", "bob|al |track track2 ");
    expect(st, "a-1", "a||track ");
    assert_int_equal(talas_storage_read_begin(st, &txn), 0);
    assert_int_equal(talas_playlist_total(st, txn, &total), 0);
    owners[0] = '\0';
    assert_int_equal(talas_playlist_foreach_owner(st, txn, collect_owner, owners), 0);
    mdb_txn_abort(txn);
    assert_int_equal(total, 3);
    assert_string_equal(owners, "a bob ");
    /* a purge of nothing is no error */
    assert_int_equal(talas_playlist_owner_purge(st, "al", 0, &removed), 0);
    assert_int_equal(removed, 0);
    /* her quota is free again */
    fx->lim.max_per_user = 1;
    assert_int_equal(add(fx, "al", "al-new", "track", &r), 0);
}

/* With no budget, a flood ends in a full map: each add then fails with
 * MDB_MAP_FULL (which callers log once a minute) and nothing is left half
 * written. Even a purge needs a few pages: once the map has grown a
 * little (talasctl does it), it gives the room back. */
static void test_full_map(void **state)
{
    struct fixture *fx = *state;
    struct talas_playlist_result r;
    struct talas_storage *st;
    char *dir = test_tmpdir("fullmap"), *error, id[160];
    uint64_t count, bytes, removed, more, size;
    int i, rc = 0;

    if (talas_storage_open(dir, 64 * 4096, &st, &error) != 0)
        fail_msg("talas_storage_open: %s", error);
    fx->lim.user_data_max = 0;
    for (i = 0; i < 100000; i++) {
        snprintf(id, sizeof(id), "%0120d", i);
        if ((rc = talas_playlist_add(st, &fx->lim, "al", id, "track-of-sixteen", 0, 0, &r)) != 0)
            break;
    }
    assert_int_equal(rc, MDB_MAP_FULL);
    assert_true(i > 50);
    /* the index and the records agree: the failed add left neither */
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, (uint64_t)i);
    /* the first batches may find pages that earlier commits freed; past
     * them, the purge stops, having counted only what it committed */
    assert_int_equal(talas_playlist_owner_purge(st, "al", 16, &removed), MDB_MAP_FULL);
    assert_true(removed < (uint64_t)i && removed % 16 == 0);
    usage(st, "al", &count, &bytes);
    assert_int_equal(count, (uint64_t)i - removed);
    assert_int_equal(talas_storage_grow(st, 16 * 4096, &size), 0);
    assert_int_equal(size, 80 * 4096);
    assert_int_equal(talas_playlist_owner_purge(st, "al", 16, &more), 0);
    assert_int_equal(removed + more, (uint64_t)i);
    assert_int_equal(talas_playlist_add(st, &fx->lim, "bob", "after", "t", 0, 0, &r), 0);
    talas_storage_close(st);
    test_rm_rf(dir);
    free(dir);
}

/* The table of kinds talasctl users goes through: playlists, playback
 * state, listening sessions, each counted and purged for one user only. */
static void test_user_data_kinds(void **state)
{
    struct fixture *fx = *state;
    struct talas_storage *st = fx->st;
    const struct talas_user_data_kind *k;
    struct talas_playback_result pr;
    struct talas_playlist_result r;
    const char *reason;
    uint64_t count, bytes, removed;
    char users[256];
    MDB_txn *txn;

    assert_int_equal(add(fx, "al", "pl", "t", &r), 0);
    for (uint64_t t = 1000; t < 4000; t += 1000) {
        assert_int_equal(talas_playback_play(st, "al", "track", 60000, 0, 0, "high", "web", t, &pr, &reason),
                         0);
        assert_int_equal(talas_playback_stop(st, "al", "track", t + 500, &pr, &reason), 0);
    }
    assert_int_equal(talas_playback_play(st, "bo", "track", 60000, 0, 0, "high", "web", 9000, &pr, &reason),
                     0);

    assert_null(talas_user_data_kind_find("nope"));
    const char *names[] = {"playlists", "playback", "listening"};
    uint64_t want[] = {1, 1, 3};
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(k = talas_user_data_kind_find(names[i]));
        assert_int_equal(talas_storage_read_begin(st, &txn), 0);
        assert_int_equal(k->usage(st, txn, "al", &count, &bytes), 0);
        users[0] = '\0';
        assert_int_equal(k->foreach_user(st, txn, collect_owner, users), 0);
        mdb_txn_abort(txn);
        assert_int_equal(count, want[i]);
        assert_true(bytes > 0);
        assert_string_equal(users, i == 0 ? "al " : "al bo ");
        assert_int_equal(k->purge(st, "al", &removed), 0);
        assert_int_equal(removed, want[i]);
        assert_int_equal(talas_storage_read_begin(st, &txn), 0);
        assert_int_equal(k->usage(st, txn, "al", &count, &bytes), 0);
        users[0] = '\0';
        assert_int_equal(k->foreach_user(st, txn, collect_owner, users), 0);
        mdb_txn_abort(txn);
        assert_true(count == 0 && bytes == 0);
        assert_string_equal(users, i == 0 ? "" : "bo ");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_by_current_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ownership_and_sharing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_tracks_and_editors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_data_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previous_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_delete_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_data_kinds, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
