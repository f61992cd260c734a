/*
 * state_playlists.c - playlists behind one interface (state_playlists.h):
 * the dispatch to the worker's backend, and the local one.
 *
 * Entry points: talas_state_playlist_add/remove/share/get/edit/delete/list,
 * talas_state_cancel.
 *
 * The local backend calls store/playlists.c in one short LMDB transaction
 * (as the handlers did before) and completes synchronously: the callback
 * runs before the call returns, which returns NULL. The cluster backend is
 * state_playlists_pg.c, chosen when the worker has a record store
 * (ctx->records, cluster.postgres).
 *
 * Logs: storage failures of the local store (a full map once a minute,
 * talas_storage_log_write_error).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "state/state_playlists.h"
#include "store/playlists.h"

/* Completes a local change: CB hears its outcome (RC with PR) as the
 * interface says it. Returns NULL, as the local backend leaves nothing
 * pending. */
static struct talas_state_op *local_done(int rc, const struct talas_playlist_result *pr, const char *what,
                                         talas_state_playlist_fn *cb, void *data)
{
    struct talas_state_playlist_result r;

    memset(&r, 0, sizeof(r));
    r.position = pr->position;
    r.created = pr->created;
    r.editors_added = pr->editors_added;
    r.reason = pr->reason;
    r.refusal = pr->refusal;
    if (rc == 0)
        r.outcome = TALAS_STATE_OK;
    else if (rc == TALAS_QUOTA_EXCEEDED)
        r.outcome = TALAS_STATE_QUOTA;
    else if (rc == TALAS_PLAYLIST_FORBIDDEN && pr->reason != NULL)
        r.outcome = TALAS_STATE_FORBIDDEN;
    else if (rc == TALAS_PLAYLIST_REFUSED && pr->reason != NULL)
        r.outcome = TALAS_STATE_REFUSED;
    else if (rc == MDB_NOTFOUND && pr->reason != NULL)
        r.outcome = TALAS_STATE_NOT_FOUND;
    else {
        talas_storage_log_write_error(what, rc);
        r.outcome = rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
    }
    cb(data, &r);
    return NULL;
}

struct talas_state_op *talas_state_playlist_add(const struct talas_worker_ctx *ctx, const char *user,
                                                const char *playlist, const char *track, int has_position,
                                                uint64_t position, talas_state_playlist_fn *cb, void *data)
{
    struct talas_playlist_limits lim;
    struct talas_playlist_result pr;
    int rc;

    talas_playlist_limits_of(ctx->conf, &lim);
    if (ctx->records != NULL)
        return talas__state_pg_add(ctx, &lim, user, playlist, track, has_position, position, cb, data);
    rc = talas_playlist_add(ctx->storage, &lim, user, playlist, track, has_position, position, &pr);
    return local_done(rc, &pr, "playlists: adding a track", cb, data);
}

struct talas_state_op *talas_state_playlist_remove(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *playlist, const char *track,
                                                   talas_state_playlist_fn *cb, void *data)
{
    struct talas_playlist_result pr;
    int rc;

    if (ctx->records != NULL)
        return talas__state_pg_remove(ctx, user, playlist, track, cb, data);
    rc = talas_playlist_remove(ctx->storage, user, playlist, track, &pr);
    return local_done(rc, &pr, "playlists: removing a track", cb, data);
}

struct talas_state_op *talas_state_playlist_share(const struct talas_worker_ctx *ctx, const char *user,
                                                  const char *playlist, const char *const *to_users, size_t n,
                                                  talas_state_playlist_fn *cb, void *data)
{
    struct talas_playlist_limits lim;
    struct talas_playlist_result pr;
    int rc;

    talas_playlist_limits_of(ctx->conf, &lim);
    if (ctx->records != NULL)
        return talas__state_pg_share(ctx, &lim, user, playlist, to_users, n, cb, data);
    rc = talas_playlist_share(ctx->storage, &lim, user, playlist, to_users, n, &pr);
    return local_done(rc, &pr, "playlists: sharing", cb, data);
}

struct talas_state_op *talas_state_playlist_edit(const struct talas_worker_ctx *ctx, const char *user,
                                                 const char *playlist, const struct talas_playlist_edit *e,
                                                 talas_state_playlist_fn *cb, void *data)
{
    struct talas_playlist_limits lim;
    struct talas_playlist_result pr;
    int rc;

    talas_playlist_limits_of(ctx->conf, &lim);
    if (ctx->records != NULL)
        return talas__state_pg_edit(ctx, &lim, user, playlist, e, cb, data);
    rc = talas_playlist_edit(ctx->storage, &lim, user, playlist, e, &pr);
    return local_done(rc, &pr, "playlists: editing", cb, data);
}

struct talas_state_op *talas_state_playlist_delete(const struct talas_worker_ctx *ctx, const char *user,
                                                   const char *playlist, talas_state_playlist_fn *cb,
                                                   void *data)
{
    struct talas_playlist_result pr;
    int rc;

    if (ctx->records != NULL)
        return talas__state_pg_delete(ctx, user, playlist, cb, data);
    rc = talas_playlist_delete(ctx->storage, user, playlist, &pr);
    return local_done(rc, &pr, "playlists: deleting", cb, data);
}

/* ----------------------------------------------------------- local read */

struct reading {
    const char *owner;
    struct talas_playlist_meta meta;
    const char **editors, **tracks;
    size_t editor_count, track_count;
};

static void on_owner(const char *owner, void *arg)
{
    ((struct reading *)arg)->owner = owner;
}

