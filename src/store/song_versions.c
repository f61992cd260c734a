/*
 * song_versions.c - songs and their versions in LMDB (song_versions.h):
 * the records of TALAS_DBI_SONGS, _TRACK_SONGS, _VERSION_LINKS and
 * _VERSION_EVENTS, and the move of one track into a song that an
 * explicit link makes.
 *
 * Entry points: talas_song_get/put/sort/free, talas_song_id_auto/around,
 * talas_track_song_get/set, talas_version_link_get/put,
 * talas_song_member_of, talas_song_move, talas_version_event_append,
 * talas_version_events_after. Logs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/record.h"
#include "core/util.h"
#include "store/song_versions.h"
#include "store/version_name.h"

#define LAYOUT 1

void talas_song_free(struct talas_song *s)
{
    free(s->members);
    s->members = NULL;
    s->count = 0;
}

static int member_cmp(const void *pa, const void *pb)
{
    const struct talas_song_member *a = pa, *b = pb;

    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->date_ms != b->date_ms)
        return a->date_ms < b->date_ms ? -1 : 1;
    return strcmp(a->track, b->track);
}

void talas_song_sort(struct talas_song *s)
{
    if (s->count > 1)
        qsort(s->members, s->count, sizeof(*s->members), member_cmp);
}

void talas_song_id_auto(const char *dir, const char *key, char id_r[TALAS_SONG_ID_LEN + 1])
{
    char *what = xasprintf("song:%s/%s", dir, key);

    /* the library name "" exists nowhere (a library needs a name): no
     * song id is ever a track's */
    talas_track_id_make("", what, id_r);
    free(what);
}

void talas_song_id_around(const char *track, char id_r[TALAS_SONG_ID_LEN + 1])
{
    char *what = xasprintf("song-of:%s", track);

    talas_track_id_make("", what, id_r);
    free(what);
}

static MDB_val key_of(const char *s)
{
    MDB_val k = {strlen(s), (void *)s};
    return k;
}

int talas_song_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_song *s)
{
    struct talas_record_reader r;
    MDB_val k = key_of(id), v;
    uint32_t n;
    int rc;

    memset(s, 0, sizeof(*s));
    if (strlen(id) != TALAS_SONG_ID_LEN)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_SONGS), &k, &v)) != 0)
        return rc;
    memcpy(s->id, id, TALAS_SONG_ID_LEN + 1);
    talas_record_reader_init(&r, v.mv_data, v.mv_size);
    if (talas_record_get_u8(&r) != LAYOUT)
        return -1;
    n = talas_record_get_u32(&r);
    if (talas_record_reader_ok(&r) != 0 || n > TALAS_SONG_MAX_VERSIONS)
        return -1;
    s->members = xcalloc(n ? n : 1, sizeof(*s->members));
    for (uint32_t i = 0; i < n; i++) {
        struct talas_song_member *m = &s->members[i];
        size_t len = 0;
        const char *track = talas_record_get_str(&r, &len);
        m->label = talas_record_get_str(&r, NULL);
        m->rank = talas_record_get_u64(&r);
        m->date_ms = talas_record_get_u64(&r);
        m->explicit_link = talas_record_get_u8(&r) & 1;
        if (track == NULL || m->label == NULL || len != TALAS_TRACK_ID_LEN) {
            talas_song_free(s);
            return -1;
        }
        memcpy(m->track, track, len + 1);
        s->count++;
    }
    if (talas_record_reader_end(&r) != 0) {
        talas_song_free(s);
        return -1;
    }
    return 0;
}

