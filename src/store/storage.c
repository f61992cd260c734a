/*
 * storage.c - opens the LMDB environment and its named databases.
 *
 * Entry points: talas_storage_open() / talas_storage_close(), the accessors
 * talas_storage_env(), talas_storage_dbi() and talas_storage_path(), the
 * transaction helpers talas_storage_read_begin() / talas_storage_write_begin(),
 * the clean-up helpers talas_storage_grow() (room to delete in a full map)
 * and talas_storage_compact() (offline), the read-only checks
 * talas_storage_check() and talas_storage_reader_check() that the master
 * uses, the guard talas_storage_forbid_writes() /
 * talas_storage_allow_writes(), and the META counters.
 *
 * Every write transaction of src/store/ begins in txn_begin() here, so the
 * guard is one test on one path. It is on in every build: a master that
 * writes could wait on a worker's writer lock, and the abort says so at
 * once instead of as a stall under load.
 *
 * Logs only through talas_storage_log_write_error(), which keeps a full map
 * to one line per interval; otherwise open errors come back to the caller as a message that
 * names the path and the LMDB call that failed, and the caller decides
 * whether that is fatal. A write after talas_storage_forbid_writes() is a
 * panic() (abort) naming the call and the path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/log.h"
#include "core/record.h"
#include "store/storage.h"
#include "core/util.h"

/* Every process opens the environment with the same limits: the first
 * opener sizes the lock file's reader table (maxreaders), and a process
 * with a smaller maxdbs could not open every named database.
 *
 * One reader slot per concurrent read transaction across all processes:
 * with MDB_NOTLS each request in flight in each worker may hold one, and a
 * response served from the transcode cache holds its transaction until the
 * client has read it (slow clients included). 8192 slots cost 512 KiB of
 * lock file (64 bytes each) and nothing per transaction: LMDB only scans
 * the slots used so far. Running out would fail requests with
 * MDB_READERS_FULL. */
#define STORAGE_MAX_READERS 8192
/* room for the DBIs of branches merged side by side (TALAS_DBI_COUNT is
 * checked against it at build time) */
#define STORAGE_MAX_DBS 64

/* Set by talas_storage_forbid_writes (the master). */
static int writes_forbidden;

struct talas_storage {
    MDB_env *env;
    MDB_dbi dbi[TALAS_DBI_COUNT];
    char *path;
};

/* Indexed by enum talas_dbi: a module that appends a database there adds
 * its name here, and the assertion catches the one that forgets. */
static const char *const dbi_names[] = {
    [TALAS_DBI_TRACKS] = "tracks",
    [TALAS_DBI_TRACK_PATHS] = "track_paths",
    [TALAS_DBI_META] = "meta",
    [TALAS_DBI_CACHE_CHUNKS] = "cache_chunks",
    [TALAS_DBI_CACHE_ENTRIES] = "cache_entries",
    [TALAS_DBI_CACHE_LRU] = "cache_lru",
    [TALAS_DBI_CACHE_CLAIMS] = "cache_claims",
    [TALAS_DBI_SESSIONS] = "sessions",
    [TALAS_DBI_PLAYBACK] = "playback",
    [TALAS_DBI_LISTEN_SESSIONS] = "listen_sessions",
    [TALAS_DBI_TRACK_PLAYS] = "track_plays",
    [TALAS_DBI_TRACK_LISTENERS] = "track_listeners",
    [TALAS_DBI_PLAYLISTS] = "playlists",
    [TALAS_DBI_PEAKS] = "peaks",
    [TALAS_DBI_SESSIONS_BY_OWNER] = "sessions_by_owner",
    [TALAS_DBI_USER_SETTINGS] = "user_settings",
    [TALAS_DBI_PLAYLISTS_BY_OWNER] = "playlists_by_owner",
    [TALAS_DBI_TRACK_ALIASES] = "track_aliases",
    [TALAS_DBI_ACCOUNTS] = "accounts",
    [TALAS_DBI_API_KEYS] = "api_keys",
    [TALAS_DBI_SONGS] = "songs",
    [TALAS_DBI_TRACK_SONGS] = "track_songs",
    [TALAS_DBI_VERSION_LINKS] = "version_links",
    [TALAS_DBI_VERSION_EVENTS] = "version_events",
    [TALAS_DBI_COMMENTS] = "comments",
    [TALAS_DBI_TRACK_COMMENTS] = "track_comments",
    [TALAS_DBI_STARS] = "stars",
    [TALAS_DBI_LYRICS] = "lyrics",
    [TALAS_DBI_PLAY_QUEUES] = "play_queues",
    [TALAS_DBI_SHARES] = "shares",
    [TALAS_DBI_SHARE_LISTENERS] = "share_listeners",
    [TALAS_DBI_COVERS] = "covers",
    [TALAS_DBI_ROOMS] = "rooms",
};
_Static_assert(TALAS_ARRAY_SIZE(dbi_names) == TALAS_DBI_COUNT, "a database of enum talas_dbi has no name");
_Static_assert(TALAS_DBI_COUNT <= STORAGE_MAX_DBS, "raise STORAGE_MAX_DBS: more named databases than LMDB is told of");

