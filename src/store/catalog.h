/*
 * catalog.h - tracks in LMDB: ids, the record format, look-ups and listing.
 *
 * A track id is 16 characters of base64url (A-Z a-z 0-9 - _) taken from the
 * SHA-256 of "NAME/RELPATH": the name of the file's library folder
 * (library.paths[].name, by default the folder's base name) and the file's
 * path relative to that folder. So the id is stable across rescans and the
 * same on every node that mounts the library, wherever it is mounted;
 * opaque, and never a path, so an id cannot name anything outside the
 * catalog. Ids of the first format (the SHA-256 of the absolute path) live
 * on as aliases: talas_catalog_resolve() follows them.
 *
 * Records are a versioned binary layout (fixed little-endian fields, then
 * NUL-terminated strings, each with a length). talas_track_decode() checks
 * every length and terminator, so a damaged record reads as an error, never
 * as an out-of-bounds access. Decoded strings point into the record: they
 * are valid as long as the buffer (for LMDB: the transaction) is.
 */
#ifndef TALAS_CATALOG_H
#define TALAS_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "store/storage.h"
#include "store/track_analysis.h"
#include "core/util.h"

#define TALAS_TRACK_ID_LEN 16

/* The record version since which the tags (album artist, genre, numbers,
 * year) and the cover art source are stored. */
#define TALAS_TRACK_TAGS_VERSION 3

enum { TALAS_COVER_NONE = 0, TALAS_COVER_EMBEDDED = 1, TALAS_COVER_FOLDER = 2 };

struct talas_track {
    char id[TALAS_TRACK_ID_LEN + 1];
    const char *path;      /* absolute path of the file */
    const char *title;     /* from the tags, else the file name without its extension */
    const char *artist;    /* "" when unknown */
    const char *album;     /* "" when unknown */
    const char *album_artist; /* "" when unknown (the album's artist when it is not the track's) */
    const char *genre;     /* "" when unknown */
    uint32_t track_number; /* 0 when unknown ("3/12" is 3) */
    uint32_t disc_number;  /* 0 when unknown */
    uint32_t year;         /* 0 when unknown */
    /* Where its picture is, noted at scan (the image itself is not
     * stored): TALAS_COVER_NONE, _EMBEDDED (an attached picture stream in
     * the file) or _FOLDER (cover_file, a file name in the track's folder). */
    uint8_t cover;
    const char *cover_file; /* "" unless cover is TALAS_COVER_FOLDER */
    /* the version of the stored record it was read from: below
     * TALAS_TRACK_TAGS_VERSION, the tags above were never read (the
     * scanner probes such a file again) */
    uint8_t record_version;
    const char *codec;     /* libavcodec name: "mp3", "flac", "pcm_s16le", "vorbis", "aac" ... */
    const char *container; /* short container name: "mp3", "flac", "wav", "ogg", "mp4" ... */
    const char *mime;      /* Content-Type of the original file */
    const char *error;     /* NULL for a playable track, else why probing failed */
    uint64_t duration_ms;
    uint32_t sample_rate;
    uint32_t channels;
    uint64_t bit_rate; /* bits per second, 0 when unknown */
    uint64_t size;     /* file size in bytes when scanned */
    int64_t mtime_ns;  /* file modification time when scanned, ns since the epoch */
    uint64_t scanned_at; /* seconds since the epoch */
    /* loudness and tempo, measured after the probe (scan/analysis.c); all
     * zero (flags 0) until then, and again once the file changes */
    struct talas_track_analysis analysis;
};

/* Computes the id of the file at RELPATH (relative to its library folder,
 * no leading '/') in the library named NAME (no '/'). */
void talas_track_id_make(const char *name, const char *relpath, char id_r[TALAS_TRACK_ID_LEN + 1]);
/* 1 when the LEN bytes at S have the form of a track id, else 0. */
int talas_track_id_valid(const char *s, size_t len);

/* Appends the encoded record of T to OUT. NULL strings are stored as "". */
void talas_track_encode(const struct talas_track *t, struct talas_buf *out);
/* Decodes a record; string fields point into DATA. Returns 0, or -1 when the
 * record is malformed (T is then unspecified). */
int talas_track_decode(const void *data, size_t len, struct talas_track *t);

/* Looks up ID. Returns 0 when found, MDB_NOTFOUND when not, -1 when the
 * stored record is damaged, or another LMDB error code. */
int talas_catalog_get(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t);
/* Like talas_catalog_get, but an ID that is an alias (an id of the first
 * format, see above) reads the track it now names: T->id is then the
 * current id, which differs from ID. */
