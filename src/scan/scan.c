/*
 * scan.c - walks the library folders and brings the catalog up to date.
 *
 * Entry point: talas_scan_run().
 *
 * The walk keeps an explicit stack of directories (one directory open at a
 * time, no recursion depth to run out of) and a set of the (device, inode)
 * pairs already walked, so that symlink loops, bind mounts and overlapping
 * library folders terminate and list each file once. Dot-files and
 * dot-directories are skipped. A symlink is followed only when its target
 * resolves inside one of the library folders; a file reached through a
 * symlink is recorded under its resolved path, so it has one id however it
 * is reached. The id is made from the name of the library folder that
 * holds the resolved path (the deepest, when folders nest) and the path
 * relative to that folder's resolved root (store/catalog.h), so it does not
 * depend on where, or through which symlink, the folder is mounted. Before
 * the walk, a catalog of the first id format is moved to these ids once
 * (migrate_ids.c).
 *
 * Each candidate is first looked up in a short read transaction: a record
 * with the same path, size and mtime is left alone (unless it was written
 * before the catalog kept tags: then the file is probed again and its
 * measured analysis kept). Otherwise the file is
 * probed (with no transaction open: probing may take seconds) and the
 * result queued; the queue is written in one write transaction every
 * BATCH_FILES files or BATCH_MS milliseconds, so other writers are never
 * held up long. Files that fail to probe are recorded with their error.
 * At the end, records of files that were not seen are removed, except
 * those under a library folder that is missing right now (an unmounted
 * disk must not empty the catalog).
 *
 * After the walk and the pruning, the tracks are grouped into songs by
 * their file names (group_versions.c); then the analysis pass (analysis.c) measures
 * the loudness and tempo of the tracks that lack them; the status record
 * carries its figures (to analyse, analysed) while it runs.
 *
 * Progress figures: "errors" counts the candidates whose record carries an
 * error, whether probed in this run or unchanged since a previous one, so
 * that it reads the same on every rescan.
 *
 * Logs: start and end of a scan (info), files that fail to probe (info),
 * symlinks not followed (info), missing folders and unreadable directories
 * or entries (warn).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/catalog.h"
#include "core/config.h"
#include "core/log.h"
#include "scan/analysis.h"
#include "scan/group_versions.h"
#include "scan/lrc.h"
#include "scan/migrate_ids.h"
#include "scan/probe.h"
#include "scan/scan.h"
#include "store/lyrics.h"
#include "store/storage.h"
#include "core/util.h"

#define BATCH_FILES 64
#define BATCH_MS 200

/* --------------------------------------------------------------- sets */

/* An open-addressing set of 16-byte keys: track ids, and (device, inode)
 * pairs of walked directories. */
struct keyset {
    unsigned char (*keys)[16];
    unsigned char *used;
    size_t cap, count;
};