/* mkdir -p: every missing component is created 0750, so that the catalog
 * is not readable by other users even when the umask is lax. */
static int mkdir_p(const char *path, char **error_r)
{
    char *copy = xstrdup(path);
    char *p = copy;

    while (*p == '/')
        p++;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash != NULL)
            *slash = '\0';
        if (*p != '\0' && mkdir(copy, 0750) == -1 && errno != EEXIST) {
            *error_r = xasprintf("%s: mkdir(\"%s\") failed: %s", path, copy, strerror(errno));
            free(copy);
            return -1;
        }
        if (slash == NULL)
            break;
        *slash = '/';
        p = slash + 1;
    }
    free(copy);
    return 0;
}

void talas_storage_forbid_writes(void)
{
    writes_forbidden = 1;
}

void talas_storage_allow_writes(void)
{
    writes_forbidden = 0;
}

static void check_writable(const char *call, const char *path)
{
    if (writes_forbidden)
        panic("%s(\"%s\") in a process that forbade LMDB writes (talas_storage_forbid_writes): "
              "the master must never write nor wait on the writer lock",
              call, path);
}

/* Creates and opens the environment handle with the shared limits; FLAGS
 * are added to MDB_NOTLS. Returns 0, or an LMDB error with the failing
 * call in *call_r (*env_r is then closed and NULL). MAP_SIZE 0 keeps
 * LMDB's default (a read-only open maps the data file's size anyway). */
static int env_open(const char *path, uint64_t map_size, unsigned int flags, MDB_env **env_r,
                    const char **call_r)
{
    MDB_env *env;
    int rc;

    *env_r = NULL;
    *call_r = "mdb_env_create";
    if ((rc = mdb_env_create(&env)) != 0)
        return rc;
    *call_r = "mdb_env_set_maxdbs";
    if ((rc = mdb_env_set_maxdbs(env, STORAGE_MAX_DBS)) != 0)
        goto fail;
    *call_r = "mdb_env_set_maxreaders";
    if ((rc = mdb_env_set_maxreaders(env, STORAGE_MAX_READERS)) != 0)
        goto fail;
    /* A map size below the data already stored is fine: LMDB raises it to
     * the size of the data file when it opens the environment. */
    if (map_size > SIZE_MAX)
        map_size = SIZE_MAX;
    *call_r = "mdb_env_set_mapsize";
    if (map_size != 0 && (rc = mdb_env_set_mapsize(env, (size_t)map_size)) != 0)
        goto fail;
    *call_r = "mdb_env_open";
    if ((rc = mdb_env_open(env, path, MDB_NOTLS | flags, 0640)) != 0)
        goto fail;
    *env_r = env;
    return 0;
fail:
    mdb_env_close(env);
    return rc;
}

