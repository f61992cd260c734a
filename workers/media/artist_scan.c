/*
 * artist_scan.c - an artist's tracks, collected on a pool thread in one
 * catalog read transaction and ordered by album, disc, track number and
 * path (artist_scan.h).
 *
 * Entry points: talas_artist_scan_start, talas_artist_scan_detach.
 *
 * The scan owns itself: the caller only points to it and detaches itself
 * (done = NULL) when it goes away first, and the pool's completion frees
 * it either way. Logs nothing: the caller says what failed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "media/artist_scan.h"
#include "store/storage.h"

struct talas_artist_scan {
    talas_artist_scan_done_fn done; /* NULL once detached */
    void *arg;
    struct talas_storage *st;
    char *artist;
    unsigned flags;
    size_t max;
    struct talas_artist_scan_result res;
    size_t cap;
};

static int collect(const struct talas_track *t, void *arg)
{
    struct talas_artist_scan *s = arg;
    struct talas_artist_scan_result *r = &s->res;
    struct talas_artist_track *x;

    if (t->error != NULL)
        return 0;
    if (!(t->artist != NULL && strcmp(t->artist, s->artist) == 0) &&
        !((s->flags & TALAS_ARTIST_SCAN_ALBUM_ARTIST) && t->album_artist != NULL &&
          strcmp(t->album_artist, s->artist) == 0))
        return 0;
    if (r->count == s->max) {
        r->too_many = 1;
        return 1;
    }
    if (r->count == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        r->tracks = xrealloc(r->tracks, s->cap * sizeof(*r->tracks));
    }
    x = &r->tracks[r->count++];
    memcpy(x->id, t->id, sizeof(x->id));
    x->album = xstrdup(t->album != NULL ? t->album : "");
    x->title = xstrdup(t->title != NULL ? t->title : "");
    x->artist = xstrdup(t->artist != NULL ? t->artist : "");
    x->path = xstrdup(t->path != NULL ? t->path : "");
    x->disc = t->disc_number;
    x->number = t->track_number;
    x->duration_ms = t->duration_ms;
    return 0;
}

static int album_order(const void *a, const void *b)
{
    const struct talas_artist_track *x = a, *y = b;
    int c = strcmp(x->album, y->album);

    if (c != 0)
        return c;
    if (x->disc != y->disc)
        return x->disc < y->disc ? -1 : 1;
    if (x->number != y->number)
        return x->number < y->number ? -1 : 1;
    return strcmp(x->path, y->path);
}

static void scan_free(struct talas_artist_scan *s)
{
    for (size_t i = 0; i < s->res.count; i++) {
        free(s->res.tracks[i].album);
        free(s->res.tracks[i].title);
        free(s->res.tracks[i].artist);
        free(s->res.tracks[i].path);
    }
    free(s->res.tracks);
    free(s->artist);
    free(s);
}

/* Pool thread: one read transaction over the catalog, then the order. */
static void work(void *arg)
{
    struct talas_artist_scan *s = arg;
    MDB_txn *txn;

    if ((s->res.rc = talas_storage_read_begin(s->st, &txn)) != 0)
        return;
    s->res.rc = talas_catalog_foreach(s->st, txn, collect, s, NULL);
    mdb_txn_abort(txn);
    /* no qsort of an empty list: its base would be NULL */
    if (s->res.rc == 0 && !s->res.too_many && s->res.count > 1)
        qsort(s->res.tracks, s->res.count, sizeof(*s->res.tracks), album_order);
}

/* Loop thread: to the caller, unless it is gone. */
static void done(void *arg, int cancelled)
{
    struct talas_artist_scan *s = arg;

    s->res.cancelled = cancelled;
    if (s->done != NULL)
        s->done(s->arg, &s->res);
    scan_free(s);
}

struct talas_artist_scan *talas_artist_scan_start(struct talas_pool *pool, struct talas_storage *st,
                                                  const char *artist, unsigned flags, size_t max,
                                                  talas_artist_scan_done_fn done_fn, void *arg)
{
    struct talas_artist_scan *s = xcalloc(1, sizeof(*s));

    s->done = done_fn;
    s->arg = arg;
    s->st = st;
    s->artist = xstrdup(artist);
    s->flags = flags;
    s->max = max;
    talas_pool_submit(pool, work, done, s, 1);
    return s;
}

void talas_artist_scan_detach(struct talas_artist_scan *s)
{
    s->done = NULL;
}