static uint64_t hash16(const unsigned char *k)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (int i = 0; i < 16; i++) {
        h ^= k[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static size_t keyset_slot(const struct keyset *s, const unsigned char *key)
{
    size_t i = (size_t)hash16(key) & (s->cap - 1);

    while (s->used[i] && memcmp(s->keys[i], key, 16) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int keyset_has(const struct keyset *s, const void *key)
{
    return s->cap != 0 && s->used[keyset_slot(s, key)];
}

/* Returns 1 when KEY was added, 0 when it was already there. */
static int keyset_add(struct keyset *s, const void *key)
{
    size_t i;

    if (2 * (s->count + 1) > s->cap) {
        struct keyset bigger = {0};
        bigger.cap = s->cap != 0 ? 2 * s->cap : 256;
        bigger.keys = xcalloc(bigger.cap, sizeof(*bigger.keys));
        bigger.used = xcalloc(bigger.cap, 1);
        for (size_t j = 0; j < s->cap; j++) {
            if (!s->used[j])
                continue;
            i = keyset_slot(&bigger, s->keys[j]);
            memcpy(bigger.keys[i], s->keys[j], 16);
            bigger.used[i] = 1;
        }
        bigger.count = s->count;
        free(s->keys);
        free(s->used);
        *s = bigger;
    }
    i = keyset_slot(s, key);
    if (s->used[i])
        return 0;
    memcpy(s->keys[i], key, 16);
    s->used[i] = 1;
    s->count++;
    return 1;
}

static void keyset_free(struct keyset *s)
{
    free(s->keys);
    free(s->used);
    memset(s, 0, sizeof(*s));
}

static void devino_key(const struct stat *sb, unsigned char key[16])
{
    uint64_t dev = (uint64_t)sb->st_dev, ino = (uint64_t)sb->st_ino;

    memcpy(key, &dev, 8);
    memcpy(key + 8, &ino, 8);
}

/* --------------------------------------------------------------- scan */

struct scan {
    const struct talas_config *conf;
    struct talas_storage *st;
    char **roots; /* realpath'd library folders that exist */
    size_t root_count;
    char **missing; /* configured folders that could not be resolved */
    size_t missing_count;
    struct talas_scan_library *libs; /* every configured folder, in order, with its name */
    struct keyset seen;              /* ids of the candidates of this run */
    struct keyset visited;           /* directories walked */
    char **stack;                    /* directories still to walk */
    size_t stack_len, stack_cap;
    MDB_txn *rtxn; /* look-ups; reset between them */
    struct talas_probe_result batch[BATCH_FILES];
    size_t batch_len;
    uint64_t batch_started_ms;
    struct talas_scan_progress p;
    talas_scan_progress_fn progress;
    void *arg;
    char *error; /* set when the run must stop */
    int full;    /* probe every file, changed or not */
};

static void push_dir(struct scan *s, char *path)
{
    if (s->stack_len == s->stack_cap) {
        s->stack_cap = s->stack_cap != 0 ? 2 * s->stack_cap : 64;
        s->stack = xrealloc(s->stack, s->stack_cap * sizeof(*s->stack));
    }
    s->stack[s->stack_len++] = path;
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir);

    return len > 0 && dir[len - 1] == '/' ? xasprintf("%s%s", dir, name) : xasprintf("%s/%s", dir, name);
}

static int under(const char *path, const char *dir)
{
    size_t len = strlen(dir);

    if (len > 0 && dir[len - 1] == '/')
        len--;
    return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static int inside_roots(const struct scan *s, const char *path)
{
    for (size_t i = 0; i < s->root_count; i++)
        if (under(path, s->roots[i]))
            return 1;
    return 0;
}

static int is_candidate(const struct talas_config *conf, const char *name)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < conf->library_extension_count; i++) {
        const char *ext = conf->library_extensions[i];
        size_t elen;

        if (*ext == '.')
            ext++;
        elen = strlen(ext);
        if (elen > 0 && nlen > elen + 1 && name[nlen - elen - 1] == '.' &&
            strcasecmp(name + nlen - elen, ext) == 0)
            return 1;
    }
    return 0;
}

static void fail_lmdb(struct scan *s, const char *call, int rc)
{
    if (s->error == NULL)
        s->error = xasprintf("%s: %s() failed: %s%s", talas_storage_path(s->st), call,
                             rc == -1 ? "damaged record" : mdb_strerror(rc),
                             rc == MDB_MAP_FULL ? " (raise storage.map_size)" : "");
}

static void report(struct scan *s)
{
    if (s->progress != NULL)
        s->progress(&s->p, s->arg);
}

static int flush(struct scan *s)
{
    MDB_txn *txn = NULL;
    int rc = 0;

    if (s->batch_len == 0)
        return 0;
    if ((rc = talas_storage_write_begin(s->st, &txn)) != 0) {
        fail_lmdb(s, "mdb_txn_begin", rc);
        goto out;
    }
    for (size_t i = 0; i < s->batch_len; i++) {
        const struct talas_probe_result *r = &s->batch[i];
        if ((rc = talas_catalog_put(s->st, txn, &r->track)) != 0) {
            fail_lmdb(s, "talas_catalog_put", rc);
            mdb_txn_abort(txn);
            goto out;
        }
        /* an unplayable file keeps no lyrics */
        if (r->lyrics_record.len > 0)
            rc = talas_lyrics_put(s->st, txn, r->track.id, r->lyrics_record.data, r->lyrics_record.len);
        else if ((rc = talas_lyrics_del(s->st, txn, r->track.id)) == MDB_NOTFOUND)
            rc = 0;
        if (rc != 0) {
            fail_lmdb(s, "talas_lyrics_put", rc);
            mdb_txn_abort(txn);
            goto out;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        fail_lmdb(s, "mdb_txn_commit", rc);
out:
    for (size_t i = 0; i < s->batch_len; i++)
        talas_probe_result_free(&s->batch[i]);
    s->batch_len = 0;
    return rc != 0 ? -1 : 0;
}

/* LOOKUP_RETAG: the file is as it was, but its record predates the tags
 * (TALAS_TRACK_TAGS_VERSION), or its lyrics record is missing or was made
 * with another sidecar .lrc (one appeared, changed or went away): probed
 * again, its analysis kept. */
enum lookup { LOOKUP_NEW, LOOKUP_CHANGED, LOOKUP_UNCHANGED, LOOKUP_UNCHANGED_FAILED, LOOKUP_RETAG };

static int lookup(struct scan *s, const char *id, const char *path, uint64_t size, int64_t mtime_ns,
                  const struct talas_lyrics_sidecar *sidecar, enum lookup *result_r,
                  struct talas_track_analysis *keep_r)
{
    struct talas_lyrics_record lyrics;
    struct talas_track t;
    int rc, lrc = 0;

    /* One read transaction, renewed for each look-up: it never pins an
     * old snapshot while files are being probed. */
    if (s->rtxn != NULL && mdb_txn_renew(s->rtxn) != 0) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    if (s->rtxn == NULL && (rc = talas_storage_read_begin(s->st, &s->rtxn)) != 0) {
        s->rtxn = NULL;
        fail_lmdb(s, "mdb_txn_begin", rc);
        return -1;
    }
    rc = talas_catalog_get(s->st, s->rtxn, id, &t);
    memset(keep_r, 0, sizeof(*keep_r));
    if (rc == 0 && !s->full && t.size == size && t.mtime_ns == mtime_ns && strcmp(t.path, path) == 0 &&
        t.error == NULL && t.record_version < TALAS_TRACK_TAGS_VERSION) {
        *result_r = LOOKUP_RETAG;
        /* a measurement stays good (its error string would die with the
         * transaction: a failed one is simply made again) */
        if (!(t.analysis.flags & TALAS_ANALYSIS_FAILED))
            *keep_r = t.analysis;
    } else if (rc == 0 && !s->full && t.size == size && t.mtime_ns == mtime_ns && strcmp(t.path, path) == 0 &&
               t.error == NULL &&
               ((lrc = talas_lyrics_get(s->st, s->rtxn, id, &lyrics)) != 0 ||
                lyrics.sidecar.present != sidecar->present || lyrics.sidecar.size != sidecar->size ||
                lyrics.sidecar.mtime_ns != sidecar->mtime_ns)) {
        *result_r = LOOKUP_RETAG;
        if (!(t.analysis.flags & TALAS_ANALYSIS_FAILED))
            *keep_r = t.analysis;
        if (lrc == MDB_NOTFOUND || lrc == -1)
            lrc = 0;
    } else if (rc == 0 && !s->full && t.size == size && t.mtime_ns == mtime_ns && strcmp(t.path, path) == 0)
        *result_r = t.error != NULL ? LOOKUP_UNCHANGED_FAILED : LOOKUP_UNCHANGED;
    else if (rc == 0 || rc == -1) /* changed, or damaged: probe and rewrite */
        *result_r = LOOKUP_CHANGED;
    else if (rc == MDB_NOTFOUND)
        *result_r = LOOKUP_NEW;
    mdb_txn_reset(s->rtxn);
    if (rc != 0 && rc != -1 && rc != MDB_NOTFOUND) {
        fail_lmdb(s, "mdb_get", rc);
        return -1;
    }
    if (lrc != 0) {
        fail_lmdb(s, "talas_lyrics_get", lrc);
        return -1;
    }
    return 0;
}

/* The sidecar lyrics of the track at PATH: the same name with ".lrc" (or
 * ".LRC") for its extension, in *PATH_R (malloc'd, NULL when there is
 * none) with its identity in *SC_R. Only a regular file counts: a symlink
 * could lead out of the library, a FIFO would block the scan. */
static void find_sidecar(const char *path, char **path_r, struct talas_lyrics_sidecar *sc_r)
{
    static const char *const exts[] = {".lrc", ".LRC"};
    const char *base = strrchr(path, '/'), *dot;
    struct stat sb;
    size_t stem;

    memset(sc_r, 0, sizeof(*sc_r));
    *path_r = NULL;
    base = base != NULL ? base + 1 : path;
    dot = strrchr(base, '.');
    stem = dot != NULL && dot != base ? (size_t)(dot - path) : strlen(path);
    for (size_t i = 0; i < TALAS_ARRAY_SIZE(exts); i++) {
        char *lrc = xasprintf("%.*s%s", (int)stem, path, exts[i]);
        if (lstat(lrc, &sb) == 0 && S_ISREG(sb.st_mode)) {
            sc_r->present = 1;
            sc_r->size = (uint64_t)sb.st_size;
            sc_r->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
            *path_r = lrc;
            return;
        }
        free(lrc);
    }
}

/* The text of the sidecar at PATH into *L_R. Returns 0, or -1 with the
 * reason logged (the lyrics are dropped). */
static int read_sidecar(const char *path, struct talas_lyrics *l_r)
{
    const char *error;
    struct stat sb;
    char *data = NULL;
    size_t got = 0;
    ssize_t n;
    int fd, rc = -1;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1) {
        log_info("%s: lyrics not read: open() failed: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        log_info("%s: lyrics not read: not a regular file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > TALAS_LRC_MAX_BYTES) {
        log_info("%s: lyrics dropped: %lld bytes, more than the %d read", path, (long long)sb.st_size,
                 TALAS_LRC_MAX_BYTES);
        goto out;
    }
    /* one byte more than allowed: a file that grew since fstat is seen */
    data = xmalloc(TALAS_LRC_MAX_BYTES + 1);
    while (got < TALAS_LRC_MAX_BYTES + 1 && (n = read(fd, data + got, TALAS_LRC_MAX_BYTES + 1 - got)) != 0) {
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            log_info("%s: lyrics not read: read() failed: %s", path, strerror(errno));
            goto out;
        }
        got += (size_t)n;
    }
    if (talas_lrc_parse(data, got, l_r, &error) != 0) {
        log_info("%s: lyrics dropped: %s", path, error);
        goto out;
    }
    rc = 0;
out:
    free(data);
    close(fd);
    return rc;
}

/* Makes the lyrics record of the playable track R (at PATH; its sidecar
 * SC at SC_PATH): the sidecar's lyrics, else one set per embedded tag. */
static void make_lyrics(const char *path, const char *sc_path, const struct talas_lyrics_sidecar *sc,
                        struct talas_probe_result *r)
{
    struct talas_lyrics sets[TALAS_LYRICS_SETS_MAX];
    enum talas_lyrics_source source = TALAS_LYRICS_NONE;
    size_t count = 0;

    if (sc_path != NULL && read_sidecar(sc_path, &sets[0]) == 0) {
        if (sets[0].count > 0) {
            count = 1;
            source = TALAS_LYRICS_SIDECAR;
        } else {
            talas_lyrics_free(&sets[0]);
        }
    }
    for (size_t i = 0; source == TALAS_LYRICS_NONE && i < r->lyrics_count && count < TALAS_LYRICS_SETS_MAX;
         i++) {
        struct talas_lyrics *l = &sets[count];
        const char *error;

        if (talas_lrc_parse(r->lyrics[i], strlen(r->lyrics[i]), l, &error) != 0) {
            log_info("%s: embedded lyrics dropped: %s", path, error);
            continue;
        }
        if (l->count == 0) {
            talas_lyrics_free(l);
            continue;
        }
        if (l->lang[0] == '\0' && r->lyrics_lang[i][0] != '\0') {
            free(l->lang);
            l->lang = xstrdup(r->lyrics_lang[i]);
        }
        count++;
    }
    if (count > 0 && source == TALAS_LYRICS_NONE)
        source = TALAS_LYRICS_EMBEDDED;
    talas_lyrics_encode(sc, source, sets, count, &r->lyrics_record);
    for (size_t i = 0; i < count; i++)
        talas_lyrics_free(&sets[i]);
}

static int handle_file(struct scan *s, const char *path, const struct stat *sb)
{
    char id[TALAS_TRACK_ID_LEN + 1];
    uint64_t size = (uint64_t)sb->st_size;
    int64_t mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    struct talas_probe_result *r;
    struct talas_track_analysis keep;
    struct talas_lyrics_sidecar sidecar;
    enum lookup state;
    char *sidecar_path;
    uint64_t now;
    int lib;

    if ((lib = talas_scan_library_of(s->libs, s->conf->library_path_count, path)) == -1)
        return 0; /* the walk only ever reaches files under a root */
    talas_track_id_make(s->libs[lib].name, talas_scan_relative(s->libs[lib].root, path), id);
    /* Reached a second time through a symlink: already handled. */
    if (!keyset_add(&s->seen, id))
        return 0;
    s->p.files++;
    s->p.current = path;

    find_sidecar(path, &sidecar_path, &sidecar);
    if (lookup(s, id, path, size, mtime_ns, &sidecar, &state, &keep) == -1) {
        free(sidecar_path);
        return -1;
    }
    if (state == LOOKUP_UNCHANGED || state == LOOKUP_UNCHANGED_FAILED) {
        s->p.unchanged++;
        if (state == LOOKUP_UNCHANGED_FAILED)
            s->p.errors++;
    } else {
        r = &s->batch[s->batch_len++];
        s->p.probed++;
        if (talas_probe_file(id, path, size, mtime_ns, r) == -1) {
            s->p.errors++;
            log_info("%s: not playable: %s", path, r->track.error);
        } else {
            if (state == LOOKUP_RETAG)
                r->track.analysis = keep;
            make_lyrics(path, sidecar_path, &sidecar, r);
        }
        if (state == LOOKUP_NEW)
            s->p.added++;
        else
            s->p.updated++;
        if (s->batch_len == 1)
            s->batch_started_ms = talas_now_ms();
    }
    free(sidecar_path);

    now = talas_now_ms();
    if (s->batch_len == BATCH_FILES || (s->batch_len > 0 && now - s->batch_started_ms >= BATCH_MS)) {
        if (flush(s) == -1)
            return -1;
    }
    report(s);
    s->p.current = NULL;
    return 0;
}

/* Pushes the directory PATH (taking it over) unless it was walked already. */
static void push_unvisited(struct scan *s, char *path, const struct stat *sb)
{
    unsigned char key[16];

    devino_key(sb, key);
    if (keyset_has(&s->visited, key)) {
        free(path);
        return;
    }
    push_dir(s, path);
}

static int walk_dir(struct scan *s, const char *path)
{
    unsigned char key[16];
    struct dirent *de;
    struct stat sb;
    DIR *dir;
    int fd;

    /* Every directory on the stack is a resolved path: O_NOFOLLOW refuses
     * one that was swapped for a symlink since it was pushed. */
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
        log_warn("%s: open() failed: %s", path, strerror(errno));
        return 0;
    }
    if (fstat(fd, &sb) == -1) {
        log_warn("%s: fstat() failed: %s", path, strerror(errno));
        close(fd);
        return 0;
    }
    devino_key(&sb, key);
    if (!keyset_add(&s->visited, key)) {
        close(fd);
        return 0;
    }
    if ((dir = fdopendir(fd)) == NULL) {
        log_warn("%s: fdopendir() failed: %s", path, strerror(errno));
        close(fd);
        return 0;
    }
    s->p.dirs++;

    for (;;) {
        char *full, *target;

        errno = 0;
        if ((de = readdir(dir)) == NULL) {
            if (errno != 0)
                log_warn("%s: readdir() failed: %s", path, strerror(errno));
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        full = join(path, de->d_name);
        if (fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
            log_warn("%s: fstatat() failed: %s", full, strerror(errno));
            free(full);
            continue;
        }

        if (S_ISDIR(sb.st_mode)) {
            push_unvisited(s, full, &sb);
            continue;
        }
        if (S_ISREG(sb.st_mode)) {
            if (is_candidate(s->conf, de->d_name) && handle_file(s, full, &sb) == -1) {
                free(full);
                break;
            }
            free(full);
            continue;
        }
        if (!S_ISLNK(sb.st_mode)) {
            free(full);
            continue;
        }

        if ((target = realpath(full, NULL)) == NULL) {
            log_warn("%s: symlink not followed: %s", full, strerror(errno));
            free(full);
            continue;
        }
        if (!inside_roots(s, target)) {
            log_info("%s: symlink leads outside the library folders, not followed", full);
        } else if (stat(target, &sb) == -1) {
            log_warn("%s: stat() failed: %s", target, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            push_unvisited(s, target, &sb);
            target = NULL;
        } else if (S_ISREG(sb.st_mode) && is_candidate(s->conf, de->d_name)) {
            if (handle_file(s, target, &sb) == -1) {
                free(target);
                free(full);
                break;
            }
        }
        free(target);
        free(full);
    }
    closedir(dir);
    return s->error != NULL ? -1 : 0;
}

static void resolve_roots(struct scan *s)
{
    const struct talas_config *conf = s->conf;

    s->roots = xcalloc(conf->library_path_count, sizeof(*s->roots));
    s->missing = xcalloc(conf->library_path_count, sizeof(*s->missing));
    s->libs = xcalloc(conf->library_path_count, sizeof(*s->libs));
    for (size_t i = 0; i < conf->library_path_count; i++) {
        const char *path = conf->library_paths[i].path;
        struct stat sb;
        char *real = realpath(path, NULL);

        s->libs[i].configured = path;
        s->libs[i].name = conf->library_paths[i].name;
        if (real == NULL) {
            log_warn("library folder %s: %s, skipped", path, strerror(errno));
            s->missing[s->missing_count++] = xstrdup(path);
            continue;
        }
        if (stat(real, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
            log_warn("library folder %s: not a directory, skipped", path);
            s->missing[s->missing_count++] = real;
            continue;
        }
        s->roots[s->root_count++] = real;
        s->libs[i].root = real; /* owned by roots */
    }
}

static int under_missing_root(const struct scan *s, const char *path)
{
    for (size_t i = 0; i < s->missing_count; i++)
        if (under(path, s->missing[i]))
            return 1;
    return 0;
}

/* Removes the records not seen in this run and counts what remains. */
static int prune(struct scan *s, uint64_t *tracks_r, uint64_t *errors_r)
{
    struct keyset gone = {0}; /* ids to remove */
    char id[TALAS_TRACK_ID_LEN + 1];
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    int rc;

    *tracks_r = 0;
    *errors_r = 0;
    if ((rc = talas_storage_read_begin(s->st, &txn)) != 0) {
        fail_lmdb(s, "mdb_txn_begin", rc);
        goto fail;
    }
    if ((rc = mdb_cursor_open(txn, talas_storage_dbi(s->st, TALAS_DBI_TRACKS), &cur)) != 0) {
        fail_lmdb(s, "mdb_cursor_open", rc);
        goto fail;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        struct talas_track t;
        int ok;

        if (!talas_track_id_valid(key.mv_data, key.mv_size))
            continue;
        ok = talas_track_decode(val.mv_data, val.mv_size, &t) == 0;
        if (keyset_has(&s->seen, key.mv_data) || (ok && under_missing_root(s, t.path))) {
            if (ok && t.error == NULL)
                (*tracks_r)++;
            else if (ok)
                (*errors_r)++;
            continue;
        }
        keyset_add(&gone, key.mv_data);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    mdb_txn_abort(txn);
    txn = NULL;
    if (rc != MDB_NOTFOUND) {
        fail_lmdb(s, "mdb_cursor_get", rc);
        goto fail;
    }

    /* Removed BATCH_FILES at a time, one short write transaction each. */
    for (size_t slot = 0; slot < gone.cap;) {
        size_t n = 0;
        if ((rc = talas_storage_write_begin(s->st, &txn)) != 0) {
            fail_lmdb(s, "mdb_txn_begin", rc);
            goto fail;
        }
        for (; slot < gone.cap && n < BATCH_FILES; slot++) {
            if (!gone.used[slot])
                continue;
            n++;
            memcpy(id, gone.keys[slot], TALAS_TRACK_ID_LEN);
            id[TALAS_TRACK_ID_LEN] = '\0';
            rc = talas_catalog_del(s->st, txn, id);
            if (rc == 0)
                s->p.removed++;
            else if (rc != MDB_NOTFOUND) {
                fail_lmdb(s, "talas_catalog_del", rc);
                goto fail;
            }
        }
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc != 0) {
            fail_lmdb(s, "mdb_txn_commit", rc);
            goto fail;
        }
    }
    keyset_free(&gone);
    return 0;

fail:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    keyset_free(&gone);
    return -1;
}

static int put_status(struct scan *s, const struct talas_scan_status *status)
{
    MDB_txn *txn;
    int rc;

    if ((rc = talas_storage_write_begin(s->st, &txn)) != 0) {
        fail_lmdb(s, "mdb_txn_begin", rc);
        return -1;
    }
    if ((rc = talas_catalog_scan_status_put(s->st, txn, status)) != 0) {
        mdb_txn_abort(txn);
        fail_lmdb(s, "talas_catalog_scan_status_put", rc);
        return -1;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        fail_lmdb(s, "mdb_txn_commit", rc);
        return -1;
    }
    return 0;
}

/* Takes the scan lock of the storage: an flock() on a file beside the
 * data, released by the kernel if the scanner dies. */
static int lock_scan(struct talas_storage *st, int wait, char **error_r)
{
    char *path = xasprintf("%s/scan.lock", talas_storage_path(st));
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);

    if (fd == -1) {
        *error_r = xasprintf("%s: open() failed: %s", path, strerror(errno));
        goto fail;
    }
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) == -1) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK)
            *error_r = xasprintf("another scan is running (%s is locked)", path);
        else
            *error_r = xasprintf("%s: flock() failed: %s", path, strerror(errno));
        close(fd);
        fd = -1;
        goto fail;
    }
    free(path);
    return fd;

fail:
    free(path);
    return -1;
}

