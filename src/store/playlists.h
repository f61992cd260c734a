/*
 * playlists.h - playlists in LMDB: each has an owner (the "sub" of the user
 * who created it), the users it is shared with for editing, and its track
 * ids in order; an index by owner counts, lists and purges them.
 *
 * Who may change a playlist, and how much users may store, is decided
 * here, inside each change's own write transaction, whichever handler
 * called (the /api/ws commands, POST /api/events, talasctl): see
 * store/quota.h. A change is one short write transaction (two records and
 * an index entry at most), so a worker may call these on its loop; reads
 * take the caller's read transaction.
 *
 * Each also has a name, a comment, a public flag (public playlists are
 * listed to, and readable by, every user; only their owner changes them)
 * and the wall-clock times it was created and last changed. A playlist
 * from before names reads with an empty name (shown as its id), an empty
 * comment, private, both times 0.
 *
 * A playlist stored by a build before owners (its record is only the
 * track ids) reads as owned by nobody: no user may change it until the
 * backend shares it (talas_playlist_share with no user), and talasctl
 * cannot list it by owner. Ids (playlists, users, tracks) are at most
 * TALAS_PLAYLIST_ID_MAX bytes, checked by the caller (ws_protocol.c).
 */
#ifndef TALAS_PLAYLISTS_H
#define TALAS_PLAYLISTS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "core/config.h"
#include "store/quota.h"
#include "store/storage.h"

#define TALAS_PLAYLIST_ID_MAX 128
#define TALAS_PLAYLIST_NAME_MAX 1024    /* bytes of a name */
#define TALAS_PLAYLIST_COMMENT_MAX 4096 /* bytes of a comment */
#define TALAS_PLAYLIST_NEW_ID_LEN 18    /* "pl" and 16 base64url characters */

/* What the change functions return besides 0, TALAS_QUOTA_EXCEEDED and
 * LMDB errors; far from both LMDB's codes and errno values. */
#define TALAS_PLAYLIST_REFUSED (-40101)   /* the playlist's state forbids it: see reason */
#define TALAS_PLAYLIST_FORBIDDEN (-40102) /* the user may not change it: reason begins "forbidden: " */
#define TALAS_PLAYLIST_DAMAGED (-40103)   /* talas_playlist_get: the record is of no known shape */

/* The reasons of refusals, one text whichever store refuses (the cluster
 * backend, workers/state/, gives the same ones). */
extern const char talas_playlist_forbidden_edit[];      /* not the owner nor an editor */
extern const char talas_playlist_forbidden_share[];     /* an editor, not the owner, shares */
extern const char talas_playlist_forbidden_ownerless[]; /* a playlist from before owners */
extern const char talas_playlist_bad_id[];              /* a playlist id of 0 or > 128 bytes */
extern const char talas_playlist_bad_user[];            /* a creator id of 0 or > 128 bytes */
extern const char talas_playlist_bad_position[];        /* past the end */
extern const char talas_playlist_no_such[];             /* no such playlist */
extern const char talas_playlist_no_track[];            /* remove: the track is not in it */
extern const char talas_playlist_bad_to_users[];        /* share: a user id of 0 or > 128 bytes */
extern const char talas_playlist_forbidden_owner[];     /* not the owner: rename, delete, ... */
extern const char talas_playlist_bad_name[];            /* not UTF-8, or too long */
extern const char talas_playlist_bad_comment[];         /* not UTF-8, or too long */
extern const char talas_playlist_bad_index[];           /* edit: an index to remove past the end */
extern const char talas_playlist_exists[];              /* edit: create, and the id is taken */

/* The bounds a change is held to: the playlists.* keys and
 * storage.user_data_max (0: no budget). */
struct talas_playlist_limits {
    uint64_t max_per_user; /* playlists.max_per_user */
    uint64_t max_tracks;   /* playlists.max_tracks */
    uint64_t max_total;    /* playlists.max_total */
    uint64_t max_editors;  /* playlists.max_editors */
    uint64_t user_data_max;
};

/* The limits of CONF. */
void talas_playlist_limits_of(const struct talas_config *conf, struct talas_playlist_limits *l);

/* What a change did, or why it did not happen. */
struct talas_playlist_result {
    uint64_t position;                  /* add: where the track went; remove: where it was */
    int created;                        /* add: the playlist did not exist and is now the user's */
    size_t editors_added;               /* share: users who were not editors yet */
    const char *reason;                 /* TALAS_PLAYLIST_REFUSED, _FORBIDDEN: a static message */
    struct talas_quota_refusal refusal; /* TALAS_QUOTA_EXCEEDED: the limit that refused */
};

/*
 * The changes. USER is the sub of the user asking (never NULL here).
 *
 * Add inserts TRACK at POSITION (HAS_POSITION, at most the length) or at
 * the end. A PLAYLIST that does not exist is created, owned by USER, under
 * playlists.max_per_user and playlists.max_total; an existing one may be
 * changed by its owner and its editors only, under playlists.max_tracks.
 * Every add is held to storage.user_data_max. Remove takes the first
 * occurrence of TRACK out (owner and editors only; never refused by a
 * quota: it frees room).
 *
 * Each returns 0; TALAS_PLAYLIST_REFUSED or _FORBIDDEN with R->reason;
 * MDB_NOTFOUND (Remove: no such playlist), with R->reason too;
 * TALAS_QUOTA_EXCEEDED with R->refusal; or another LMDB error
 * (MDB_MAP_FULL when the map itself is full), which the caller logs
 * through talas_storage_log_write_error().
 */
int talas_playlist_add(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                       const char *playlist, const char *track, int has_position, uint64_t position,
                       struct talas_playlist_result *r);
