/*
 * group_versions.c - the scanner's grouping of tracks into songs
 * (group_versions.h).
 *
 * Entry point: talas_group_versions (scan.c, after the pruning).
 *
 * One read transaction collects the playable tracks (folder, parsed file
 * name, date), the explicit links and the current track -> song entries;
 * the songs are computed in memory (sorted by folder and base); then the
 * records are rewritten BATCH at a time, one short write transaction
 * each, so that workers writing comments or links are never held up long.
 * A link a worker writes while the pass runs stays (the pass never writes
 * links), and its song records follow it at the latest at the next scan.
 *
 * Logs: nothing (scan.c logs the figures).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "scan/group_versions.h"
#include "store/catalog.h"
#include "store/song_versions.h"
#include "store/version_name.h"

#define BATCH 256

struct entry {
    char id[TALAS_TRACK_ID_LEN + 1];
    char *dir, *name;
    struct talas_version_name vn;
    uint64_t date_ms;
    char link[TALAS_SONG_ID_LEN + 1];   /* "" when none */
    char before[TALAS_SONG_ID_LEN + 1]; /* the song it was in, "" */
    char after[TALAS_SONG_ID_LEN + 1];  /* the song it is in now, "" */
};

struct work {
    struct entry *e;
    size_t n, cap;
    struct talas_storage *st;
    MDB_txn *txn;
};

static int collect(const struct talas_track *t, void *arg)
{
    struct work *w = arg;
    const char *slash;
    struct entry *e;

    if (t->error != NULL || (slash = strrchr(t->path, '/')) == NULL)
        return 0;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->e = xrealloc(w->e, w->cap * sizeof(*w->e));
    }
    e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    if (talas_version_name_parse(slash + 1, strlen(slash + 1), &e->vn) != 0)
        return 0;
    memcpy(e->id, t->id, sizeof(e->id));
    e->dir = xstrndup(t->path, (size_t)(slash - t->path));
    e->name = xstrdup(slash + 1);
    e->date_ms = t->mtime_ns > 0 ? (uint64_t)(t->mtime_ns / 1000000) : 0;
    if (talas_version_link_get(w->st, w->txn, t->id, e->link) != 0)
        e->link[0] = '\0';
    if (talas_track_song_get(w->st, w->txn, t->id, e->before) != 0)
        e->before[0] = '\0';
    w->n++;
    return 0;
}

static int by_group(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int c = strcmp(a->dir, b->dir);

    if (c == 0)
        c = a->vn.key_len != b->vn.key_len ? (a->vn.key_len < b->vn.key_len ? -1 : 1)
                                           : memcmp(a->vn.key, b->vn.key, a->vn.key_len);
    return c;
}

