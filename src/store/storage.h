/*
 * storage.h - the LMDB environment that every Talas process shares.
 *
 * One environment (a directory) holds all named databases; this module opens
 * it with MDB_NOTLS (one thread may hold several read transactions: one per
 * request in flight) and opens the named databases once. Each process opens
 * its own handle after fork(): never use a handle across fork (LMDB's own
 * header says so). One writer at a time across all processes: keep write
 * transactions short, and never run one on a worker's event loop for long.
 *
 * The master never writes (it must never wait on the writer lock): it calls
 * talas_storage_forbid_writes() at start, after which talas_storage_open()
 * and talas_storage_write_begin() abort the process. It may only check the
 * environment read-only (talas_storage_check, talas_storage_reader_check).
 */
#ifndef TALAS_STORAGE_H
#define TALAS_STORAGE_H

#include <stdint.h>
#include <lmdb.h>

/* The named databases. Later modules append theirs here. */
enum talas_dbi {
    TALAS_DBI_TRACKS,        /* track id -> encoded struct talas_track */
    TALAS_DBI_TRACK_PATHS,   /* absolute path -> track id (listing order) */
    TALAS_DBI_META,          /* small named records: "scan" status, schema version, "cache" totals */
    TALAS_DBI_CACHE_CHUNKS,  /* track + variant + NUL + chunk (big-endian u32) -> chunk record (cache.c) */
    TALAS_DBI_CACHE_ENTRIES, /* track + variant -> transcode entry record (cache.c) */
    TALAS_DBI_CACHE_LRU,     /* access sequence (big-endian u64) + track + variant -> "" (cache.c) */
    TALAS_DBI_CACHE_CLAIMS,  /* same key as the chunk -> claim of the process encoding it (cache.c) */
    TALAS_DBI_SESSIONS,      /* session id -> streaming session; totals in META "sessions" (sessions.c) */
    TALAS_DBI_PLAYBACK,        /* user id -> playback state of that user (playback.c) */
    TALAS_DBI_LISTEN_SESSIONS, /* user + NUL + started ms (be64) + pid (be32) -> listening session (playback.c) */
    TALAS_DBI_TRACK_PLAYS,     /* track id -> plays, listeners, total listening ms (playback.c) */
    TALAS_DBI_TRACK_LISTENERS, /* track id + NUL + user id -> "" (playback.c) */
    TALAS_DBI_PLAYLISTS,       /* playlist id -> owner, editors and track ids (playlists.c) */
    TALAS_DBI_PEAKS,           /* track id -> waveform peaks and the identity of their source (peaks.c) */
    TALAS_DBI_SESSIONS_BY_OWNER, /* owner kind + owner + NUL + session id -> "" (sessions.c) */
    TALAS_DBI_USER_SETTINGS,   /* user id -> that user's settings, e.g. share_listening (users.c) */
    TALAS_DBI_PLAYLISTS_BY_OWNER, /* owner + NUL + playlist id -> "" (playlists.c) */
    TALAS_DBI_TRACK_ALIASES,   /* former track id -> current track id (catalog.c) */
    TALAS_DBI_ACCOUNTS,        /* Subsonic account name -> its sealed password (accounts.c) */
    TALAS_DBI_API_KEYS,        /* SHA-256 of an API key -> its account (accounts.c) */
    TALAS_DBI_SONGS,           /* song id -> its versions in order, with dates (song_versions.c) */
    TALAS_DBI_TRACK_SONGS,     /* track id -> the song it is a version of (song_versions.c) */
    TALAS_DBI_VERSION_LINKS,   /* track id -> the song an explicit version-of put it in (song_versions.c) */
    TALAS_DBI_VERSION_EVENTS,  /* sequence (be64) -> a version the scanner added to a song (song_versions.c) */
    TALAS_DBI_COMMENTS,        /* comment id -> a timed comment on a track (comments.c) */
    TALAS_DBI_TRACK_COMMENTS,  /* track id + NUL + at_ms (be64) + comment id -> "" (comments.c) */
    TALAS_DBI_STARS,           /* user id + NUL + item id -> when starred, the rating (stars.c) */
    TALAS_DBI_LYRICS,          /* track id -> its lyrics and the identity of its .lrc sidecar (lyrics.c) */
    TALAS_DBI_PLAY_QUEUES,     /* user id -> that user's saved play queue (play_queue.c) */
    TALAS_DBI_SHARES,          /* share id -> a private link, its permissions and analytics (shares.c) */
    TALAS_DBI_SHARE_LISTENERS, /* share id + listener id -> "" (shares.c) */
    TALAS_DBI_COVERS,          /* cover id + NUL + size (be32) -> a resized JPEG and its source's identity (covers.c) */
    TALAS_DBI_ROOMS,           /* room id -> a listening room: members, queue, playback (rooms.c) */
    TALAS_DBI_COUNT
};

struct talas_storage; /* opaque, owned by the process that opened it */

/*
 * Opens (creating the directory and the databases when missing) the
 * environment at PATH with the given map size. Returns 0 and the handle in
 * *st_r, or -1 with a malloc'd message naming the path and the failing call
 * in *error_r. Aborts the process after talas_storage_forbid_writes(): it
 * may create databases in a write transaction.
 */
int talas_storage_open(const char *path, uint64_t map_size, struct talas_storage **st_r, char **error_r);
void talas_storage_close(struct talas_storage *st);