int talas_storage_open(const char *path, uint64_t map_size, struct talas_storage **st_r, char **error_r)
{
    struct talas_storage *st;
    MDB_txn *txn = NULL;
    const char *call;
    int rc;

    check_writable(__func__, path);
    st = xcalloc(1, sizeof(*st));
    st->path = xstrdup(path);

    if (mkdir_p(path, error_r) == -1)
        goto fail_msg;
    if ((rc = env_open(path, map_size, 0, &st->env, &call)) != 0)
        goto fail;

    /* Named databases are opened once, in a single short write transaction;
     * the handles then stay valid for the life of the environment. */
    call = "mdb_txn_begin";
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        goto fail;
    for (size_t i = 0; i < TALAS_DBI_COUNT; i++) {
        call = "mdb_dbi_open";
        if ((rc = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &st->dbi[i])) != 0) {
            *error_r = xasprintf("%s: mdb_dbi_open(\"%s\") failed: %s", path, dbi_names[i], mdb_strerror(rc));
            goto fail_msg;
        }
    }
    call = "mdb_txn_commit";
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto fail;

    *st_r = st;
    return 0;

fail:
    *error_r = xasprintf("%s: %s() failed: %s", path, call, mdb_strerror(rc));
fail_msg:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (st->env != NULL)
        mdb_env_close(st->env);
    free(st->path);
    free(st);
    return -1;
}

void talas_storage_close(struct talas_storage *st)
{
    if (st == NULL)
        return;
    mdb_env_close(st->env);
    free(st->path);
    free(st);
}

MDB_env *talas_storage_env(struct talas_storage *st)
{
    return st->env;
}

MDB_dbi talas_storage_dbi(struct talas_storage *st, enum talas_dbi which)
{
    return st->dbi[which];
}

const char *talas_storage_path(struct talas_storage *st)
{
    return st->path;
}

/* Another process may have grown the map beyond what this one mapped
 * (MDB_MAP_RESIZED): adopting the new size is all it takes to go on. */
static int txn_begin(struct talas_storage *st, unsigned int flags, MDB_txn **txn_r)
{
    int rc = mdb_txn_begin(st->env, NULL, flags, txn_r);

    if (rc == MDB_MAP_RESIZED) {
        if ((rc = mdb_env_set_mapsize(st->env, 0)) != 0)
            return rc;
        rc = mdb_txn_begin(st->env, NULL, flags, txn_r);
    }
    return rc;
}

int talas_storage_read_begin(struct talas_storage *st, MDB_txn **txn_r)
{
    return txn_begin(st, MDB_RDONLY, txn_r);
}

size_t talas_storage_last_txnid(struct talas_storage *st)
{
    MDB_envinfo info;

    if (mdb_env_info(st->env, &info) != 0)
        return 0;
    return info.me_last_txnid;
}

int talas_storage_write_begin(struct talas_storage *st, MDB_txn **txn_r)
{
    check_writable(__func__, st->path);
    return txn_begin(st, 0, txn_r);
}

int talas_storage_grow(struct talas_storage *st, uint64_t extra, uint64_t *size_r)
{
    MDB_envinfo info;
    uint64_t size;
    int rc;

    check_writable(__func__, st->path);
    if ((rc = mdb_env_info(st->env, &info)) != 0)
        return rc;
    size = (uint64_t)info.me_mapsize + extra;
    if (size > SIZE_MAX)
        return EINVAL;
    if ((rc = mdb_env_set_mapsize(st->env, (size_t)size)) != 0)
        return rc;
    *size_r = size;
    return 0;
}

/* 1 when PATH holds no environment yet (no data file). */
static int env_missing(const char *path)
{
    char *data = xasprintf("%s/data.mdb", path);
    int missing = access(data, F_OK) == -1 && errno == ENOENT;

    free(data);
    return missing;
}

int talas_storage_reader_check(const char *path, int *dead_r, char **error_r)
{
    const char *call;
    MDB_env *env;
    int rc, dead = 0;

    *dead_r = 0;
    if (env_missing(path))
        return 0;
    if ((rc = env_open(path, 0, MDB_RDONLY, &env, &call)) != 0)
        goto fail;
    call = "mdb_reader_check";
    rc = mdb_reader_check(env, &dead);
    mdb_env_close(env);
    if (rc != 0)
        goto fail;
    *dead_r = dead;
    return 0;
fail:
    *error_r = xasprintf("%s: %s() failed: %s", path, call, mdb_strerror(rc));
    return -1;
}

