/*
 * http_source.c - what the media routes share before they answer: a
 * track's source file as the catalog records it and as it is now, and the
 * preconditions (RFC 9110 section 13.2.2) of a representation.
 *
 * Entry points are declared in http_source.h; their users are
 * http_stream.c (the original file), http_transcode.c, http_hls.c and
 * http_peaks.c. A look-up holds one LMDB read transaction for the time
 * of the look-up only, and its answer is remembered until the next commit
 * (talas_stream_lookup).
 *
 * Every media route opens a track's file the same way and answers the
 * same when it cannot: through media/track_file.c's check (the file
 * opened must be the catalog's resolved path, no symbolic link on the way
 * since the scan), and talas_stream_refuse's 403 or 404, decided before
 * any header. /stream/{id} holds its descriptor in h2o's file cache (the
 * check made once per descriptor: talas_stream_open_cached), and so does
 * a transcode, whose measure and chunks are remembered only when the file
 * is still the one asked for (transcode_jobs.c); the other routes that
 * decode open, check and close here; the transcoder opens the same way
 * again off the loop.
 *
 * Logs: an unreadable catalog record (error), a source file that is gone
 * or leads outside the library (warning).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/catalog.h"
#include "http/http_parse.h"
#include "http/range.h"
#include "http/http_response.h"
#include "http/http_source.h"
#include "media/track_file.h"

/* Strong or weak comparison of one entity tag against a list header. */
static int etag_list_matches(const h2o_iovec_t *list, const char *etag, size_t etag_len, int weak)
{
    return talas_http_etag_match(list->base, list->len, etag, etag_len, weak);
}

/*
 * Evaluates the preconditions of RFC 9110 section 13.2.2 in their order.
 * Returns 0 to go on, or the status (304, 412) to answer with.
 */
int talas_http_preconditions(h2o_req_t *req, const char *etag, size_t etag_len, int64_t mtime)
{
    const h2o_iovec_t *h;
    int64_t t;

    if ((h = talas_http_header(req, H2O_TOKEN_IF_MATCH)) != NULL) {
        if (!etag_list_matches(h, etag, etag_len, 0))
            return 412;
    } else if ((h = talas_http_header(req, H2O_TOKEN_IF_UNMODIFIED_SINCE)) != NULL) {
        if ((t = talas_http_date_parse(h->base, h->len)) != -1 && mtime > t)
            return 412;
    }
    if ((h = talas_http_header(req, H2O_TOKEN_IF_NONE_MATCH)) != NULL) {
        if (etag_list_matches(h, etag, etag_len, 1))
            return 304;
    } else if ((h = talas_http_header(req, H2O_TOKEN_IF_MODIFIED_SINCE)) != NULL) {
        if ((t = talas_http_date_parse(h->base, h->len)) != -1 && mtime <= t)
            return 304;
    }
    return 0;
}

