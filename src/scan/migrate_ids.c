/*
 * migrate_ids.c - brings a catalog of the first id format (the SHA-256 of
 * the file's absolute path) to library-relative ids (store/catalog.h),
 * once, in the scanner: the master never writes.
 *
 * Entry point: talas_scan_migrate_ids(), called by the scan before it walks.
 *
 * For every track record whose file lies under a library folder, the record
 * moves to its new id and the old id becomes an alias of it (DBI
 * track_aliases), so that URLs, tokens and playlists made with the old id
 * keep working. What hangs on the id moves with it, or is left to the
 * alias:
 *   - moved: the waveform (peaks), the per-track totals and listeners
 *     (playback.c);
 *   - dropped: transcodes cached under the old id (talas_cache_purge); they
 *     are made again, under the new id, on demand;
 *   - left, resolved through the alias by every route that takes a track
 *     id: playlists, playback states and listening sessions (history, in
 *     the users' records), streaming sessions (short-lived).
 * Records go in batches of BATCH_TRACKS per write transaction. A record
 * whose file is under a library folder that is missing right now cannot be
 * given its id yet: the marker (META "track_ids") is then not written and
 * the next scan tries again. A record under no library folder at all is
 * left for the scan to remove, as it would remove it anyway.
 *
 * Logs: how many tracks moved (info), records left for a later scan (warn).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "scan/migrate_ids.h"
#include "store/cache.h"
#include "store/catalog.h"
#include "store/peaks.h"
#include "store/playback.h"

#define BATCH_TRACKS 64

struct move {
    char from[TALAS_TRACK_ID_LEN + 1];
    char to[TALAS_TRACK_ID_LEN + 1];
};

static int under(const char *path, const char *dir)
{
    size_t len = strlen(dir);

    if (len > 0 && dir[len - 1] == '/')
        len--;
    return strncmp(path, dir, len) == 0 && path[len] == '/';
}

int talas_scan_library_of(const struct talas_scan_library *libs, size_t n, const char *path)
{
    int best = -1;

    /* the deepest folder that holds the file: with nested library folders,
     * the id does not depend on which one the walk came through */
    for (size_t i = 0; i < n; i++)
        if (libs[i].root != NULL && under(path, libs[i].root) &&
            (best == -1 || strlen(libs[i].root) > strlen(libs[best].root)))
            best = (int)i;
    return best;
}

const char *talas_scan_relative(const char *root, const char *path)
{
    size_t len = strlen(root);

    if (len > 0 && root[len - 1] == '/')
        len--;
    return path + len + 1;
}

/* Moves one track in TXN. */
static int move_one(struct talas_storage *st, MDB_txn *txn, const struct move *m)
{
    struct talas_track t, now;
    int rc;

    if ((rc = talas_catalog_get(st, txn, m->from, &t)) != 0)
        return rc == MDB_NOTFOUND || rc == -1 ? 0 : rc; /* gone meanwhile, or damaged: the scan redoes it */
    rc = talas_catalog_get(st, txn, m->to, &now);
    if (rc == MDB_NOTFOUND || rc == -1) {
        /* the record's strings point into the map, which the writes below
         * change: encode a copy first (talas_catalog_put does) */
        struct talas_track moved = t;
        char *path = xstrdup(t.path), *title = xstrdup(t.title), *artist = xstrdup(t.artist),
             *album = xstrdup(t.album), *codec = xstrdup(t.codec), *container = xstrdup(t.container),
             *mime = xstrdup(t.mime), *error = t.error != NULL ? xstrdup(t.error) : NULL;

        memcpy(moved.id, m->to, sizeof(moved.id));
        moved.path = path;
        moved.title = title;
        moved.artist = artist;
        moved.album = album;
        moved.codec = codec;
        moved.container = container;
        moved.mime = mime;
        moved.error = error;
        rc = talas_catalog_del(st, txn, m->from);
        if (rc == 0)
            rc = talas_catalog_put(st, txn, &moved);
        free(path);
        free(title);
        free(artist);
        free(album);
        free(codec);
        free(container);
        free(mime);
        free(error);
    } else if (rc == 0) {
        rc = talas_catalog_del(st, txn, m->from); /* scanned under its new id already */
    }
    if (rc == 0)
        rc = talas_catalog_alias_put(st, txn, m->from, m->to);
    if (rc == 0)
        rc = talas_peaks_move(st, txn, m->from, m->to);
    if (rc == 0)
        rc = talas_playback_track_move(st, txn, m->from, m->to);
    return rc;
}

