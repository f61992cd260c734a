/*
 * playlists.c - playlists in LMDB (playlists.h): ownership, sharing, the
 * limits on what users store, and the owner index that counts, lists and
 * purges them.
 *
 * Entry points: talas_playlist_add/remove/share/get/edit/delete/list,
 * talas_playlist_id_make, talas_playlist_edit_check,
 * talas_playlist_owner_usage/owner_purge/foreach_owner, talas_playlist_total,
 * talas_playlist_limits_of.
 *
 * Records (the record codec, core/record.h; strings are length-prefixed):
 *   TALAS_DBI_PLAYLISTS          playlist id -> u8 version (3), str owner
 *     ("" for nobody), str name, str comment, u8 public, u64 created_ms,
 *     u64 changed_ms, u32 editor count, str editor..., u32 track count,
 *     str track...
 *   TALAS_DBI_PLAYLISTS_BY_OWNER owner NUL playlist id -> empty
 * The previous layouts are read, and rewritten in the current one by
 * their next change: layout 2 (u8 2, str owner, the editors, the tracks,
 * as layout 3 without the details) reads with no name nor comment,
 * private, times 0; layout 1 (the track ids, each NUL-terminated, and
 * nothing else) as a playlist owned by nobody too, with no editors. A
 * layout 1 record's first byte is a track id's (base64url) or there is
 * none, never a version byte. A record of no known shape is damaged:
 * changes refuse it, readers get TALAS_PLAYLIST_DAMAGED.
 *
 * Limits, checked in each change's write transaction so that concurrent
 * writers in other processes cannot overshoot them: a user's count walks
 * their part of the owner index (stopping at the limit); the global count
 * is the playlists database's entry count (mdb_stat, no walk); the
 * user-data budget is quota.c's. Logs nothing: callers log storage errors
 * (talas_storage_log_write_error), and a refusal is an answer, not an
 * event.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>

#include "core/record.h"
#include "core/util.h"
#include "store/catalog.h"
#include "store/playlists.h"

#define RECORD_VERSION 3
#define RECORD_VERSION_2 2 /* before names, comments, public, times */
#define PURGE_BATCH 256

const char talas_playlist_forbidden_edit[] =
    "forbidden: only the owner of this playlist and the users it is shared with may change it";
const char talas_playlist_forbidden_share[] = "forbidden: only the owner of this playlist may share it";
const char talas_playlist_forbidden_ownerless[] =
    "forbidden: this playlist has no owner (it predates owners); only the backend may share it";
const char talas_playlist_bad_id[] = "playlist_id: must be 1 to 128 bytes long";
const char talas_playlist_bad_user[] = "a playlist needs a user id of 1 to 128 bytes";
const char talas_playlist_bad_position[] = "position: past the end of the playlist";
const char talas_playlist_no_such[] = "no such playlist";
const char talas_playlist_no_track[] = "this track is not in the playlist";
const char talas_playlist_bad_to_users[] = "to_users: user ids are 1 to 128 bytes long";
const char talas_playlist_forbidden_owner[] = "forbidden: only the owner of this playlist may do this";
const char talas_playlist_bad_name[] = "name: must be UTF-8 text of at most 1024 bytes";
const char talas_playlist_bad_comment[] = "comment: must be UTF-8 text of at most 4096 bytes";
const char talas_playlist_bad_index[] = "index: past the end of the playlist";
const char talas_playlist_exists[] = "a playlist of this id exists";
static const char damaged_reason[] = "the stored record of this playlist is damaged";

void talas_playlist_limits_of(const struct talas_config *conf, struct talas_playlist_limits *l)
{
    l->max_per_user = (uint64_t)conf->playlists_max_per_user;
    l->max_tracks = (uint64_t)conf->playlists_max_tracks;
    l->max_total = (uint64_t)conf->playlists_max_total;
    l->max_editors = (uint64_t)conf->playlists_max_editors;
    l->user_data_max = conf->storage_user_data_max;
}

/* ------------------------------------------------------------- records */

