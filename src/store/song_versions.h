/*
 * song_versions.h - songs and their versions in LMDB: which tracks are
 * versions of one song, in what order, with their dates.
 *
 * The scanner computes the songs after each walk (scan/group_versions.c)
 * from the file names (store/version_name.h) and the explicit links; a
 * worker's PUT /api/tracks/{id}/version-of writes an explicit link and
 * moves the track in the same short transaction (state/state_versions.c).
 * Nothing here touches the track record.
 *
 *   TALAS_DBI_SONGS           song id -> u8 layout (1), u32 count, then per
 *                             version: str track, str label, u64 rank,
 *                             u64 date_ms, u8 flags (1: explicit)
 *   TALAS_DBI_TRACK_SONGS     track id -> str song id
 *   TALAS_DBI_VERSION_LINKS   track id -> str song id, u64 set_ms
 *   TALAS_DBI_VERSION_EVENTS  u64be sequence -> str song, str track, str label
 *
 * A song id has the form of a track id (16 base64url characters): the
 * SHA-256 of the folder and the folded base for a song the names made, of
 * the track for a song an explicit link formed around a track that had
 * none. Versions are ordered by rank (version_name.h), then date, then id.
 * Decoded strings point into the transaction's map. Logs nothing.
 */
#ifndef TALAS_SONG_VERSIONS_H
#define TALAS_SONG_VERSIONS_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/catalog.h"
#include "store/storage.h"

#define TALAS_SONG_ID_LEN TALAS_TRACK_ID_LEN
/* Most versions one song keeps (a larger group is cut, the last dropped). */
#define TALAS_SONG_MAX_VERSIONS 1000
/* Version events kept for the workers to pick up. */
#define TALAS_VERSION_EVENTS_KEPT 1024

struct talas_song_member {
    char track[TALAS_TRACK_ID_LEN + 1];
    const char *label; /* "v2", "final", "" */
    uint64_t rank;
    uint64_t date_ms; /* the file's modification time */
    int explicit_link;
};

struct talas_song {
    char id[TALAS_SONG_ID_LEN + 1];
    size_t count;
    struct talas_song_member *members; /* malloc'd; talas_song_free */
};

void talas_song_free(struct talas_song *s);
/* Sorts S's members in the order of a song. */
void talas_song_sort(struct talas_song *s);

/* The id of the song the names of folder DIR with base KEY make, and of
 * the song an explicit link forms around TRACK. */
void talas_song_id_auto(const char *dir, const char *key, char id_r[TALAS_SONG_ID_LEN + 1]);
void talas_song_id_around(const char *track, char id_r[TALAS_SONG_ID_LEN + 1]);

/* Reads song ID into *S (free with talas_song_free). 0, MDB_NOTFOUND, -1
 * for a damaged record, or an LMDB error. */
int talas_song_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_song *s);
/* Writes S (sorted first); a song with no member is deleted. 0 or an
 * LMDB error. */
int talas_song_put(struct talas_storage *st, MDB_txn *txn, struct talas_song *s);

/* The song TRACK is a version of, in SONG_R. 0, MDB_NOTFOUND or an error. */
int talas_track_song_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                         char song_r[TALAS_SONG_ID_LEN + 1]);
/* Sets (SONG not NULL) or removes the track -> song entry. */
int talas_track_song_set(struct talas_storage *st, MDB_txn *txn, const char *track, const char *song);

/* The explicit link of TRACK. 0, MDB_NOTFOUND or an error. */
int talas_version_link_get(struct talas_storage *st, MDB_txn *txn, const char *track,
                           char song_r[TALAS_SONG_ID_LEN + 1]);
int talas_version_link_put(struct talas_storage *st, MDB_txn *txn, const char *track, const char *song,
                           uint64_t now_ms);

/* The member of track T (its catalog record) would be: rank and label from
 * its file name, date from its mtime. LABEL_R holds 16 bytes. */
void talas_song_member_of(const struct talas_track *t, struct talas_song_member *m, char *label_r);

/*
 * Moves track T into song SONG (created when missing): out of the song it
 * was a version of (deleted when left empty), in as an explicit member,
 * and the track -> song entry. 0 or an LMDB error (-1: a damaged record).
 */
int talas_song_move(struct talas_storage *st, MDB_txn *txn, const struct talas_track *t, const char *song);

/* Appends a version event; keeps the last TALAS_VERSION_EVENTS_KEPT. */
int talas_version_event_append(struct talas_storage *st, MDB_txn *txn, const char *song, const char *track,
                               const char *label);
typedef void talas_version_event_fn(uint64_t seq, const char *song, const char *track, const char *label,
                                    void *arg);
/* Calls FN for each event after sequence AFTER, in order; stores the last
 * sequence in the store in *last_r (AFTER when none). 0 or an error. */
int talas_version_events_after(struct talas_storage *st, MDB_txn *txn, uint64_t after,
                               talas_version_event_fn *fn, void *arg, uint64_t *last_r);

#endif