int talas_catalog_resolve(struct talas_storage *st, MDB_txn *txn, const char *id, struct talas_track *t);

/* The alias ID -> the current id, in NEW_ID_R. Returns 0, MDB_NOTFOUND,
 * -1 for a damaged record, or another LMDB error. */
int talas_catalog_alias_get(struct talas_storage *st, MDB_txn *txn, const char *id,
                            char new_id_r[TALAS_TRACK_ID_LEN + 1]);
/* Records OLD_ID as an alias of NEW_ID. Returns 0, EINVAL or an LMDB error. */
int talas_catalog_alias_put(struct talas_storage *st, MDB_txn *txn, const char *old_id, const char *new_id);
/* 1 when the store's ids are library-relative (the migration is done or
 * was never needed), 0 when not yet, -1 when the marker is unreadable. */
int talas_catalog_ids_migrated(struct talas_storage *st, MDB_txn *txn);
/* Writes that marker. Returns 0 or an LMDB error. */
int talas_catalog_ids_mark(struct talas_storage *st, MDB_txn *txn);

/* Inserts or replaces T (and its path index entry). Returns 0 or an LMDB error. */
int talas_catalog_put(struct talas_storage *st, MDB_txn *txn, const struct talas_track *t);
/* Removes track ID and its path index entry. Returns 0, MDB_NOTFOUND or an LMDB error. */
int talas_catalog_del(struct talas_storage *st, MDB_txn *txn, const char *id);

/* Called for each track in path order; return non-zero to stop. */
typedef int (*talas_catalog_each_fn)(const struct talas_track *t, void *arg);
/* Walks all records (playable and failed) in path order. Damaged records
 * are skipped and counted in *damaged_r when it is not NULL. Returns 0 or
 * an LMDB error code. */
int talas_catalog_foreach(struct talas_storage *st, MDB_txn *txn, talas_catalog_each_fn fn, void *arg,
                          size_t *damaged_r);

/*
 * Lists playable tracks in path order, skipping OFFSET matches and passing
 * at most LIMIT of them to FN. QUERY, when not NULL or "", keeps only tracks
 * whose title, artist or album contains it (case-insensitive for ASCII,
 * exact bytes otherwise). Stores the number of all matches in *total_r.
 */
int talas_catalog_list(struct talas_storage *st, MDB_txn *txn, const char *query, size_t offset, size_t limit,
                       talas_catalog_each_fn fn, void *arg, size_t *total_r);
/* The same, keeping only the tracks FILTER (may be NULL) lets through. */
int talas_catalog_list_filtered(struct talas_storage *st, MDB_txn *txn, const char *query,
                                const struct talas_track_filter *filter, size_t offset, size_t limit,
                                talas_catalog_each_fn fn, void *arg, size_t *total_r);

/* Stores A as the analysis of track ID, but only while its record still
 * describes the file that was measured (SIZE and MTIME_NS): a file that
 * changed meanwhile is measured again after its next probe. Returns 0,
 * MDB_NOTFOUND (no such record, or another file now), -1 for a damaged
 * record, or an LMDB error. */
int talas_catalog_analysis_put(struct talas_storage *st, MDB_txn *txn, const char *id, uint64_t size,
                               int64_t mtime_ns, const struct talas_track_analysis *a);

/* The last scan, kept in the META database under "scan". */
struct talas_scan_status {
    int running;             /* 1 while a scan is in progress */
    int32_t pid;             /* process that ran (or runs) it */
    uint64_t started_at;     /* seconds since the epoch */
    uint64_t finished_at;    /* 0 while running */
    uint64_t files;          /* candidate files seen */
    uint64_t tracks;         /* playable tracks in the catalog */
    uint64_t errors;         /* files recorded with a probe error */
    uint64_t added, updated, removed, unchanged;
    /* the analysis after the walk (scan/analysis.c): tracks to measure in
     * this run, and how many of them are done (ok or failed) */
    uint64_t to_analyse, analysed;
};
int talas_catalog_scan_status_get(struct talas_storage *st, MDB_txn *txn, struct talas_scan_status *s);
int talas_catalog_scan_status_put(struct talas_storage *st, MDB_txn *txn, const struct talas_scan_status *s);

/* The Content-Type Talas sends for a container short name (e.g. "mp3" ->
 * "audio/mpeg"); "application/octet-stream" when unknown. */
const char *talas_catalog_mime_for_container(const char *container);

#endif