int talas_storage_check(const char *path, uint64_t map_size, char **error_r)
{
    const char *call;
    MDB_env *env;
    int rc;

    if (mkdir_p(path, error_r) == -1)
        return -1;
    if (access(path, W_OK | X_OK) == -1) {
        *error_r = xasprintf("%s: access() failed: %s", path, strerror(errno));
        return -1;
    }
    if (env_missing(path))
        return 0;
    if ((rc = env_open(path, map_size, MDB_RDONLY, &env, &call)) != 0) {
        *error_r = xasprintf("%s: %s() failed: %s", path, call, mdb_strerror(rc));
        return -1;
    }
    mdb_env_close(env);
    return 0;
}

/*
 * The pid of another process that has the environment at PATH open, or 0.
 * Every process that opens an LMDB environment holds a shared fcntl lock
 * on the first byte of lock.mdb for as long as it has it open (LMDB's
 * mdb_env_excl_lock, then mdb_env_share_locks); F_GETLK for a write lock
 * names a holder. Our own locks never conflict with us, so this sees the
 * others even while this process has the environment open too.
 */
static pid_t other_opener(const char *path)
{
    char *lock = xasprintf("%s/lock.mdb", path);
    struct flock fl = {0};
    int fd = open(lock, O_RDONLY | O_CLOEXEC);

    free(lock);
    if (fd == -1)
        return 0;
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (fcntl(fd, F_GETLK, &fl) == -1)
        fl.l_type = F_UNLCK;
    close(fd);
    return fl.l_type == F_UNLCK ? 0 : (fl.l_pid > 0 ? fl.l_pid : 1);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC), rc;

    if (fd == -1)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int talas_storage_compact(const char *path, uint64_t map_size, uint64_t *before_r, uint64_t *after_r,
                          char **error_r)
{
    char *data = xasprintf("%s/data.mdb", path), *tmp = xasprintf("%s/data.mdb.compact.XXXXXX", path);
    const char *call = NULL;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    struct stat sb;
    pid_t other;
    int rc = 0, fd = -1, ret = -1;

    check_writable(__func__, path);
    *before_r = *after_r = 0;
    if (stat(data, &sb) == -1) {
        *error_r = xasprintf("%s: stat() failed: %s", data, strerror(errno));
        goto out;
    }
    *before_r = (uint64_t)sb.st_size;
    if ((other = other_opener(path)) != 0) {
        *error_r =
            xasprintf("%s: the storage is open in another process (pid %d): stop it first", path, (int)other);
        ret = 1;
        goto out;
    }
    if ((rc = env_open(path, map_size, 0, &env, &call)) != 0)
        goto lmdb_fail;
    /* the writer lock: no process commits between the copy and the rename */
    call = "mdb_txn_begin";
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0)
        goto lmdb_fail;
    if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
        *error_r = xasprintf("%s: mkostemp() failed: %s", tmp, strerror(errno));
        goto out;
    }
    /* the new data file takes the old one's place: its mode and owner too
     * (mkostemp makes it 0600; a chown to the same owner is a no-op) */
    if (fchmod(fd, sb.st_mode & 07777) == -1 || (fchown(fd, sb.st_uid, sb.st_gid) == -1 && errno != EPERM)) {
        *error_r = xasprintf("%s: fchmod() or fchown() failed: %s", tmp, strerror(errno));
        goto out;
    }
    call = "mdb_env_copyfd2";
    if ((rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT)) != 0)
        goto lmdb_fail;
    if (fsync(fd) == -1 || fstat(fd, &sb) == -1) {
        *error_r = xasprintf("%s: fsync() failed: %s", tmp, strerror(errno));
        goto out;
    }
    *after_r = (uint64_t)sb.st_size;
    if ((other = other_opener(path)) != 0) {
        *error_r = xasprintf("%s: the storage was opened by another process (pid %d) during the copy; "
                             "nothing was changed",
                             path, (int)other);
        ret = 1;
        goto out;
    }
    if (rename(tmp, data) == -1) {
        *error_r = xasprintf("rename(\"%s\", \"%s\") failed: %s", tmp, data, strerror(errno));
        goto out;
    }
    tmp[0] = '\0'; /* renamed: nothing to remove */
    if (fsync_path(path, O_RDONLY | O_DIRECTORY) == -1) {
        *error_r = xasprintf("%s: fsync() failed: %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
    goto out;

lmdb_fail:
    *error_r = xasprintf("%s: %s() failed: %s", path, call, mdb_strerror(rc));
out:
    if (fd != -1)
        close(fd);
    if (tmp[0] != '\0' && fd != -1)
        unlink(tmp);
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (env != NULL)
        mdb_env_close(env);
    free(data);
    free(tmp);
    return ret;
}

#define COUNTERS_MAX 32

static void counters_read(const MDB_val *val, uint64_t *v, size_t n)
{
    struct talas_record_reader r;

    /* a shorter record (an older build's) reads its missing fields as 0 */
    talas_record_reader_init(&r, val->mv_data, val->mv_size);
    for (size_t i = 0; i < n; i++)
        v[i] = r.left >= 8 ? talas_record_get_u64(&r) : 0;
}

int talas_storage_counters_get(struct talas_storage *st, MDB_txn *txn, const char *key, uint64_t *v_r,
                               size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, val = {0, NULL};
    int rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &val);

    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    counters_read(&val, v_r, n);
    return 0;
}