static int by_after(const void *pa, const void *pb)
{
    const struct entry *a = *(const struct entry *const *)pa, *b = *(const struct entry *const *)pb;
    int c = strcmp(a->after, b->after);

    if (c != 0)
        return c;
    if (a->vn.rank != b->vn.rank)
        return a->vn.rank < b->vn.rank ? -1 : 1;
    if (a->date_ms != b->date_ms)
        return a->date_ms < b->date_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Deletes, in batches, the song records no entry is in now. */
static int drop_stale_songs(struct talas_storage *st, struct entry **order, size_t n, char **error_r)
{
    MDB_dbi dbi = talas_storage_dbi(st, TALAS_DBI_SONGS);
    const char **keep = xcalloc(n ? n : 1, sizeof(*keep));
    struct talas_buf keys = {0};
    size_t nk = 0, ngone = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    for (size_t i = 0; i < n; i++)
        if (order[i]->after[0] != '\0')
            keep[nk++] = order[i]->after;
    qsort(keep, nk, sizeof(*keep), by_str);
    if ((rc = talas_storage_read_begin(st, &txn)) != 0)
        goto fail;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char id[TALAS_SONG_ID_LEN + 1];
        const char *p = id;
        if (k.mv_size != TALAS_SONG_ID_LEN)
            continue;
        memcpy(id, k.mv_data, TALAS_SONG_ID_LEN);
        id[TALAS_SONG_ID_LEN] = '\0';
        if (bsearch(&p, keep, nk, sizeof(*keep), by_str) == NULL) {
            talas_buf_append(&keys, id, sizeof(id));
            ngone++;
        }
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    for (size_t i = 0; i < ngone;) {
        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            goto fail;
        for (size_t j = 0; j < BATCH && i < ngone; j++, i++) {
            MDB_val key = {TALAS_SONG_ID_LEN, keys.data + i * (TALAS_SONG_ID_LEN + 1)};
            rc = mdb_del(txn, dbi, &key, NULL);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                mdb_txn_abort(txn);
                goto fail;
            }
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            goto fail;
    }
    free(keep);
    talas_buf_free(&keys);
    return 0;
fail:
    *error_r = xasprintf("versions: removing stale songs failed: %s", mdb_strerror(rc));
    free(keep);
    talas_buf_free(&keys);
    return -1;
}

int talas_group_versions(struct talas_storage *st, size_t *songs_r, size_t *added_r, char **error_r)
{
    struct work w = {0};
    struct entry **order = NULL;
    char **old_songs = NULL;
    size_t n_old = 0;
    int rc, result = -1;

    *songs_r = *added_r = 0;
    w.st = st;
    if ((rc = talas_storage_read_begin(st, &w.txn)) != 0) {
        *error_r = xasprintf("versions: mdb_txn_begin() failed: %s", mdb_strerror(rc));
        return -1;
    }
    rc = talas_catalog_foreach(st, w.txn, collect, &w, NULL);
    mdb_txn_abort(w.txn);
    if (rc != 0) {
        *error_r = xasprintf("versions: reading the catalog failed: %s", mdb_strerror(rc));
        goto out;
    }

    /* the names: a base with two or more files, one of them versioned */
    if (w.n > 1)
        qsort(w.e, w.n, sizeof(*w.e), by_group);
    for (size_t i = 0; i < w.n;) {
        size_t j = i, linked = 0;
        int versioned = 0;
        char id[TALAS_SONG_ID_LEN + 1];
        while (j < w.n && by_group(&w.e[i], &w.e[j]) == 0) {
            versioned |= w.e[j].vn.versioned;
            linked += w.e[j].link[0] != '\0';
            j++;
        }
        if (j - i >= 2 && versioned) {
            talas_song_id_auto(w.e[i].dir, w.e[i].vn.key, id);
            for (size_t k = i; k < j; k++)
                memcpy(w.e[k].after, id, sizeof(id));
        }
        i = j;
    }
    /* the explicit links win */
    for (size_t i = 0; i < w.n; i++)
        if (w.e[i].link[0] != '\0')
            memcpy(w.e[i].after, w.e[i].link, sizeof(w.e[i].link));

    order = xcalloc(w.n ? w.n : 1, sizeof(*order));
    old_songs = xcalloc(w.n ? w.n : 1, sizeof(*old_songs));
    for (size_t i = 0; i < w.n; i++) {
        order[i] = &w.e[i];
        if (w.e[i].before[0] != '\0')
            old_songs[n_old++] = w.e[i].before;
    }
    qsort(order, w.n, sizeof(*order), by_after);
    qsort(old_songs, n_old, sizeof(*old_songs), by_str);
    /* a song whose names were cut down to one version by links is none,
     * unless a link made it */
    for (size_t i = 0; i < w.n;) {
        size_t j = i, links = 0;
        if (order[i]->after[0] == '\0') {
            i++;
            continue;
        }
        while (j < w.n && strcmp(order[j]->after, order[i]->after) == 0)
            links += order[j++]->link[0] != '\0';
        if (j - i < 2 && links == 0)
            order[i]->after[0] = '\0';
        i = j;
    }
    qsort(order, w.n, sizeof(*order), by_after);

    if (drop_stale_songs(st, order, w.n, error_r) != 0)
        goto out;
    for (size_t i = 0; i < w.n;) {
        MDB_txn *txn;
        size_t done = 0;
        if ((rc = talas_storage_write_begin(st, &txn)) != 0)
            goto lmdb_fail;
        while (i < w.n && done < BATCH) {
            struct talas_song song = {0};
            size_t j = i;
            int existed;
            char link[TALAS_SONG_ID_LEN + 1];
            if (order[i]->after[0] == '\0') {
                /* no song: drop a stale track -> song entry, unless a link
                 * written since the read says otherwise */
                if (order[i]->before[0] != '\0' && talas_version_link_get(st, txn, order[i]->id, link) != 0 &&
                    (rc = talas_track_song_set(st, txn, order[i]->id, NULL)) != 0) {
                    mdb_txn_abort(txn);
                    goto lmdb_fail;
                }
                i++;
                done++;
                continue;
            }
            while (j < w.n && strcmp(order[j]->after, order[i]->after) == 0)
                j++;
            {
                const char *p = order[i]->after;
                existed = bsearch(&p, old_songs, n_old, sizeof(*old_songs), by_str) != NULL;
            }
            memcpy(song.id, order[i]->after, sizeof(song.id));
            song.members = xcalloc(j - i, sizeof(*song.members));
            for (size_t k = i; k < j && song.count < TALAS_SONG_MAX_VERSIONS; k++) {
                struct entry *e = order[k];
                struct talas_song_member *m = &song.members[song.count++];
                memcpy(m->track, e->id, sizeof(m->track));
                m->label = e->vn.label;
                m->rank = e->vn.rank;
                m->date_ms = e->date_ms;
                m->explicit_link = e->link[0] != '\0';
                if ((rc = talas_track_song_set(st, txn, e->id, song.id)) != 0)
                    break;
                if (strcmp(e->before, e->after) != 0 && (existed || k > i)) {
                    if ((rc = talas_version_event_append(st, txn, song.id, e->id, e->vn.label)) != 0)
                        break;
                    (*added_r)++;
                }
            }
            if (rc == 0)
                rc = talas_song_put(st, txn, &song);
            talas_song_free(&song);
            if (rc != 0) {
                mdb_txn_abort(txn);
                goto lmdb_fail;
            }
            (*songs_r)++;
            done += j - i;
            i = j;
        }
        if ((rc = mdb_txn_commit(txn)) != 0)
            goto lmdb_fail;
    }
    result = 0;
    goto out;

lmdb_fail:
    *error_r = xasprintf("versions: writing the songs failed: %s", mdb_strerror(rc));
out:
    for (size_t i = 0; i < w.n; i++) {
        free(w.e[i].dir);
        free(w.e[i].name);
    }
    free(w.e);
    free(order);
    free(old_songs);
    return result;
}
