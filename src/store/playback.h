/*
 * playback.h - what the realtime channel stores in LMDB: each user's
 * playback state, listening sessions and their per-track totals (the
 * seeds' analytics engine). Playlists are playlists.h's.
 *
 * Every change is one short write transaction (a few records), so a worker
 * may call these on its loop (once per store, the first change also
 * migrates records of the previous format: talas_playback_migrate); reads
 * take the caller's read transaction.
 * Times are wall-clock milliseconds (they outlive processes). User and
 * track ids are at most TALAS_PLAYBACK_ID_MAX bytes, checked by the
 * caller (ws_protocol.c).
 */
#ifndef TALAS_PLAYBACK_H
#define TALAS_PLAYBACK_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"

#define TALAS_PLAYBACK_ID_MAX 128

enum talas_playback_status { TALAS_PLAYBACK_STOPPED, TALAS_PLAYBACK_PLAYING, TALAS_PLAYBACK_PAUSED };

/* A user's playback state (plain data; stored through the record codec,
 * see playback.c). */
struct talas_playback_state {
    uint32_t status; /* an enum talas_playback_status */
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t duration_ms; /* of the track; 0 unknown */
    uint64_t position_ms; /* at updated_ms; advances with the clock while playing */
    uint64_t updated_ms;
    uint64_t played_ms; /* listened in the current session, up to updated_ms */
    uint64_t session_started_ms;
    uint32_t session_pid;
};

/* What a change did, for the events it emits. */
struct talas_playback_result {
    int resumed;          /* Play resumed the paused track (PlaybackResumed) */
    int stopped_previous; /* Play ended another track's session first (PlaybackStopped) */
    char previous_track[TALAS_PLAYBACK_ID_MAX + 1];
    uint64_t previous_played_ms;
    uint64_t position_ms;     /* after the change */
    uint64_t total_played_ms; /* Stop: the session's listening time */
};

/* A change, as the rules see it (talas_playback_apply). Strings are
 * borrowed; quality and platform matter to Play only, position_ms to Play
 * (when has_position) and Seek. */
enum talas_playback_verb {
    TALAS_PLAYBACK_DO_PLAY,
    TALAS_PLAYBACK_DO_PAUSE,
    TALAS_PLAYBACK_DO_SEEK,
    TALAS_PLAYBACK_DO_STOP
};
struct talas_playback_command {
    enum talas_playback_verb verb;
    const char *track;
    uint64_t duration_ms; /* Play: the track's, 0 unknown */
    int has_position;
    uint64_t position_ms;
    const char *quality, *platform;
    uint64_t now_ms;
};

/* What a change writes besides the state: the listening sessions it
 * touched (at most two: a Play that ends another track's session and
 * starts one), each as the state it records (session_started_ms and
 * session_pid say which session), its end (0: it goes on), the listening
 * time it added to its track, and whether it is a new play. */
struct talas_playback_session_write {
    struct talas_playback_state state;
    uint64_t ended_ms;
    uint64_t listened_ms;
    int new_play;
};
struct talas_playback_effects {
    size_t count;
    struct talas_playback_session_write session[2];
};

/*
 * The rules of a change, on a state in memory, whatever store keeps it:
 * applies CMD to *S, fills *R for the events and *FX for the store.
 * Returns 0, or 1 with a static reason in *reason_r when the state forbids
 * it (S is then unchanged). Pure but for the pid of a new session.
 */
int talas_playback_apply(struct talas_playback_state *s, const struct talas_playback_command *cmd,
                         struct talas_playback_result *r, struct talas_playback_effects *fx,
                         const char **reason_r);

/* Brings S, as stored at its updated_ms, to NOW_MS: a playing state's
 * position and listening time advance (what a reader should see). */
void talas_playback_accrue(struct talas_playback_state *s, uint64_t now_ms);

/*
 * The changes. Each returns 0; 1 when the state forbids it (Pause of a
 * track that is not playing...), with a static reason in *reason_r; or an
 * LMDB error code.
 */
int talas_playback_play(struct talas_storage *st, const char *user, const char *track, uint64_t duration_ms,
                        int has_start, uint64_t start_ms, const char *quality, const char *platform,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r);