int talas_storage_counters_add(struct talas_storage *st, const char *key, const uint64_t *deltas, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, val = {0, NULL};
    uint64_t v[COUNTERS_MAX];
    unsigned char rec[COUNTERS_MAX * 8];
    struct talas_record_writer w;
    size_t have;
    MDB_txn *txn;
    int rc;

    if (n > COUNTERS_MAX)
        return EINVAL;
    if ((rc = talas_storage_write_begin(st, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &val);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto fail;
    /* keep the fields of a longer record (a newer build's) as they are */
    have = val.mv_size / 8 > COUNTERS_MAX ? COUNTERS_MAX : val.mv_size / 8;
    if (have < n)
        have = n;
    counters_read(&val, v, have);
    for (size_t i = 0; i < n; i++)
        v[i] += deltas[i];
    talas_record_writer_mem(&w, rec, sizeof(rec));
    for (size_t i = 0; i < have; i++)
        talas_record_put_u64(&w, v[i]);
    val.mv_data = rec;
    val.mv_size = w.len;
    if ((rc = mdb_put(txn, talas_storage_dbi(st, TALAS_DBI_META), &k, &val, 0)) != 0)
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

int talas_storage_prefix_keys(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t len, size_t max,
                              struct talas_buf *keys, size_t *n_r)
{
    struct talas_record_writer w;
    MDB_cursor *cur;
    MDB_val k = {len, (void *)prefix}, v;
    size_t n = 0;
    int rc;

    *n_r = 0;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    talas_record_writer_buf(&w, keys);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < len || memcmp(k.mv_data, prefix, len) != 0)
            break;
        talas_record_put_blob(&w, k.mv_data, k.mv_size);
        n++;
    }
    mdb_cursor_close(cur);
    *n_r = n;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* Per process: when the last "map full" line was written, and how many
 * failures it has not reported yet. */
static uint64_t map_full_logged_ms;
static uint64_t map_full_unreported;

void talas_storage_log_write_error(const char *what, int rc)
{
    uint64_t now;

    if (rc != MDB_MAP_FULL) {
        talas_log(TALAS_LOG_ERROR, "%s: %s", what, mdb_strerror(rc));
        return;
    }
    map_full_unreported++;
    now = talas_now_ms();
    if (map_full_logged_ms != 0 && now - map_full_logged_ms < TALAS_STORAGE_FULL_LOG_INTERVAL_MS)
        return;
    talas_log(TALAS_LOG_ERROR,
              "%s: %s (%llu write(s) failed so far since the last report; raise storage.map_size, "
              "or purge with talasctl)",
              what, mdb_strerror(rc), (unsigned long long)map_full_unreported);
    map_full_logged_ms = now;
    map_full_unreported = 0;
}