/* A decoded playlist; the strings point into the record (or the caller's
 * arguments), the arrays are malloc'd. */
struct playlist {
    const char *owner;
    const char *name, *comment;
    int public_;
    uint64_t created_ms, changed_ms;
    const char **editors;
    size_t editor_count, editor_cap;
    const char **tracks;
    size_t track_count, track_cap;
};

static void push(const char ***list, size_t *count, size_t *cap, const char *s)
{
    if (*count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *list = xrealloc(*list, *cap * sizeof(**list));
    }
    (*list)[(*count)++] = s;
}

static void playlist_free(struct playlist *p)
{
    free(p->editors);
    free(p->tracks);
    memset(p, 0, sizeof(*p));
}

/* Reads COUNT strings into LIST; -1 when the record lies. */
static int decode_list(struct talas_record_reader *rd, const char ***list, size_t *count, size_t *cap)
{
    uint32_t n = talas_record_get_u32(rd);

    /* a string takes at least 5 bytes: a count larger than that cannot be
     * met, and must not size an allocation */
    if (talas_record_reader_ok(rd) != 0 || n > rd->left / 5)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *s = talas_record_get_str(rd, NULL);
        if (s == NULL)
            return -1;
        push(list, count, cap, s);
    }
    return 0;
}

/* Layouts 3 and 2 (VERSION): 2 has no details. */
static int decode_current(const MDB_val *v, struct playlist *p, uint8_t version)
{
    struct talas_record_reader rd;

    talas_record_reader_init(&rd, v->mv_data, v->mv_size);
    p->name = p->comment = "";
    if (talas_record_get_u8(&rd) != version || (p->owner = talas_record_get_str(&rd, NULL)) == NULL)
        return -1;
    if (version == RECORD_VERSION) {
        uint8_t pub;
        if ((p->name = talas_record_get_str(&rd, NULL)) == NULL ||
            (p->comment = talas_record_get_str(&rd, NULL)) == NULL)
            return -1;
        pub = talas_record_get_u8(&rd);
        p->created_ms = talas_record_get_u64(&rd);
        p->changed_ms = talas_record_get_u64(&rd);
        if (talas_record_reader_ok(&rd) != 0 || pub > 1)
            return -1;
        p->public_ = pub;
    }
    if (decode_list(&rd, &p->editors, &p->editor_count, &p->editor_cap) != 0 ||
        decode_list(&rd, &p->tracks, &p->track_count, &p->track_cap) != 0 ||
        talas_record_reader_end(&rd) != 0)
        return -1;
    return 0;
}

/* Layout 1: NUL-terminated track ids, no owner. */
static int decode_legacy(const MDB_val *v, struct playlist *p)
{
    const char *s = v->mv_data;
    size_t off = 0;

    p->owner = p->name = p->comment = "";
    if (v->mv_size > 0 && s[v->mv_size - 1] != '\0')
        return -1;
    while (off < v->mv_size) {
        size_t n = strlen(s + off);
        if (n == 0 || n > TALAS_PLAYLIST_ID_MAX)
            return -1;
        push(&p->tracks, &p->track_count, &p->track_cap, s + off);
        off += n + 1;
    }
    return 0;
}

/* 0 and *P filled, or -1 (P emptied) when the record is damaged. */
static int decode(const MDB_val *v, struct playlist *p)
{
    int rc;

    uint8_t first = v->mv_size > 0 ? ((const unsigned char *)v->mv_data)[0] : 0;

    memset(p, 0, sizeof(*p));
    if (first == RECORD_VERSION || first == RECORD_VERSION_2)
        rc = decode_current(v, p, first);
    else
        rc = decode_legacy(v, p);
    if (rc != 0)
        playlist_free(p);
    return rc;
}

