/*
 * state_versions.c - explicit version links (state_versions.h) on the
 * node's LMDB store.
 *
 * Entry point: talas_state_version_link (http_versions.c).
 *
 * One short write transaction: look up the tracks, write the link (two
 * when a song is formed around TO_TRACK, so that the next scan keeps both
 * together), move the track's song records (store/song_versions.c).
 *
 * Logs: storage failures (a full map once a minute).
 */
#include <string.h>

#include "core/util.h"
#include "state/state_versions.h"

static const char no_track[] = "no such track";
static const char no_song[] = "song_id: no such song";
static const char no_to_track[] = "track_id: no such track";
static const char self[] = "track_id: a track is not a version of itself";

void talas_state_version_link(const struct talas_worker_ctx *ctx, const char *track, const char *song,
                              const char *to_track, talas_state_version_fn *cb, void *data)
{
    struct talas_state_version_result r;
    struct talas_storage *st = ctx->storage;
    struct talas_track t, to;
    struct talas_song s;
    char target[TALAS_SONG_ID_LEN + 1], label[16];
    struct talas_song_member m;
    uint64_t now = talas_wall_ms();
    MDB_txn *txn;
    int rc;

    memset(&r, 0, sizeof(r));
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        goto fail;
    rc = talas_catalog_resolve(st, txn, track, &t);
    if (rc == MDB_NOTFOUND || (rc == 0 && t.error != NULL)) {
        r.outcome = TALAS_STATE_NOT_FOUND;
        r.reason = no_track;
        goto refuse;
    }
    if (rc != 0)
        goto fail_txn;
    if (song != NULL) {
        if ((rc = talas_song_get(st, txn, song, &s)) == MDB_NOTFOUND) {
            r.outcome = TALAS_STATE_NOT_FOUND;
            r.reason = no_song;
            goto refuse;
        }
        if (rc != 0)
            goto fail_txn;
        talas_song_free(&s);
        memcpy(target, song, sizeof(target));
    } else {
        rc = talas_catalog_resolve(st, txn, to_track, &to);
        if (rc == MDB_NOTFOUND || (rc == 0 && to.error != NULL)) {
            r.outcome = TALAS_STATE_NOT_FOUND;
            r.reason = no_to_track;
            goto refuse;
        }
        if (rc != 0)
            goto fail_txn;
        if (strcmp(to.id, t.id) == 0) {
            r.outcome = TALAS_STATE_REFUSED;
            r.reason = self;
            goto refuse;
        }
        if ((rc = talas_track_song_get(st, txn, to.id, target)) == MDB_NOTFOUND) {
            talas_song_id_around(to.id, target);
            if ((rc = talas_version_link_put(st, txn, to.id, target, now)) != 0 ||
                (rc = talas_song_move(st, txn, &to, target)) != 0)
                goto fail_txn;
        } else if (rc != 0) {
            goto fail_txn;
        }
    }
    if ((rc = talas_version_link_put(st, txn, t.id, target, now)) != 0 ||
        (rc = talas_song_move(st, txn, &t, target)) != 0)
        goto fail_txn;
    talas_song_member_of(&t, &m, label); /* t points into the map: before the commit */
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail;
    r.outcome = TALAS_STATE_OK;
    r.song = target;
    r.label = label;
    cb(data, &r);
    return;

refuse:
    mdb_txn_abort(txn);
    cb(data, &r);
    return;
fail_txn:
    mdb_txn_abort(txn);
fail:
    talas_storage_log_write_error("versions: linking a track", rc);
    r.outcome = rc == MDB_MAP_FULL ? TALAS_STATE_FULL : TALAS_STATE_FAILED;
    cb(data, &r);
}