int talas_scan_migrate_ids(struct talas_storage *st, const struct talas_scan_library *libs, size_t n,
                           char **error_r)
{
    struct move *moves = NULL;
    size_t count = 0, cap = 0, pending = 0;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    const char *call = "mdb_txn_begin";
    int rc, migrated;

    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto fail;
    migrated = talas_catalog_ids_migrated(st, txn);
    if (migrated != 0) {
        mdb_txn_abort(txn);
        if (migrated == 1)
            return 0;
        *error_r = xasprintf("%s: the \"track_ids\" record is damaged", talas_storage_path(st));
        return -1;
    }

    call = "mdb_cursor_get";
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(st, TALAS_DBI_TRACKS), &cur)) != 0)
        goto fail;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct talas_track t;
        int lib;

        if (!talas_track_id_valid(key.mv_data, key.mv_size) ||
            talas_track_decode(val.mv_data, val.mv_size, &t) != 0)
            continue;
        if ((lib = talas_scan_library_of(libs, n, t.path)) == -1) {
            for (size_t i = 0; i < n; i++)
                if (libs[i].root == NULL && under(t.path, libs[i].configured))
                    pending++;
            continue;
        }
        if (count == cap) {
            cap = cap != 0 ? 2 * cap : 256;
            moves = xrealloc(moves, cap * sizeof(*moves));
        }
        memcpy(moves[count].from, t.id, sizeof(moves[count].from));
        talas_track_id_make(libs[lib].name, talas_scan_relative(libs[lib].root, t.path), moves[count].to);
        if (strcmp(moves[count].from, moves[count].to) != 0)
            count++;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    txn = NULL;
    if (rc != MDB_NOTFOUND)
        goto fail;

    /* the marker goes in with the last batch, or alone when nothing moves */
    for (size_t i = 0; count > 0 || pending == 0;) {
        call = "mdb_txn_begin";
        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            goto fail;
        call = "a track's move";
        for (size_t end = i + BATCH_TRACKS; i < count && i < end; i++)
            if ((rc = move_one(st, txn, &moves[i])) != 0)
                goto fail;
        call = "talas_catalog_ids_mark";
        if (i == count && pending == 0 && (rc = talas_catalog_ids_mark(st, txn)) != 0)
            goto fail;
        call = "mdb_txn_commit";
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc != 0)
            goto fail;
        if (i == count)
            break;
    }
    /* transcodes are made again under the new id on demand: the old ones
     * would only take room until the LRU reached them */
    for (size_t i = 0; i < count; i++) {
        struct talas_cache_purge_result purged;
        talas_cache_purge(st, moves[i].from, NULL, NULL, &purged);
    }
    if (count > 0)
        log_info("track ids: %zu track(s) moved to library-relative ids, their former ids kept as aliases",
                 count);
    if (pending > 0)
        log_warn("track ids: %zu track(s) under a missing library folder keep their former ids until a scan "
                 "finds the folder",
                 pending);
    free(moves);
    return 0;

fail:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    free(moves);
    *error_r = xasprintf("%s: track ids: %s failed: %s%s", talas_storage_path(st), call,
                         rc == -1 ? "damaged record" : mdb_strerror(rc),
                         rc == MDB_MAP_FULL ? " (raise storage.map_size)" : "");
    return -1;
}