void talas_http_send_precondition(h2o_req_t *req, int status)
{
    static h2o_generator_t none = {NULL, NULL};

    if (status != 304) {
        talas_http_send_error(req, status, "precondition_failed", "a precondition of the request failed");
        return;
    }
    req->res.status = 304;
    req->res.reason = "Not Modified";
    h2o_start_response(req, &none);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/*
 * The catalog's last answers, while the environment has had no commit
 * since (talas_storage_last_txnid): a rescan, a moved or removed track
 * commits, and the next look-up of any id reads LMDB again. A busy
 * track's byte ranges then cost no read transaction and no decode of its
 * whole record each. Per worker process, like h2o's file cache.
 */
#define LOOKUP_SLOTS 64

struct lookup_memo {
    const struct talas_storage *storage;
    size_t txnid;                       /* the read's snapshot; 0: empty */
    char asked[TALAS_TRACK_ID_LEN + 1]; /* the id asked (maybe an alias) */
    char id[TALAS_TRACK_ID_LEN + 1];    /* the track's current id */
    char *path, *mime;                  /* malloc'd */
};

static struct lookup_memo lookups[LOOKUP_SLOTS];

static struct lookup_memo *lookup_slot(const char *id)
{
    uint32_t h = 2166136261u;

    for (const char *p = id; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &lookups[h % LOOKUP_SLOTS];
}

static void lookup_remember(struct lookup_memo *m, const struct talas_storage *st, size_t txnid,
                            const char *asked, const struct talas_track *t)
{
    char *path = strdup(t->path), *mime = strdup(t->mime);

    free(m->path);
    free(m->mime);
    m->txnid = 0;
    m->path = path;
    m->mime = mime;
    if (path == NULL || mime == NULL)
        return; /* not remembered: the next look-up reads again */
    m->storage = st;
    m->txnid = txnid;
    memcpy(m->asked, asked, TALAS_TRACK_ID_LEN + 1);
    memcpy(m->id, t->id, TALAS_TRACK_ID_LEN + 1);
}

int talas_stream_lookup(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                        h2o_iovec_t *mime_r)
{
    struct talas_storage *st = ctx->storage;
    struct lookup_memo *m = lookup_slot(id);
    struct talas_track t;
    MDB_txn *txn;
    int rc;

    if (m->txnid != 0 && m->storage == st && strcmp(m->asked, id) == 0 &&
        m->txnid == talas_storage_last_txnid(st)) {
        memcpy(id, m->id, TALAS_TRACK_ID_LEN + 1);
        *path_r = h2o_strdup(&req->pool, m->path, SIZE_MAX).base;
        *mime_r = h2o_strdup(&req->pool, m->mime, SIZE_MAX);
        return 0;
    }
    if ((rc = talas_storage_read_begin(st, &txn)) != 0) {
        log_error("%s: mdb_txn_begin() failed: %s", __func__, mdb_strerror(rc));
        return -1;
    }
    rc = talas_catalog_resolve(st, txn, id, &t);
    if (rc == 0 && t.error == NULL) {
        lookup_remember(m, st, mdb_txn_id(txn), id, &t);
        memcpy(id, t.id, TALAS_TRACK_ID_LEN + 1);
        *path_r = h2o_strdup(&req->pool, t.path, SIZE_MAX).base;
        *mime_r = h2o_strdup(&req->pool, t.mime, SIZE_MAX);
    } else if (rc == 0) {
        rc = MDB_NOTFOUND; /* a file that failed to probe is not a track */
    } else if (rc != MDB_NOTFOUND) {
        log_error("%s: catalog record of %s unreadable (%d)", __func__, id, rc);
    }
    mdb_txn_abort(txn);
    return rc;
}

void talas_stream_refuse(h2o_req_t *req, const char *id, const char *path, int err)
{
    if (err == ELOOP) {
        log_warn("\"%s\" of track %s leads through a symbolic link since the last scan: refused", path, id);
        talas_http_send_error(req, 403, "outside_library",
                              "the file of this track now leads outside the library; rescan the library");
        return;
    }
    log_warn("open(\"%s\") of track %s failed: %s", path, id,
             err == EINVAL ? "not a regular file" : strerror(err));
    talas_http_send_error(req, 404, "file_missing", "the file of this track is gone; rescan the library");
}

/* The files h2o's file cache holds open whose path was checked (no
 * symbolic link on the way, talas_track_fd_check): the check is one
 * readlink(2) in /proc per request otherwise, for a descriptor the cache
 * keeps for up to a second. A slot matches only the same cache entry, on
 * the same descriptor, of the same file, opened by the same path. */
#define CHECKED_SLOTS 64
static struct checked_fd {
    const h2o_filecache_ref_t *ref;
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t path_hash;
} checked[CHECKED_SLOTS];

static uint64_t path_hash(const char *path)
{
    uint64_t h = 14695981039346656037ull;

    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* 1 when REF was checked for PATH already; else remembers it, to be
 * checked now (a failed check is never remembered: see the caller). */
static int fd_checked(const h2o_filecache_ref_t *ref, const char *path)
{
    struct checked_fd *c = &checked[((uintptr_t)ref / sizeof(void *)) % CHECKED_SLOTS];
    uint64_t h = path_hash(path);

    if (c->ref == ref && c->fd == ref->fd && c->dev == ref->st.st_dev && c->ino == ref->st.st_ino &&
        c->path_hash == h)
        return 1;
    c->ref = NULL; /* set once the check passed */
    return 0;
}

static void fd_check_passed(const h2o_filecache_ref_t *ref, const char *path)
{
    struct checked_fd *c = &checked[((uintptr_t)ref / sizeof(void *)) % CHECKED_SLOTS];

    c->ref = ref;
    c->fd = ref->fd;
    c->dev = ref->st.st_dev;
    c->ino = ref->st.st_ino;
    c->path_hash = path_hash(path);
}

h2o_filecache_ref_t *talas_stream_open_cached(h2o_req_t *req, const char *id, const char *path)
{
    h2o_filecache_ref_t *ref;

    /* opened as talas_track_open opens (never waiting: a FIFO in the
     * library must not hold the loop) and checked the same way, in the
     * file cache that shares descriptors between requests */
    ref = h2o_filecache_open_file(req->conn->ctx->filecache, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (ref == NULL || ref->fd == -1) {
        talas_stream_refuse(req, id, path, ref == NULL ? ENOENT : ref->open_err);
        if (ref != NULL)
            h2o_filecache_close_file(ref);
        return NULL;
    }
    if (!fd_checked(ref, path) && talas_track_fd_check(ref->fd, path) != 0) {
        h2o_filecache_close_file(ref);
        talas_stream_refuse(req, id, path, ELOOP);
        return NULL;
    }
    if (!S_ISREG(ref->st.st_mode)) {
        h2o_filecache_close_file(ref);
        talas_stream_refuse(req, id, path, EINVAL);
        return NULL;
    }
    fd_check_passed(ref, path);
    return ref;
}

/* The common part of talas_stream_source and talas_stream_source_cached:
 * the identity from a fresh open (CACHED 0) or from the file cache. */
static int stream_source(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                         struct talas_cache_source *identity_r, int cached)
{
    h2o_filecache_ref_t *ref;
    h2o_iovec_t mime;
    struct stat sb;
    int rc, fd;

    if ((rc = talas_stream_lookup(ctx, req, id, path_r, &mime)) != 0) {
        if (rc == MDB_NOTFOUND)
            talas_http_send_error(req, 404, "not_found", "no such track");
        else
            talas_http_send_error(req, 500, "storage_error", "the catalog could not be read");
        return -1;
    }
    if (cached) {
        if ((ref = talas_stream_open_cached(req, id, *path_r)) == NULL)
            return -1;
        sb = ref->st;
        h2o_filecache_close_file(ref);
    } else {
        /* the identity of the file opened, not of what the path leads to now */
        if ((fd = talas_track_open(*path_r, &sb)) == -1) {
            talas_stream_refuse(req, id, *path_r, errno);
            return -1;
        }
        close(fd);
    }
    identity_r->size = (uint64_t)sb.st_size;
    identity_r->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    return 0;
}

int talas_stream_source(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                        struct talas_cache_source *identity_r)
{
    return stream_source(ctx, req, id, path_r, identity_r, 0);
}

int talas_stream_source_cached(const struct talas_worker_ctx *ctx, h2o_req_t *req, char *id, char **path_r,
                               struct talas_cache_source *identity_r)
{
    return stream_source(ctx, req, id, path_r, identity_r, 1);
}