static void encode(const struct playlist *p, struct talas_buf *out)
{
    struct talas_record_writer w;

    talas_record_writer_buf(&w, out);
    talas_record_put_u8(&w, RECORD_VERSION);
    talas_record_put_str(&w, p->owner);
    talas_record_put_str(&w, p->name);
    talas_record_put_str(&w, p->comment);
    talas_record_put_u8(&w, (uint8_t)(p->public_ != 0));
    talas_record_put_u64(&w, p->created_ms);
    talas_record_put_u64(&w, p->changed_ms);
    talas_record_put_u32(&w, (uint32_t)p->editor_count);
    for (size_t i = 0; i < p->editor_count; i++)
        talas_record_put_str(&w, p->editors[i]);
    talas_record_put_u32(&w, (uint32_t)p->track_count);
    for (size_t i = 0; i < p->track_count; i++)
        talas_record_put_str(&w, p->tracks[i]);
}

static int is_editor(const struct playlist *p, const char *user)
{
    for (size_t i = 0; i < p->editor_count; i++)
        if (strcmp(p->editors[i], user) == 0)
            return 1;
    return 0;
}

static int is_owner(const struct playlist *p, const char *user)
{
    return p->owner[0] != '\0' && strcmp(p->owner, user) == 0;
}

/* --------------------------------------------------------------- index */

/* OWNER NUL PLAYLIST into BUF (the caller's, TALAS_PLAYLIST_ID_MAX * 2 + 2
 * bytes); the key's length, or 0 when an id is too long. */
static size_t index_key(char *buf, const char *owner, const char *playlist)
{
    size_t on = strlen(owner), pn = strlen(playlist);

    if (on == 0 || on > TALAS_PLAYLIST_ID_MAX || pn > TALAS_PLAYLIST_ID_MAX)
        return 0;
    memcpy(buf, owner, on + 1);
    memcpy(buf + on + 1, playlist, pn);
    return on + 1 + pn;
}

/*
 * Walks OWNER's part of the index: *count_r gets how many entries there
 * are, stopping at STOP_AT (0: never); with BYTES_R (may be NULL), the
 * bytes of the entries and of the records they name. 0 or an LMDB error.
 */
static int walk_owner(struct talas_storage *st, MDB_txn *txn, const char *owner, uint64_t stop_at,
                      uint64_t *count_r, uint64_t *bytes_r)
{
    MDB_dbi records = talas_storage_dbi(st, TALAS_DBI_PLAYLISTS);
    size_t plen = strlen(owner) + 1;
    uint64_t count = 0, bytes = 0;
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)owner}, v;
    int rc;

    *count_r = 0;
    if (bytes_r != NULL)
        *bytes_r = 0;
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS_BY_OWNER), &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, owner, plen) != 0)
            break;
        count++;
        if (bytes_r != NULL) {
            MDB_val pk = {k.mv_size - plen, (char *)k.mv_data + plen}, pv;
            bytes += k.mv_size + v.mv_size;
            if ((rc = mdb_get(txn, records, &pk, &pv)) == 0)
                bytes += pk.mv_size + pv.mv_size;
            else if (rc != MDB_NOTFOUND)
                break;
        }
        if (stop_at != 0 && count >= stop_at)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    *count_r = count;
    if (bytes_r != NULL)
        *bytes_r = bytes;
    return 0;
}

/* -------------------------------------------------------------- changes */

struct change {
    struct talas_storage *st;
    MDB_txn *txn;
    MDB_val key;
    struct playlist p;
    int exists;
};

/* Begins the write transaction and reads PLAYLIST. 0, or an error with
 * the transaction ended (R->reason set for a damaged record). */
static int change_begin(struct change *c, struct talas_storage *st, const char *playlist,
                        struct talas_playlist_result *r)
{
    MDB_val v;
    int rc;