int talas_song_put(struct talas_storage *st, MDB_txn *txn, struct talas_song *s)
{
    struct talas_record_writer w;
    struct talas_buf buf = {0};
    MDB_val k = key_of(s->id), v;
    int rc;

    if (s->count == 0) {
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_SONGS), &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    talas_song_sort(s);
    talas_record_writer_buf(&w, &buf);
    talas_record_put_u8(&w, LAYOUT);
    talas_record_put_u32(&w, (uint32_t)s->count);
    for (size_t i = 0; i < s->count; i++) {
        talas_record_put_str(&w, s->members[i].track);
        talas_record_put_str(&w, s->members[i].label);
        talas_record_put_u64(&w, s->members[i].rank);
        talas_record_put_u64(&w, s->members[i].date_ms);
        talas_record_put_u8(&w, s->members[i].explicit_link ? 1 : 0);
    }
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_SONGS), &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

/* A str record holding one id, read into ID_R. */
static int get_id(MDB_txn *txn, MDB_dbi dbi, const char *key, char id_r[TALAS_SONG_ID_LEN + 1])
{
    struct talas_record_reader r;
    MDB_val k = key_of(key), v;
    const char *s;
    size_t len = 0;
    int rc;

    if ((rc = mdb_get(txn, dbi, &k, &v)) != 0)
        return rc;
    talas_record_reader_init(&r, v.mv_data, v.mv_size);
    s = talas_record_get_str(&r, &len);
    if (s == NULL || len != TALAS_SONG_ID_LEN)
        return -1;
    memcpy(id_r, s, len + 1);
    return 0;
}

int talas_track_song_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                         char song_r[TALAS_SONG_ID_LEN + 1])
{
    return get_id(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_SONGS), track, song_r);
}

int talas_track_song_set(struct talas_storage *st, MDB_txn *txn, const char *track, const char *song)
{
    struct talas_record_writer w;
    struct talas_buf buf = {0};
    MDB_val k = key_of(track), v;
    int rc;

    if (song == NULL) {
        rc = mdb_del(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_SONGS), &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    talas_record_writer_buf(&w, &buf);
    talas_record_put_str(&w, song);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_TRACK_SONGS), &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

int talas_version_link_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                           char song_r[TALAS_SONG_ID_LEN + 1])
{
    return get_id(txn, talas_storage_dbi(st, TALAS_DBI_VERSION_LINKS), track, song_r);
}

int talas_version_link_put(struct talas_storage *st, MDB_txn *txn, const char *track, const char *song,
                           uint64_t now_ms)
{
    struct talas_record_writer w;
    struct talas_buf buf = {0};
    MDB_val k = key_of(track), v;
    int rc;

    talas_record_writer_buf(&w, &buf);
    talas_record_put_str(&w, song);
    talas_record_put_u64(&w, now_ms);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_VERSION_LINKS), &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

void talas_song_member_of(const struct talas_track *t, struct talas_song_member *m, char *label_r)
{
    struct talas_version_name vn;
    const char *slash = strrchr(t->path, '/'), *name = slash != NULL ? slash + 1 : t->path;

    memset(m, 0, sizeof(*m));
    memcpy(m->track, t->id, TALAS_TRACK_ID_LEN + 1);
    label_r[0] = '\0';
    if (talas_version_name_parse(name, strlen(name), &vn) == 0) {
        m->rank = vn.rank;
        memcpy(label_r, vn.label, sizeof(vn.label));
    }
    m->label = label_r;
    m->date_ms = t->mtime_ns > 0 ? (uint64_t)(t->mtime_ns / 1000000) : 0;
}

/* Removes TRACK from song ID (deleted when empty). */
static int song_drop(struct talas_storage *st, MDB_txn *txn, const char *id, const char *track)
{
    struct talas_song s;
    size_t j = 0;
    int rc;

    if ((rc = talas_song_get(st, txn, id, &s)) != 0)
        return rc == MDB_NOTFOUND ? 0 : rc;
    for (size_t i = 0; i < s.count; i++)
        if (strcmp(s.members[i].track, track) != 0)
            s.members[j++] = s.members[i];
    s.count = j;
    rc = talas_song_put(st, txn, &s);
    talas_song_free(&s);
    return rc;
}