int talas_playback_pause(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                         struct talas_playback_result *r, const char **reason_r);
int talas_playback_seek(struct talas_storage *st, const char *user, const char *track, uint64_t position_ms,
                        uint64_t now_ms, struct talas_playback_result *r, const char **reason_r);
int talas_playback_stop(struct talas_storage *st, const char *user, const char *track, uint64_t now_ms,
                        struct talas_playback_result *r, const char **reason_r);

/* USER's state in *S (status STOPPED when none); 0 or an LMDB error. */
int talas_playback_get(struct talas_storage *st, MDB_txn *txn, const char *user,
                       struct talas_playback_state *s);

struct talas_track_plays {
    uint64_t plays;
    uint64_t listeners;
    uint64_t total_listening_ms;
};
/* TRACK's totals (zeros when never played); 0 or an LMDB error. */
int talas_playback_track_plays(struct talas_storage *st, MDB_txn *txn, const char *track,
                               struct talas_track_plays *p);

/*
 * Moves the totals of track FROM to track TO in TXN (a write transaction),
 * when a track changes id: plays and listening time add up, each listener
 * counts once. Playback states and listening sessions keep the id they
 * were recorded with (every route that takes a track id follows the
 * catalog's aliases). Returns 0 or an LMDB error.
 */
int talas_playback_track_move(struct talas_storage *st, MDB_txn *txn, const char *from, const char *to);

/* A listening session. */
struct talas_listen_session {
    char track_id[TALAS_PLAYBACK_ID_MAX + 1];
    char quality[32];
    char platform[32];
    uint64_t started_ms;
    uint64_t ended_ms; /* 0 while it goes on */
    uint64_t position_ms;
    uint64_t total_played_ms;
};

/* Calls FN for USER's sessions, newest first, at most LIMIT; *total_r
 * gets how many there are. 0 or an LMDB error. */
typedef void talas_listen_session_fn(const struct talas_listen_session *s, void *arg);
int talas_playback_user_sessions(struct talas_storage *st, MDB_txn *txn, const char *user, size_t limit,
                                 talas_listen_session_fn *fn, void *arg, size_t *total_r);

/*
 * Rewrites the records still in the previous format (raw C structs of
 * the build before the record codec) in the current one, all in one
 * write transaction, and marks the store migrated. Idempotent: on a
 * migrated store it costs one look-up in a read transaction. Readers need
 * not wait for it: they read both formats. Writers only: every change
 * (talas_playback_play...) calls it first. *migrated_r (may be NULL) gets
 * how many records were rewritten. 0 or an LMDB error.
 */
int talas_playback_migrate(struct talas_storage *st, size_t *migrated_r);

/* Calls FN for every user's stored playback state in TXN (talasctl
 * sessions); FN returns 0 to go on. Returns 0, FN's value, or an LMDB
 * error. */
typedef int talas_playback_state_fn(const char *user, const struct talas_playback_state *s, void *arg);
int talas_playback_foreach_state(struct talas_storage *st, MDB_txn *txn, talas_playback_state_fn *fn,
                                 void *arg);

/*
 * What one user has stored here, for talasctl users (store/user_data.h):
 * the playback state (one record, or none) and the listening sessions.
 * _usage sets *count_r and *bytes_r (keys and records) in TXN; _purge
 * removes them, in write transactions of at most BATCH records (0: 256),
 * and sets *removed_r (may be NULL); _foreach_user calls FN once for each
 * user who has such records, FN returning 0 to go on. Each returns 0, FN's
 * value, or an LMDB error. A purge leaves the per-track totals (plays,
 * listeners) as they are: they are counts, not the user's records.
 */
int talas_playback_state_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                               uint64_t *bytes_r);
int talas_playback_state_purge(struct talas_storage *st, const char *user, size_t batch, uint64_t *removed_r);
typedef int talas_playback_user_fn(const char *user, void *arg);
int talas_playback_state_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_playback_user_fn *fn,
                                      void *arg);
int talas_listen_sessions_usage(struct talas_storage *st, MDB_txn *txn, const char *user, uint64_t *count_r,
                                uint64_t *bytes_r);
int talas_listen_sessions_purge(struct talas_storage *st, const char *user, size_t batch,
                                uint64_t *removed_r);
int talas_listen_sessions_foreach_user(struct talas_storage *st, MDB_txn *txn, talas_playback_user_fn *fn,
                                       void *arg);

#endif