static int scan_run(const struct talas_config *conf, struct talas_storage *st, int wait, int full,
                    talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                    char **error_r);

struct analysis_step {
    struct scan *s;
    struct talas_scan_status *status;
};

/* After each batch of the analysis: the caller's progress, and the status
 * record, so that /api/health and talasctl status show how far it is. */
static void on_analysis(const struct talas_analysis_progress *ap, void *arg)
{
    struct analysis_step *as = arg;
    struct scan *s = as->s;

    s->p.analysing = 1;
    s->p.to_analyse = ap->to_analyse;
    s->p.analysed = ap->analysed;
    s->p.analysis_errors = ap->failed;
    as->status->to_analyse = ap->to_analyse;
    as->status->analysed = ap->analysed;
    if (ap->to_analyse > 0)
        put_status(s, as->status); /* a failure here is the next write's too */
    report(s);
}

int talas_scan_run(const struct talas_config *conf, struct talas_storage *st, int wait,
                   talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                   char **error_r)
{
    return scan_run(conf, st, wait, 0, progress, arg, result_r, error_r);
}

int talas_scan_run_full(const struct talas_config *conf, struct talas_storage *st, int wait,
                        talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                        char **error_r)
{
    return scan_run(conf, st, wait, 1, progress, arg, result_r, error_r);
}