int talas_song_move(struct talas_storage *st, MDB_txn *txn, const struct talas_track *t, const char *song)
{
    char old[TALAS_SONG_ID_LEN + 1], label[16];
    struct talas_song s;
    int rc;

    rc = talas_track_song_get(st, txn, t->id, old);
    if (rc == 0 && strcmp(old, song) != 0 && (rc = song_drop(st, txn, old, t->id)) != 0)
        return rc;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    rc = talas_song_get(st, txn, song, &s);
    if (rc == MDB_NOTFOUND) {
        memset(&s, 0, sizeof(s));
        memcpy(s.id, song, TALAS_SONG_ID_LEN + 1);
    } else if (rc != 0) {
        return rc;
    }
    s.members = xrealloc(s.members, (s.count + 1) * sizeof(*s.members));
    {
        size_t j = 0;
        for (size_t i = 0; i < s.count; i++)
            if (strcmp(s.members[i].track, t->id) != 0)
                s.members[j++] = s.members[i];
        s.count = j;
    }
    if (s.count >= TALAS_SONG_MAX_VERSIONS) {
        talas_song_free(&s);
        return MDB_MAP_FULL;
    }
    talas_song_member_of(t, &s.members[s.count], label);
    s.members[s.count].explicit_link = 1;
    s.count++;
    rc = talas_song_put(st, txn, &s);
    talas_song_free(&s);
    if (rc == 0)
        rc = talas_track_song_set(st, txn, t->id, song);
    return rc;
}

int talas_version_event_append(struct talas_storage *st, MDB_txn *txn, const char *song, const char *track,
                               const char *label)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_VERSION_EVENTS);
    struct talas_record_writer w;
    struct talas_buf buf = {0};
    unsigned char kb[8];
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t seq = 1;
    int rc;

    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
        struct talas_record_reader r;
        talas_record_reader_init(&r, k.mv_data, 8);
        seq = talas_record_get_u64be(&r) + 1;
    }
    /* forget the oldest beyond the last TALAS_VERSION_EVENTS_KEPT */
    while (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8) {
        struct talas_record_reader r;
        talas_record_reader_init(&r, k.mv_data, 8);
        if (talas_record_get_u64be(&r) + TALAS_VERSION_EVENTS_KEPT > seq)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    talas_record_writer_mem(&w, kb, sizeof(kb));
    talas_record_put_u64be(&w, seq);
    k.mv_data = kb;
    k.mv_size = sizeof(kb);
    talas_record_writer_buf(&w, &buf);
    talas_record_put_str(&w, song);
    talas_record_put_str(&w, track);
    talas_record_put_str(&w, label);
    v.mv_data = buf.data;
    v.mv_size = buf.len;
    rc = mdb_put(txn, dbi, &k, &v, 0);
    talas_buf_free(&buf);
    return rc;
}

int talas_version_events_after(struct talas_storage *st, MDB_txn *txn, uint64_t after,
                               talas_version_event_fn *fn, void *arg, uint64_t *last_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_VERSION_EVENTS);
    struct talas_record_writer w;
    unsigned char kb[8];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *last_r = after;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    talas_record_writer_mem(&w, kb, sizeof(kb));
    talas_record_put_u64be(&w, after + 1);
    k.mv_data = kb;
    k.mv_size = sizeof(kb);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct talas_record_reader r;
        const char *song, *track, *label;
        uint64_t seq;
        if (k.mv_size != 8)
            continue;
        talas_record_reader_init(&r, k.mv_data, 8);
        seq = talas_record_get_u64be(&r);
        talas_record_reader_init(&r, v.mv_data, v.mv_size);
        song = talas_record_get_str(&r, NULL);
        track = talas_record_get_str(&r, NULL);
        label = talas_record_get_str(&r, NULL);
        *last_r = seq;
        if (fn != NULL && talas_record_reader_end(&r) == 0)
            fn(seq, song, track, label, arg);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