int talas_playlist_remove(struct talas_storage *st, const char *user, const char *playlist, const char *track,
                          struct talas_playlist_result *r);

/*
 * Makes the N users TO_USERS editors of PLAYLIST (those already editors,
 * and the owner, are skipped). USER must be its owner; NULL stands for the
 * backend (POST /api/events), which may share any playlist, one owned by
 * nobody included. Held to playlists.max_editors and storage.user_data_max.
 * Returns as the changes above (MDB_NOTFOUND: no such playlist).
 */
int talas_playlist_share(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                         const char *playlist, const char *const *to_users, size_t n,
                         struct talas_playlist_result *r);

/* A new playlist id (random, TALAS_PLAYLIST_NEW_ID_LEN characters). */
void talas_playlist_id_make(char id_r[TALAS_PLAYLIST_NEW_ID_LEN + 1]);

/*
 * One change of a playlist's details and tracks, in one write
 * transaction (updatePlaylist, createPlaylist, PATCH /api/playlists).
 *
 * CREATE: PLAYLIST must not exist (TALAS_PLAYLIST_REFUSED, exists); it
 * becomes USER's (USER not NULL), under playlists.max_per_user and
 * max_total. Otherwise it must exist (MDB_NOTFOUND). NAME and COMMENT
 * (NULL: unchanged) are stored exactly, UTF-8 of at most
 * TALAS_PLAYLIST_NAME_MAX and _COMMENT_MAX bytes; PUBLIC is -1
 * (unchanged), 0 or 1. Changing them takes the owner (USER NULL: the
 * backend); changing the tracks takes the owner or an editor. REPLACE
 * empties the tracks first; else REMOVES (indexes into the playlist as it
 * was, each less than its length; repeats count once) go. Then ADDS are
 * appended, in order, under playlists.max_tracks. The wall clock becomes
 * its changed time (and created time, when created), as with every change
 * here.
 *
 * Returns as talas_playlist_add; R->position is the track count after.
 */
struct talas_playlist_edit {
    int create;
    const char *name, *comment;
    int public_;
    int replace;
    const char *const *adds;
    size_t add_count;
    const uint64_t *removes;
    size_t remove_count;
};

/* NULL when E's name and comment may be stored, else the reason. */
const char *talas_playlist_edit_check(const struct talas_playlist_edit *e);

int talas_playlist_edit(struct talas_storage *st, const struct talas_playlist_limits *lim, const char *user,
                        const char *playlist, const struct talas_playlist_edit *e,
                        struct talas_playlist_result *r);

/* Deletes PLAYLIST: USER must own it (NULL: the backend may delete any).
 * 0, MDB_NOTFOUND (R->reason), TALAS_PLAYLIST_FORBIDDEN or an LMDB
 * error. */
int talas_playlist_delete(struct talas_storage *st, const char *user, const char *playlist,
                          struct talas_playlist_result *r);

/* A playlist's details, as read; strings point into the map. */
struct talas_playlist_meta {
    const char *name, *comment; /* "" when it has none */
    int public_;
    uint64_t created_ms, changed_ms; /* 0: from before they were kept */
};

/* What a reader is told of a playlist, in this order: its owner ("" when
 * nobody owns it), its details, each editor, each track. Strings point
 * into the map: copy what must outlive the transaction. Any callback may
 * be NULL. */
struct talas_playlist_reader {
    void (*owner)(const char *owner, void *arg);
    void (*editor)(const char *user, size_t index, void *arg);
    void (*track)(const char *track, size_t index, void *arg);
    void (*meta)(const struct talas_playlist_meta *m, void *arg);
};

/* Reads PLAYLIST in TXN: 0, MDB_NOTFOUND, TALAS_PLAYLIST_DAMAGED or an
 * LMDB error. */
int talas_playlist_get(struct talas_storage *st, MDB_txn *txn, const char *playlist,
                       const struct talas_playlist_reader *rd, void *arg);

/* Calls FN(ID, ARG) for each playlist USER may read in a list: those
 * USER owns or edits, and the public ones of others, in id order, then
 * the caller reads each with talas_playlist_get in the same TXN. FN
 * returns 0 to go on. 0, FN's value or an LMDB error; damaged records are
 * skipped. */
typedef int talas_playlist_id_fn(const char *id, size_t len, void *arg);
int talas_playlist_list(struct talas_storage *st, MDB_txn *txn, const char *user, talas_playlist_id_fn *fn,
                        void *arg);

/* How many playlists OWNER owns, and the bytes they take (keys and
 * records, index entries included), in TXN. 0 or an LMDB error. */
int talas_playlist_owner_usage(struct talas_storage *st, MDB_txn *txn, const char *owner, uint64_t *count_r,
                               uint64_t *bytes_r);

/* Removes every playlist OWNER owns, in write transactions of at most
 * BATCH playlists each (0: 256), so that no purge holds the writer lock
 * for long. *removed_r (may be NULL) gets how many went. 0 or an LMDB
 * error (what was removed before it stays removed). */
int talas_playlist_owner_purge(struct talas_storage *st, const char *owner, size_t batch,
                               uint64_t *removed_r);

/* Calls FN once for each user who owns a playlist, in key order; FN
 * returns 0 to go on. Returns 0, FN's value or an LMDB error. */
typedef int talas_playlist_owner_fn(const char *owner, void *arg);
int talas_playlist_foreach_owner(struct talas_storage *st, MDB_txn *txn, talas_playlist_owner_fn *fn,
                                 void *arg);

/* How many playlists there are, owned or not. 0 or an LMDB error. */
int talas_playlist_total(struct talas_storage *st, MDB_txn *txn, uint64_t *count_r);

#endif
