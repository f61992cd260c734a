/*
 * state_playlists.c - playlists behind one interface (state_playlists.h):
 * the dispatch to the worker's backend, and the local one.
 *
 * Entry points: talas_state_playlist_add/remove/share/get,
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

/* ----------------------------------------------------------- local read */

struct reading {
    const char *owner;
    const char **editors, **tracks;
    size_t editor_count, track_count;
};

static void on_owner(const char *owner, void *arg)
{
    ((struct reading *)arg)->owner = owner;
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
    static const struct talas_playlist_reader reader = {on_owner, on_editor, on_track};
    struct talas_state_playlist_result r;
    struct talas_state_playlist p;
    struct reading rd = {"", NULL, NULL, 0, 0};
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
        p.owner = rd.owner;
        p.editors = rd.editors;
        p.editor_count = rd.editor_count;
        p.tracks = rd.tracks;
        p.track_count = rd.track_count;
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

void talas_state_cancel(struct talas_state_op *op)
{
    /* the local backend never leaves an operation pending */
    if (op != NULL)
        talas__state_pg_cancel(op);
}