    memset(c, 0, sizeof(*c));
    c->st = st;
    c->key.mv_size = strlen(playlist);
    c->key.mv_data = (void *)playlist;
    c->p.owner = c->p.name = c->p.comment = "";
    if (c->key.mv_size == 0 || c->key.mv_size > TALAS_PLAYLIST_ID_MAX) {
        r->reason = talas_playlist_bad_id;
        return TALAS_PLAYLIST_REFUSED;
    }
    if ((rc = talas_storage_write_begin(st, &c->txn)) != 0)
        return rc;
    rc = mdb_get(c->txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &c->key, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && decode(&v, &c->p) != 0) {
        r->reason = damaged_reason;
        rc = TALAS_PLAYLIST_REFUSED;
    }
    if (rc != 0) {
        mdb_txn_abort(c->txn);
        return rc;
    }
    c->exists = 1;
    return 0;
}

/* Ends the change: with RC 0, stores the playlist (and, when NEW_OWNER,
 * its index entry) and commits; otherwise aborts. Returns the outcome. */
static int change_end(struct change *c, int rc, int new_owner)
{
    struct talas_buf out = {0};

    if (rc == 0) {
        MDB_val v;
        c->p.changed_ms = talas_wall_ms();
        if (new_owner)
            c->p.created_ms = c->p.changed_ms;
        encode(&c->p, &out);
        v.mv_size = out.len;
        v.mv_data = out.data;
        rc = mdb_put(c->txn, talas_storage_dbi(c->st, TALAS_DBI_PLAYLISTS), &c->key, &v, 0);
    }
    if (rc == 0 && new_owner) {
        char ik[TALAS_PLAYLIST_ID_MAX * 2 + 2];
        MDB_val k = {index_key(ik, c->p.owner, c->key.mv_data), ik}, e = {0, (void *)""};
        rc = k.mv_size == 0
                 ? EINVAL
                 : mdb_put(c->txn, talas_storage_dbi(c->st, TALAS_DBI_PLAYLISTS_BY_OWNER), &k, &e, 0);
    }
    if (rc == 0)
        rc = mdb_txn_commit(c->txn);
    else
        mdb_txn_abort(c->txn);
    talas_buf_free(&out);
    playlist_free(&c->p);
    return rc;
}


/* change_begin for a playlist that must exist: 0, or the outcome with the
 * change ended (MDB_NOTFOUND and R->reason when there is none). */
static int change_existing(struct change *c, struct talas_storage *st, const char *playlist,
                           struct talas_playlist_result *r)
{
    int rc;

    if ((rc = change_begin(c, st, playlist, r)) != 0)
        return rc;
    if (!c->exists) {
        r->reason = talas_playlist_no_such;
        return change_end(c, MDB_NOTFOUND, 0);
    }
    return 0;
}

static int may_edit(const struct change *c, const char *user, struct talas_playlist_result *r)
{
    if (is_owner(&c->p, user) || is_editor(&c->p, user))
        return 1;
    r->reason = c->p.owner[0] == '\0' ? talas_playlist_forbidden_ownerless : talas_playlist_forbidden_edit;
    return 0;
}

/* The limits on a new playlist of USER. */
static int check_create(struct change *c, const struct talas_playlist_limits *lim, const char *user,
                        struct talas_playlist_result *r)
{
    uint64_t owned;
    MDB_stat ms;
    int rc;

    if (strlen(user) == 0 || strlen(user) > TALAS_PLAYLIST_ID_MAX) {
        r->reason = talas_playlist_bad_user;
        return TALAS_PLAYLIST_REFUSED;
    }
    if ((rc = walk_owner(c->st, c->txn, user, lim->max_per_user, &owned, NULL)) != 0)
        return rc;
    if (owned >= lim->max_per_user)
        return talas_quota_refuse(&r->refusal, "playlists.max_per_user", lim->max_per_user);
    if ((rc = mdb_stat(c->txn, talas_storage_dbi(c->st, TALAS_DBI_PLAYLISTS), &ms)) != 0)
        return rc;
    if (ms.ms_entries >= lim->max_total)
        return talas_quota_refuse(&r->refusal, "playlists.max_total", lim->max_total);
    return 0;
}