static int scan_run(const struct talas_config *conf, struct talas_storage *st, int wait, int full,
                    talas_scan_progress_fn progress, void *arg, struct talas_scan_progress *result_r,
                    char **error_r)
{
    struct talas_scan_status status = {0};
    struct scan s = {0};
    uint64_t started_ms = talas_now_ms();
    MDB_txn *txn;
    int lock_fd, rc = -1;

    if ((lock_fd = lock_scan(st, wait, error_r)) == -1)
        return -1;

    s.conf = conf;
    s.st = st;
    s.full = full;
    s.progress = progress;
    s.arg = arg;

    /* The figures of the previous scan stay visible while this one runs. */
    if (talas_storage_read_begin(st, &txn) == 0) {
        if (talas_catalog_scan_status_get(st, txn, &status) != 0)
            memset(&status, 0, sizeof(status));
        mdb_txn_abort(txn);
    }
    status.running = 1;
    status.pid = (int32_t)getpid();
    status.started_at = (uint64_t)time(NULL);
    status.finished_at = 0;
    status.files = status.added = status.updated = status.removed = status.unchanged = 0;
    status.to_analyse = status.analysed = 0;
    if (put_status(&s, &status) == -1)
        goto fail;

    resolve_roots(&s);
    log_info("scan started: %zu library folder(s)", s.root_count);
    if (talas_scan_migrate_ids(st, s.libs, conf->library_path_count, &s.error) == -1)
        goto fail;

    for (size_t i = 0; i < s.root_count && s.error == NULL; i++) {
        push_dir(&s, xstrdup(s.roots[i]));
        while (s.stack_len > 0 && s.error == NULL) {
            char *dir = s.stack[--s.stack_len];
            walk_dir(&s, dir);
            free(dir);
        }
    }
    if (s.error != NULL || flush(&s) == -1)
        goto fail;
    if (s.rtxn != NULL) {
        mdb_txn_abort(s.rtxn);
        s.rtxn = NULL;
    }
    if (prune(&s, &status.tracks, &status.errors) == -1)
        goto fail;
    {
        size_t songs, added;
        if (talas_group_versions(st, &songs, &added, &s.error) == -1)
            goto fail;
        log_info("scan: %zu song(s) with versions, %zu version(s) added", songs, added);
    }

    {
        struct analysis_step as = {&s, &status};
        status.files = s.p.files;
        status.added = s.p.added;
        status.updated = s.p.updated;
        status.removed = s.p.removed;
        status.unchanged = s.p.unchanged;
        if (talas_analysis_run(conf, st, on_analysis, &as, &s.error) == -1)
            goto fail;
        s.p.analysing = 0;
    }

    status.running = 0;
    status.finished_at = (uint64_t)time(NULL);
    status.files = s.p.files;
    status.added = s.p.added;
    status.updated = s.p.updated;
    status.removed = s.p.removed;
    status.unchanged = s.p.unchanged;
    if (put_status(&s, &status) == -1)
        goto fail;

    log_info("scan finished in %llu ms: %zu files, %zu added, %zu updated, %zu removed, %zu unchanged, "
             "%zu not playable; %llu tracks, %zu analysed",
             (unsigned long long)(talas_now_ms() - started_ms), s.p.files, s.p.added, s.p.updated,
             s.p.removed, s.p.unchanged, s.p.errors, (unsigned long long)status.tracks, s.p.analysed);
    s.p.current = NULL;
    report(&s);
    if (result_r != NULL)
        *result_r = s.p;
    rc = 0;
    goto out;

fail:
    /* Nothing was removed: a failed run never deletes records. Say that it
     * is over, so the status does not read "running" forever. */
    for (size_t i = 0; i < s.batch_len; i++)
        talas_probe_result_free(&s.batch[i]);
    s.batch_len = 0;
    if (s.rtxn != NULL) {
        mdb_txn_abort(s.rtxn);
        s.rtxn = NULL;
    }
    if (s.error == NULL)
        s.error = xstrdup("scan failed");
    status.running = 0;
    status.finished_at = (uint64_t)time(NULL);
    put_status(&s, &status); /* a failure here keeps the first error */
    log_error("scan failed: %s", s.error);
    *error_r = s.error;
    s.error = NULL;
out:
    for (size_t i = 0; i < s.stack_len; i++)
        free(s.stack[i]);
    free(s.stack);
    for (size_t i = 0; i < s.root_count; i++)
        free(s.roots[i]);
    free(s.roots);
    for (size_t i = 0; i < s.missing_count; i++)
        free(s.missing[i]);
    free(s.missing);
    free(s.libs);
    keyset_free(&s.seen);
    keyset_free(&s.visited);
    free(s.error);
    close(lock_fd);
    return rc;
}