static void on_meta(const struct talas_playlist_meta *m, void *arg)
{
    ((struct reading *)arg)->meta = *m;
}

static void reading_to(const struct reading *rd, const char *id, struct talas_state_playlist *p)
{
    p->id = id;
    p->owner = rd->owner;
    p->name = rd->meta.name;
    p->comment = rd->meta.comment;
    p->public_ = rd->meta.public_;
    p->created_ms = rd->meta.created_ms;
    p->changed_ms = rd->meta.changed_ms;
    p->editors = rd->editors;
    p->editor_count = rd->editor_count;
    p->tracks = rd->tracks;
    p->track_count = rd->track_count;
}

static void on_editor(const char *user, size_t index, void *arg)
{
    struct reading *rd = arg;

    (void)index;
    rd->editors = xrealloc(rd->editors, (rd->editor_count + 1) * sizeof(*rd->editors));
    rd->editors[rd->editor_count++] = user;
}

static void on_track(const char *track, size_t index, void *arg)
{
    struct reading *rd = arg;

    (void)index;
    rd->tracks = xrealloc(rd->tracks, (rd->track_count + 1) * sizeof(*rd->tracks));
    rd->tracks[rd->track_count++] = track;
}

struct talas_state_op *talas_state_playlist_get(const struct talas_worker_ctx *ctx, const char *playlist,
                                                talas_state_playlist_fn *cb, void *data)
{
    static const struct talas_playlist_reader reader = {on_owner, on_editor, on_track, on_meta};
    struct talas_state_playlist_result r;
    struct talas_state_playlist p;
    struct reading rd = {"", {"", "", 0, 0, 0}, NULL, NULL, 0, 0};
    MDB_txn *txn;
    int rc;

    if (ctx->records != NULL)
        return talas__state_pg_get(ctx, playlist, cb, data);
    memset(&r, 0, sizeof(r));
    if ((rc = talas_storage_read_begin(ctx->storage, &txn)) != 0) {
        r.outcome = TALAS_STATE_FAILED;
        cb(data, &r);
        return NULL;
    }
    /* the strings point into the map: the callback runs inside the
     * transaction */
    rc = talas_playlist_get(ctx->storage, txn, playlist, &reader, &rd);
    if (rc == 0) {
        reading_to(&rd, playlist, &p);
        r.playlist = &p;
    } else if (rc == MDB_NOTFOUND) {
        r.outcome = TALAS_STATE_NOT_FOUND;
        r.reason = talas_playlist_no_such;
    } else {
        r.outcome = TALAS_STATE_FAILED;
    }
    cb(data, &r);
    mdb_txn_abort(txn);
    free(rd.editors);
    free(rd.tracks);
    return NULL;
}

/* The playlists of a local list, as they are read. */
struct listing {
    struct talas_storage *st;
    MDB_txn *txn;
    struct reading *reads;
    char **ids;
    size_t count;
};

static int list_one(const char *id, size_t len, void *arg)
{
    static const struct talas_playlist_reader reader = {on_owner, on_editor, on_track, on_meta};
    struct listing *l = arg;
    struct reading *rd;
    char *copy = xmalloc(len + 1);

    memcpy(copy, id, len);
    copy[len] = '\0';
    l->reads = xrealloc(l->reads, (l->count + 1) * sizeof(*l->reads));
    l->ids = xrealloc(l->ids, (l->count + 1) * sizeof(*l->ids));
    rd = &l->reads[l->count];
    memset(rd, 0, sizeof(*rd));
    rd->owner = "";
    rd->meta.name = rd->meta.comment = "";
    if (talas_playlist_get(l->st, l->txn, copy, &reader, rd) != 0) {
        free(rd->editors);
        free(rd->tracks);
        free(copy);
        return 0; /* listed by a damaged record: left out */
    }
    l->ids[l->count++] = copy;
    return 0;
}

struct talas_state_op *talas_state_playlist_list(const struct talas_worker_ctx *ctx, const char *user,
                                                 talas_state_playlist_fn *cb, void *data)
{
    struct talas_state_playlist_result r;
    struct talas_state_playlist *ps = NULL;
    struct listing l;
    int rc;

    if (ctx->records != NULL)
        return talas__state_pg_list(ctx, user, cb, data);
    memset(&r, 0, sizeof(r));
    memset(&l, 0, sizeof(l));
    l.st = ctx->storage;
    if ((rc = talas_storage_read_begin(ctx->storage, &l.txn)) != 0) {
        r.outcome = TALAS_STATE_FAILED;
        cb(data, &r);
        return NULL;
    }
    if ((rc = talas_playlist_list(ctx->storage, l.txn, user, list_one, &l)) == 0) {
        ps = xcalloc(l.count + 1, sizeof(*ps));
        for (size_t i = 0; i < l.count; i++)
            reading_to(&l.reads[i], l.ids[i], &ps[i]);
        r.playlists = ps;
        r.playlist_count = l.count;
    } else {
        r.outcome = TALAS_STATE_FAILED;
    }
    cb(data, &r);
    mdb_txn_abort(l.txn);
    for (size_t i = 0; i < l.count; i++) {
        free(l.reads[i].editors);
        free(l.reads[i].tracks);
        free(l.ids[i]);
    }
    free(l.reads);
    free(l.ids);
    free(ps);
    return NULL;
}

void talas_state_cancel(struct talas_state_op *op)
{
    /* the local backend never leaves an operation pending */
    if (op != NULL)
        talas__state_pg_cancel(op);
}