int talas_playlist_add(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                       const char *playlist, const char *track, int has_position, uint64_t position,
                       struct talas_playlist_result *r)
{
    struct change c;
    size_t at;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_begin(&c, st, playlist, r)) != 0)
        return rc;
    if (!c.exists) {
        if ((rc = check_create(&c, lim, user, r)) != 0)
            return change_end(&c, rc, 0);
        c.p.owner = user;
        r->created = 1;
    } else if (!may_edit(&c, user, r)) {
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    } else if (c.p.track_count >= lim->max_tracks) {
        return change_end(&c, talas_quota_refuse(&r->refusal, "playlists.max_tracks", lim->max_tracks), 0);
    }
    if (has_position && position > c.p.track_count) {
        r->reason = talas_playlist_bad_position;
        return change_end(&c, TALAS_PLAYLIST_REFUSED, 0);
    }
    if ((rc = talas_quota_user_data_check(st, c.txn, lim->user_data_max, &r->refusal)) != 0)
        return change_end(&c, rc, 0);
    at = has_position ? (size_t)position : c.p.track_count;
    push(&c.p.tracks, &c.p.track_count, &c.p.track_cap, track);
    memmove(c.p.tracks + at + 1, c.p.tracks + at, (c.p.track_count - 1 - at) * sizeof(*c.p.tracks));
    c.p.tracks[at] = track;
    r->position = at;
    return change_end(&c, 0, r->created);
}

int talas_playlist_remove(struct talas_storage *st, const char *user, const char *playlist, const char *track,
                          struct talas_playlist_result *r)
{
    struct change c;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_existing(&c, st, playlist, r)) != 0)
        return rc;
    if (!may_edit(&c, user, r))
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    for (size_t i = 0; i < c.p.track_count; i++) {
        char now[TALAS_TRACK_ID_LEN + 1];

        /* an entry stored under a track's former id (before ids became
         * library-relative) is listed, and so removed, by its current id */
        if (strcmp(c.p.tracks[i], track) == 0 ||
            (talas_catalog_alias_get(st, c.txn, c.p.tracks[i], now) == 0 && strcmp(now, track) == 0)) {
            memmove(c.p.tracks + i, c.p.tracks + i + 1, (c.p.track_count - i - 1) * sizeof(*c.p.tracks));
            c.p.track_count--;
            r->position = i;
            return change_end(&c, 0, 0);
        }
    }
    r->reason = talas_playlist_no_track;
    return change_end(&c, TALAS_PLAYLIST_REFUSED, 0);
}

int talas_playlist_share(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                         const char *playlist, const char *const *to_users, size_t n,
                         struct talas_playlist_result *r)
{
    struct change c;
    size_t before;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_existing(&c, st, playlist, r)) != 0)
        return rc;
    if (user != NULL && !is_owner(&c.p, user)) {
        r->reason = c.p.owner[0] == '\0' ? talas_playlist_forbidden_ownerless : talas_playlist_forbidden_share;
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    }
    before = c.p.editor_count;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(to_users[i]);
        if (len == 0 || len > TALAS_PLAYLIST_ID_MAX) {
            r->reason = talas_playlist_bad_to_users;
            return change_end(&c, TALAS_PLAYLIST_REFUSED, 0);
        }
        if (!is_owner(&c.p, to_users[i]) && !is_editor(&c.p, to_users[i]))
            push(&c.p.editors, &c.p.editor_count, &c.p.editor_cap, to_users[i]);
    }
    r->editors_added = c.p.editor_count - before;
    if (r->editors_added == 0) {
        /* nothing new: nothing to write */
        mdb_txn_abort(c.txn);
        playlist_free(&c.p);
        return 0;
    }
    if (c.p.editor_count > lim->max_editors) {
        r->editors_added = 0;
        return change_end(&c, talas_quota_refuse(&r->refusal, "playlists.max_editors", lim->max_editors), 0);
    }
    if ((rc = talas_quota_user_data_check(st, c.txn, lim->user_data_max, &r->refusal)) != 0) {
        r->editors_added = 0;
        return change_end(&c, rc, 0);
    }
    return change_end(&c, 0, 0);
}

