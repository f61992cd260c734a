/*
 * lyrics.h - the stored lyrics of a track: one record per track id in
 * TALAS_DBI_LYRICS, beside the catalog record (which does not change).
 *
 * The scanner (src/scan/scan.c) writes a record for every playable track
 * it probes, with or without lyrics: it carries the identity (size,
 * mtime) of the track's sidecar .lrc file, so that a rescan notices a
 * sidecar that appeared, changed or went away even when the audio file
 * did not change, and a track without a record (a catalog made before
 * lyrics were kept) is probed again. Workers only read records
 * (workers/subsonic/subsonic_lyrics.c).
 *
 * A record holds up to TALAS_LYRICS_SETS_MAX sets of lyrics (one from a
 * sidecar, or one per embedded lyrics tag), each synced (lines with a
 * start time) or not, read in place from the map.
 */
#ifndef TALAS_LYRICS_H
#define TALAS_LYRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "core/util.h"
#include "store/storage.h"

#define TALAS_LYRICS_SETS_MAX 8

/* Where a record's lyrics came from. */
enum talas_lyrics_source { TALAS_LYRICS_NONE, TALAS_LYRICS_SIDECAR, TALAS_LYRICS_EMBEDDED };

/* One line; VALUE is UTF-8 without NUL, CR or LF. START_MS is the time it
 * is sung (synced sets), 0 otherwise. */
struct talas_lyrics_line {
    int64_t start_ms;
    char *value;
};

/* A parsed set of lyrics (src/scan/lrc.c makes them); the strings and the
 * line array are owned by it (free with talas_lyrics_free). LANG, ARTIST,
 * TITLE are "" when not known, never NULL. OFFSET_MS is the LRC file's
 * [offset:], passed on as it is (the client applies it). */
struct talas_lyrics {
    int synced;
    int64_t offset_ms;
    char *lang, *artist, *title;
    size_t count;
    struct talas_lyrics_line *lines;
};

void talas_lyrics_free(struct talas_lyrics *l);

/* The identity of a sidecar file: present 0 means there is none. */
struct talas_lyrics_sidecar {
    int present;
    uint64_t size;
    int64_t mtime_ns;
};

/* Appends to OUT (the caller's) the record of the COUNT sets SETS
 * (at most TALAS_LYRICS_SETS_MAX: more are left out) from SOURCE, made
 * while the sidecar was SIDECAR. */
void talas_lyrics_encode(const struct talas_lyrics_sidecar *sidecar, enum talas_lyrics_source source,
                         const struct talas_lyrics *sets, size_t count, struct talas_buf *out);

/* A record read in place (pointers into it). */
struct talas_lyrics_record {
    struct talas_lyrics_sidecar sidecar;
    enum talas_lyrics_source source;
    uint32_t sets;
    struct talas_record_reader next; /* at the next set */
};

/* One set of a record, read in place; its lines follow in NEXT. */
struct talas_lyrics_set {
    int synced;
    int64_t offset_ms;
    const char *lang, *artist, *title;
    uint32_t count;
    struct talas_record_reader next; /* at the next line */
};

/* Reads record DATA (LEN bytes) into *REC_R, checking all of it. Returns
 * 0, or -1 when it is damaged or of an unknown version. */
int talas_lyrics_decode(const void *data, size_t len, struct talas_lyrics_record *rec_r);
/* The next set of REC into *SET_R: 0, or -1 when none is left. */
int talas_lyrics_next_set(struct talas_lyrics_record *rec, struct talas_lyrics_set *set_r);
/* The next line of SET: 0, or -1 when none is left. */
int talas_lyrics_next_line(struct talas_lyrics_set *set, int64_t *start_ms_r, const char **value_r);

/* The record of track ID in TXN's map (valid until TXN ends). Returns 0,
 * MDB_NOTFOUND, -1 (damaged) or another LMDB error. */
int talas_lyrics_get(struct talas_storage *st, MDB_txn *txn, const char *id,
                     struct talas_lyrics_record *rec_r);
/* Stores REC (LEN bytes) for track ID in TXN (a write transaction).
 * Returns 0 or an LMDB error. */
int talas_lyrics_put(struct talas_storage *st, MDB_txn *txn, const char *id, const void *rec, size_t len);
/* Deletes the record of track ID in TXN. Returns 0, MDB_NOTFOUND or an
 * LMDB error. */
int talas_lyrics_del(struct talas_storage *st, MDB_txn *txn, const char *id);

#endif