MDB_env *talas_storage_env(struct talas_storage *st);
MDB_dbi talas_storage_dbi(struct talas_storage *st, enum talas_dbi which);
/* The environment directory as given to talas_storage_open (owned by ST):
 * the scanner keeps its lock file there. */
const char *talas_storage_path(struct talas_storage *st);

/* The id of the environment's last committed transaction, read from its
 * meta pages without a transaction: what a read transaction begun now
 * would see (mdb_txn_id). A memo of what a read found stays true while
 * this has not moved. */
size_t talas_storage_last_txnid(struct talas_storage *st);

/* Begins a read-only transaction; returns 0 or an LMDB error code. */
int talas_storage_read_begin(struct talas_storage *st, MDB_txn **txn_r);
/* Begins a write transaction (blocks while another process writes).
 * Aborts the process after talas_storage_forbid_writes(). */
int talas_storage_write_begin(struct talas_storage *st, MDB_txn **txn_r);

/*
 * Clears the reader slots of dead processes (mdb_reader_check) in the
 * environment at PATH, opened read-only for the call (with the same limits
 * as talas_storage_open) and closed before it returns: a process that must
 * not write (the master, after reaping a child) holds no handle across a
 * fork. Stores the number cleared in *dead_r. An environment that does not
 * exist yet has no readers: 0 cleared. Returns 0, or -1 with a malloc'd
 * message naming the path and the failing call in *error_r.
 */
int talas_storage_reader_check(const char *path, int *dead_r, char **error_r);

/*
 * What a process that must not write can check of the storage before its
 * children use it: creates the directory PATH when missing (0750, parents
 * included), and opens an existing environment read-only with MAP_SIZE.
 * The first talas_storage_open() creates a missing one. Returns 0, or -1
 * with a malloc'd message in *error_r.
 */
int talas_storage_check(const char *path, uint64_t map_size, char **error_r);

/*
 * Grows the map of ST by EXTRA bytes, for a clean-up that a full map
 * would refuse: in a map with no free page left even a delete fails
 * (MDB_MAP_FULL: it copies the pages it changes). The new size is written
 * with the next commit; the other processes adopt it at their next
 * transaction (MDB_MAP_RESIZED), and talas_storage_compact() gives the
 * room back to the file system. No transaction of this process may be
 * open. Returns 0 and the new size in *size_r, or an LMDB error.
 */
int talas_storage_grow(struct talas_storage *st, uint64_t extra, uint64_t *size_r);

/*
 * Rewrites the environment at PATH without its free pages (LMDB's
 * mdb_env_copyfd2 with MDB_CP_COMPACT) into a temporary file in PATH, then
 * renames it over data.mdb. Only while no other process has the
 * environment open: a process that keeps the old file mapped would go on
 * writing to it and its writes would be lost; this is checked (the lock
 * LMDB's processes hold on lock.mdb) before the copy and again before the
 * rename, and the writer lock is held meanwhile. Stores the data file's
 * size before and after in *before_r and *after_r. Returns 0; 1 with a
 * malloc'd message in *error_r naming the process when another has the
 * environment open (nothing changed); or -1 with a malloc'd message
 * naming the call that failed (nothing changed either).
 */
int talas_storage_compact(const char *path, uint64_t map_size, uint64_t *before_r, uint64_t *after_r,
                          char **error_r);

/*
 * Forbids LMDB writes in this process from now on: talas_storage_open()
 * (which may create databases) and talas_storage_write_begin() then call
 * panic(), naming the call and the path. talas-master calls it first thing:
 * it must never wait on the writer lock of its workers. The flag is
 * inherited by fork(); a forked child that is meant to write (the master's
 * library scanner) lifts it with talas_storage_allow_writes(). exec()
 * clears it (the worker program).
 */
void talas_storage_forbid_writes(void);
void talas_storage_allow_writes(void);

/*
 * Named counters in the META database: KEY holds little-endian uint64s.
 * talas_storage_counters_add adds the N DELTAS in one short write
 * transaction (a record with fewer fields grows); talas_storage_counters_get
 * reads N of them into V_R, fields never written reading 0. Both return 0
 * or an LMDB error.
 */
int talas_storage_counters_add(struct talas_storage *st, const char *key, const uint64_t *deltas, size_t n);
int talas_storage_counters_get(struct talas_storage *st, MDB_txn *txn, const char *key, uint64_t *v_r, size_t n);

/*
 * Collects in TXN up to MAX keys of DBI that begin with the LEN bytes of
 * PREFIX, in order, as blobs of the record codec appended to KEYS (so the
 * caller may delete them afterwards: no delete under an open cursor).
 * Stores their number in *N_R. Returns 0 or an LMDB error.
 */
struct talas_buf;
int talas_storage_prefix_keys(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t len, size_t max,
                              struct talas_buf *keys, size_t *n_r);

/*
 * Logs a failed write transaction of WHAT (e.g. "playlist add") at error
 * level. MDB_MAP_FULL, which a flood repeats on every request, is logged at
 * most once per TALAS_STORAGE_FULL_LOG_INTERVAL_MS in a process, with the
 * number of failures since the last line; other errors every time.
 */
#define TALAS_STORAGE_FULL_LOG_INTERVAL_MS 60000
void talas_storage_log_write_error(const char *what, int rc);

#endif