void talas_playlist_id_make(char id_r[TALAS_PLAYLIST_NEW_ID_LEN + 1])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char r[TALAS_PLAYLIST_NEW_ID_LEN - 2];
    size_t got = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n <= 0)
            abort(); /* only a broken kernel; a guessable id would be worse */
        got += (size_t)n;
    }
    id_r[0] = 'p';
    id_r[1] = 'l';
    for (size_t i = 0; i < sizeof(r); i++)
        id_r[2 + i] = b64url[r[i] & 63];
    id_r[TALAS_PLAYLIST_NEW_ID_LEN] = '\0';
}

const char *talas_playlist_edit_check(const struct talas_playlist_edit *e)
{
    if (e->name != NULL &&
        (strlen(e->name) > TALAS_PLAYLIST_NAME_MAX || !talas_utf8_valid(e->name, strlen(e->name))))
        return talas_playlist_bad_name;
    if (e->comment != NULL && (strlen(e->comment) > TALAS_PLAYLIST_COMMENT_MAX ||
                               !talas_utf8_valid(e->comment, strlen(e->comment))))
        return talas_playlist_bad_comment;
    return NULL;
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* Applies E's track changes to C's playlist: 0, or a refusal. */
static int edit_tracks(struct change *c, const struct talas_playlist_limits *lim,
                       const struct talas_playlist_edit *e, struct talas_playlist_result *r)
{
    uint64_t *gone = NULL;
    size_t left;

    if (e->replace) {
        c->p.track_count = 0;
    } else if (e->remove_count > 0) {
        for (size_t i = 0; i < e->remove_count; i++)
            if (e->removes[i] >= c->p.track_count) {
                r->reason = talas_playlist_bad_index;
                return TALAS_PLAYLIST_REFUSED;
            }
        gone = xmalloc(e->remove_count * sizeof(*gone));
        memcpy(gone, e->removes, e->remove_count * sizeof(*gone));
        /* from the end, so that each index still means the same entry */
        qsort(gone, e->remove_count, sizeof(*gone), cmp_u64_desc);
        for (size_t i = 0; i < e->remove_count; i++) {
            size_t at = (size_t)gone[i];
            if (i > 0 && gone[i] == gone[i - 1])
                continue;
            memmove(c->p.tracks + at, c->p.tracks + at + 1,
                    (c->p.track_count - at - 1) * sizeof(*c->p.tracks));
            c->p.track_count--;
        }
        free(gone);
    }
    left = c->p.track_count;
    if (e->add_count > 0 && (uint64_t)left + e->add_count > lim->max_tracks)
        return talas_quota_refuse(&r->refusal, "playlists.max_tracks", lim->max_tracks);
    for (size_t i = 0; i < e->add_count; i++)
        push(&c->p.tracks, &c->p.track_count, &c->p.track_cap, e->adds[i]);
    return 0;
}

int talas_playlist_edit(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                        const char *playlist, const struct talas_playlist_edit *e,
                        struct talas_playlist_result *r)
{
    int details = e->name != NULL || e->comment != NULL || e->public_ >= 0;
    int tracks = e->replace || e->add_count > 0 || e->remove_count > 0;
    struct change c;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((r->reason = talas_playlist_edit_check(e)) != NULL)
        return TALAS_PLAYLIST_REFUSED;
    if ((rc = change_begin(&c, st, playlist, r)) != 0)
        return rc;
    if (!c.exists && !e->create) {
        r->reason = talas_playlist_no_such;
        return change_end(&c, MDB_NOTFOUND, 0);
    }
    if (c.exists && e->create) {
        r->reason = talas_playlist_exists;
        return change_end(&c, TALAS_PLAYLIST_REFUSED, 0);
    }
    if (e->create) {
        if (user == NULL) {
            r->reason = talas_playlist_bad_user;
            return change_end(&c, TALAS_PLAYLIST_REFUSED, 0);
        }
        if ((rc = check_create(&c, lim, user, r)) != 0)
            return change_end(&c, rc, 0);
        c.p.owner = user;
        r->created = 1;
    } else if (user != NULL && details && !is_owner(&c.p, user)) {
        r->reason =
            c.p.owner[0] == '\0' ? talas_playlist_forbidden_ownerless : talas_playlist_forbidden_owner;
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    } else if (user != NULL && tracks && !may_edit(&c, user, r)) {
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    }
    if (e->name != NULL)
        c.p.name = e->name;
    if (e->comment != NULL)
        c.p.comment = e->comment;
    if (e->public_ >= 0)
        c.p.public_ = e->public_ != 0;
    if ((rc = edit_tracks(&c, lim, e, r)) != 0)
        return change_end(&c, rc, 0);
    if ((e->create || e->add_count > 0 || e->name != NULL || e->comment != NULL) &&
        (rc = talas_quota_user_data_check(st, c.txn, lim->user_data_max, &r->refusal)) != 0)
        return change_end(&c, rc, 0);
    r->position = c.p.track_count;
    return change_end(&c, 0, r->created);
}

int talas_playlist_delete(struct talas_storage *st, const char *user, const char *playlist,
                          struct talas_playlist_result *r)
{
    struct change c;
    int rc;

    memset(r, 0, sizeof(*r));
    if ((rc = change_existing(&c, st, playlist, r)) != 0)
        return rc;
    if (user != NULL && !is_owner(&c.p, user)) {
        r->reason =
            c.p.owner[0] == '\0' ? talas_playlist_forbidden_ownerless : talas_playlist_forbidden_owner;
        return change_end(&c, TALAS_PLAYLIST_FORBIDDEN, 0);
    }
    rc = mdb_del(c.txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &c.key, NULL);
    if (rc == 0 && c.p.owner[0] != '\0') {
        char ik[TALAS_PLAYLIST_ID_MAX * 2 + 2];
        MDB_val k = {index_key(ik, c.p.owner, c.key.mv_data), ik};
        if (k.mv_size > 0) {
            rc = mdb_del(c.txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS_BY_OWNER), &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    if (rc == 0)
        rc = mdb_txn_commit(c.txn);
    else
        mdb_txn_abort(c.txn);
    playlist_free(&c.p);
    return rc;
}

/* ---------------------------------------------------------------- reads */

int talas_playlist_list(struct talas_storage *st, MDB_txn *txn, const char *user, talas_playlist_id_fn *fn,
                        void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &cur)) != 0)
        return rc;
    /* every playlist, as public ones are not indexed: bounded by
     * playlists.max_total */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct playlist p;
        int shown;

        if (decode(&v, &p) != 0)
            continue;
        shown = p.public_ || is_owner(&p, user) || is_editor(&p, user);
        playlist_free(&p);
        if (shown && (rc = fn(k.mv_data, k.mv_size, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int talas_playlist_get(struct talas_storage *st, MDB_txn *txn, const char *playlist,
                       const struct talas_playlist_reader *rd, void *arg)
{
    MDB_val k = {strlen(playlist), (void *)playlist}, v;
    struct playlist p;
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &k, &v);

    if (rc != 0)
        return rc;
    if (decode(&v, &p) != 0)
        return TALAS_PLAYLIST_DAMAGED;
    if (rd->owner != NULL)
        rd->owner(p.owner, arg);
    if (rd->meta != NULL) {
        struct talas_playlist_meta m = {p.name, p.comment, p.public_, p.created_ms, p.changed_ms};
        rd->meta(&m, arg);
    }
    for (size_t i = 0; rd->editor != NULL && i < p.editor_count; i++)
        rd->editor(p.editors[i], i, arg);
    for (size_t i = 0; rd->track != NULL && i < p.track_count; i++)
        rd->track(p.tracks[i], i, arg);
    playlist_free(&p);
    return 0;
}

int talas_playlist_owner_usage(struct talas_storage *st, MDB_txn *txn, const char *owner, uint64_t *count_r,
                               uint64_t *bytes_r)
{
    return walk_owner(st, txn, owner, 0, count_r, bytes_r);
}

int talas_playlist_total(struct talas_storage *st, MDB_txn *txn, uint64_t *count_r)
{
    MDB_stat ms;
    int rc = mdb_stat(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS), &ms);

    *count_r = rc == 0 ? ms.ms_entries : 0;
    return rc;
}

/* One batch of a purge: up to BATCH of OWNER's playlists and their index
 * entries, in one write transaction. *done_r is set when none is left. */
static int purge_batch(struct talas_storage *st, const char *owner, size_t batch, uint64_t *removed,
                       int *done_r)
{
    MDB_dbi records = talas_storage_dbi(st, TALAS_DBI_PLAYLISTS);
    MDB_dbi by_owner = talas_storage_dbi(st, TALAS_DBI_PLAYLISTS_BY_OWNER);
    size_t plen = strlen(owner) + 1, n = 0;
    uint64_t gone = 0; /* counted once committed */
    struct talas_record_reader rd;
    struct talas_buf keys = {0};
    MDB_txn *txn;
    int rc;

    *done_r = 0;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    /* the keys first: no delete under an open cursor of the same database */
    if ((rc = talas_storage_prefix_keys(txn, by_owner, owner, plen, batch, &keys, &n)) != 0)
        goto fail;
    talas_record_reader_init(&rd, keys.data, keys.len);
    while (rd.left > 0) {
        MDB_val ik, pk, pv;
        struct playlist p;
        ik.mv_data = (void *)talas_record_get_blob(&rd, &ik.mv_size);
        if (talas_record_reader_ok(&rd) != 0) {
            rc = EINVAL; /* our own list: cannot happen */
            goto fail;
        }
        pk.mv_data = (char *)ik.mv_data + plen;
        pk.mv_size = ik.mv_size - plen;
        /* the record goes only if it is still this owner's: an index entry
         * left by a damaged store must not remove another user's playlist */
        rc = mdb_get(txn, records, &pk, &pv);
        if (rc == 0 && decode(&pv, &p) == 0) {
            int mine = strcmp(p.owner, owner) == 0;
            playlist_free(&p);
            if (mine && (rc = mdb_del(txn, records, &pk, NULL)) != 0)
                goto fail;
            gone += mine;
        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            goto fail;
        }
        if ((rc = mdb_del(txn, by_owner, &ik, NULL)) != 0)
            goto fail;
    }
    talas_buf_free(&keys);
    if ((rc = mdb_txn_commit(txn)) != 0)
        return rc;
    *removed += gone;
    *done_r = n < batch;
    return 0;
fail:
    talas_buf_free(&keys);
    mdb_txn_abort(txn);
    return rc;
}

int talas_playlist_owner_purge(struct talas_storage *st, const char *owner, size_t batch, uint64_t *removed_r)
{
    uint64_t removed = 0;
    int rc, done = 0;

    if (batch == 0)
        batch = PURGE_BATCH;
    while (!done)
        if ((rc = purge_batch(st, owner, batch, &removed, &done)) != 0)
            break;
    if (removed_r != NULL)
        *removed_r = removed;
    return done ? 0 : rc;
}

int talas_playlist_foreach_owner(struct talas_storage *st, MDB_txn *txn, talas_playlist_owner_fn *fn,
                                 void *arg)
{
    char owner[TALAS_PLAYLIST_ID_MAX + 2];
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_PLAYLISTS_BY_OWNER), &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const char *nul = memchr(k.mv_data, '\0', k.mv_size);
        size_t on = nul != NULL ? (size_t)(nul - (const char *)k.mv_data) : k.mv_size;

        if (on == 0 || on > TALAS_PLAYLIST_ID_MAX) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* not ours to name */
            continue;
        }
        memcpy(owner, k.mv_data, on);
        owner[on] = '\0';
        if ((rc = fn(owner, arg)) != 0)
            break;
        /* past every key of this owner: OWNER \x01 sorts after OWNER \0 ... */
        owner[on] = '\x01';
        k.mv_size = on + 1;
        k.mv_data = owner;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
